"""Held-out loss of the global model per domain, after every round."""

from __future__ import annotations

from pathlib import Path

from torch import nn
from transformers import PreTrainedTokenizerBase

from protoken.data import load_records
from protoken.errors import UserError
from protoken.examples import Example, encode_records, mean_loss


class HeldoutEvaluator:
    """Loads `<dir>/<domain>/heldout.jsonl` once; `evaluate` gives {"heldout_loss/<domain>": loss}."""

    def __init__(self, directory: Path, tokenizer: PreTrainedTokenizerBase, per_domain: int, max_len: int) -> None:
        self._pad = tokenizer.pad_token_id
        self._sets: dict[str, list[Example]] = {}
        files = sorted(Path(directory).glob("*/heldout.jsonl"))
        if not files:
            raise UserError(f"evaluation.heldout_dir {directory} has no <domain>/heldout.jsonl files")
        for path in files:
            records = load_records(path)[:per_domain]
            self._sets[path.parent.name] = encode_records(tokenizer, records, max_len)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            return {f"heldout_loss/{domain}": mean_loss(model, examples, self._pad)
                    for domain, examples in self._sets.items()}
        finally:
            model.train(was_training)
