"""Encoding and validation of what crosses the wire, shared by server and client."""
