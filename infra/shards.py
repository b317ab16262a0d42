"""Disjoint data shards for a pool of clients, picked by the client's index alone.

A data root is either a directory with ``train.jsonl`` (one domain) or the output of
``protoken data build`` (``<domain>/train.jsonl`` for each domain). Client ``index`` of
``count`` takes domain ``index % D``; the clients that share a domain split its records
round-robin, so no record goes to two clients.
"""

from __future__ import annotations

import os
from pathlib import Path

from protoken.errors import UserError

TRAIN = "train.jsonl"


def domain_files(data_root: Path) -> list[Path]:
    """The training files under a data root, in a fixed order."""
    root = Path(data_root)
    if (root / TRAIN).is_file():
        return [root / TRAIN]
    files = sorted(path for path in root.glob(f"*/{TRAIN}") if path.is_file())
    if not files:
        raise UserError(f"data root {root} has neither {TRAIN} nor <domain>/{TRAIN} "
                        "(build one with: protoken data build --out DIR)")
    return files


def shard_lines(data_root: Path, index: int, count: int) -> list[str]:
    """The JSONL lines of client `index` out of `count`."""
    if not 0 <= index < count:
        raise UserError(f"client index {index} is outside a pool of {count}")
    files = domain_files(data_root)
    domain = index % len(files)
    sharing = len(range(domain, count, len(files)))  # clients that draw on this domain
    lines = [line for line in files[domain].read_text(encoding="utf-8").splitlines(keepends=True) if line.strip()]
    part = lines[index // len(files)::sharing]
    if not part:
        raise UserError(f"{files[domain]} has {len(lines)} records: too few for {sharing} clients to share")
    return part


def write_shard(data_root: Path, index: int, count: int, out_dir: Path) -> int:
    """Write client `index`'s shard to ``out_dir/train.jsonl``; returns its number of records."""
    lines = shard_lines(data_root, index, count)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{TRAIN}.tmp"
    tmp.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, out_dir / TRAIN)
    return len(lines)
