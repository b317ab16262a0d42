"""Deployment: container images, compose, TLS material, network namespaces, container scaling."""
