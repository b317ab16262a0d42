"""The party daemon: session, local training, local model store, probe answering."""
