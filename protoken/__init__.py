"""ProToken: federated fine-tuning of language models with token-level client attribution."""

__version__ = "0.1.0"
