"""Instruction pairs in four domains, built from text shipped in installed packages.

``protoken data build`` writes ``<out>/<domain>/train.jsonl`` and ``heldout.jsonl`` for each
domain plus ``manifest.json``; each record is ``{"prompt", "response", "domain", "source",
"license"}``. Clients train on a domain's ``train.jsonl``; held-out prompts test attribution.
"""

from protoken.data.builder import DOMAINS, build_dataset
from protoken.data.records import dataset_ready, load_records

__all__ = ["DOMAINS", "build_dataset", "dataset_ready", "load_records"]
