"""Reading a built data set back: a client's training data, or one split of it."""

from __future__ import annotations

import json
from pathlib import Path

from protoken.data.builder import DOMAINS, MANIFEST, SPLITS
from protoken.errors import UserError


def load_records(path: Path) -> list[dict]:
    """Records of a JSONL file, or of ``<dir>/train.jsonl`` when ``path`` is a directory.

    Every record must be a JSON object with non-empty string ``prompt`` and ``response``.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"data path {path} does not exist (build one with `protoken data build`)")
    if path.is_dir():
        if not any(path.iterdir()):
            raise UserError(f"data directory {path} is empty: expected train.jsonl in it")
        path = path / "train.jsonl"
        if not path.is_file():
            raise UserError(f"data directory {path.parent} has no train.jsonl")
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict) or not all(
                isinstance(record.get(key), str) and record[key].strip() for key in ("prompt", "response")
            ):
                raise UserError(
                    f"{path}, line {number}: needs non-empty string fields 'prompt' and 'response'"
                )
            records.append(record)
    if not records:
        raise UserError(f"data file {path} is empty: no records in it")
    return records


def dataset_ready(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a complete data set (its manifest and every split file)."""
    out_dir = Path(out_dir)
    files = [f"{domain}/{name}.jsonl" for domain in DOMAINS for name in SPLITS]
    return all((out_dir / name).is_file() for name in [MANIFEST, *files])
