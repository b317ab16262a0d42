"""``build_dataset``: collect every domain's pairs, split and balance them, write them."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

from protoken.data import coding, finance, mathematics, medical
from protoken.data.sources import Pair
from protoken.errors import UserError

DOMAINS = ("medical", "finance", "math", "coding")
COLLECTORS: dict[str, Callable[[], list[Pair]]] = {
    "medical": medical.pairs,
    "finance": finance.pairs,
    "math": mathematics.pairs,
    "coding": coding.pairs,
}
SPLITS = ("train", "heldout")
MANIFEST = "manifest.json"

Splits = dict[str, dict[str, list[Pair]]]  # domain -> split name -> pairs


def build_dataset(
    out_dir: Path, *, seed: int = 0, train_per_domain: int = 400, heldout_per_domain: int = 40
) -> dict:
    """Write ``<domain>/train.jsonl``, ``<domain>/heldout.jsonl`` and ``manifest.json`` under
    ``out_dir`` and return the manifest. The same seed and installed packages give the same bytes."""
    if train_per_domain < 1 or heldout_per_domain < 1:
        raise UserError("--train-per-domain and --heldout-per-domain must be at least 1")
    out_dir = Path(out_dir).resolve()
    _check_replaceable(out_dir)
    splits: Splits = {}
    for domain in DOMAINS:
        rng = random.Random(f"{seed}:{domain}")  # a string seed is hashed the same in every process
        pairs = _unique(COLLECTORS[domain]())
        train, heldout = split(pairs, rng, train_per_domain, heldout_per_domain, domain)
        splits[domain] = {"train": train, "heldout": heldout}
    manifest = _manifest(splits, seed)
    _write_atomically(out_dir, splits, manifest)
    return manifest


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a directory that holds anything but an earlier data set."""
    is_data_set = (out_dir / MANIFEST).is_file()
    if out_dir.exists() and not is_data_set and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} exists and is not a data set; choose another output directory")


def _unique(pairs: list[Pair]) -> list[Pair]:
    """Drop a pair whose prompt or response already appeared, so no text sits in both splits."""
    seen: set[str] = set()
    kept = []
    for pair in pairs:
        if pair.prompt not in seen and pair.response not in seen:
            seen.update((pair.prompt, pair.response))
            kept.append(pair)
    return kept


def split(
    pairs: list[Pair], rng: random.Random, n_train: int, n_heldout: int, domain: str
) -> tuple[list[Pair], list[Pair]]:
    """Exactly ``n_train`` and ``n_heldout`` pairs, drawn evenly from the domain's sources.

    A group (the questions about one ICD code, one formula, one article) goes whole to one split,
    so held-out items are unseen in training. Each source's groups are shuffled and the sources
    take turns, so a source of tens of thousands of items does not crowd out one of a hundred;
    a source that runs out leaves the rest to the others.
    """
    by_source: dict[str, dict[str, list[Pair]]] = {}
    for pair in pairs:
        by_source.setdefault(pair.source.name, {}).setdefault(pair.group, []).append(pair)
    queues = []
    for groups in by_source.values():
        queue = list(groups.values())
        rng.shuffle(queue)
        queues.append(queue)
    train: list[Pair] = []
    heldout: list[Pair] = []
    for group in _interleave(queues):
        if len(heldout) < n_heldout:
            heldout += group
        elif len(train) < n_train:
            train += group
        else:
            break
    if len(train) < n_train or len(heldout) < n_heldout:
        raise UserError(
            f"the {domain} sources yield {len(pairs)} pairs, too few for {n_train} training and "
            f"{n_heldout} held-out pairs per domain; ask for fewer"
        )
    train, heldout = train[:n_train], heldout[:n_heldout]  # the rest of a cut-off group is dropped
    rng.shuffle(train)
    rng.shuffle(heldout)
    return train, heldout


def _interleave(queues: list[list[list[Pair]]]) -> Iterator[list[Pair]]:
    """Every group of every queue, each time from the queue that has given the fewest pairs."""
    given = [0] * len(queues)
    taken = [0] * len(queues)
    while open_queues := [i for i, queue in enumerate(queues) if taken[i] < len(queue)]:
        i = min(open_queues, key=lambda i: given[i])
        group = queues[i][taken[i]]
        taken[i] += 1
        given[i] += len(group)
        yield group


def _manifest(splits: Splits, seed: int) -> dict:
    sources: dict[str, dict] = {}
    for domain, parts in splits.items():
        for pair in chain.from_iterable(parts.values()):
            source = pair.source
            if source.name not in sources:
                sources[source.name] = {
                    "version": source.version(),
                    "license": source.license,
                    "domains": [],
                    "records": 0,
                }
            entry = sources[source.name]
            entry["records"] += 1
            if domain not in entry["domains"]:
                entry["domains"].append(domain)
    return {
        "seed": seed,
        "counts": {domain: {name: len(p) for name, p in parts.items()} for domain, parts in splits.items()},
        "sources": dict(sorted(sources.items())),
        "files": [f"{domain}/{name}.jsonl" for domain in splits for name in SPLITS],
    }


def _write_atomically(out_dir: Path, splits: Splits, manifest: dict) -> None:
    """Write into a sibling directory, then swap it in: a crash never leaves a half data set."""
    building = out_dir.with_name(f".{out_dir.name}.building-{os.getpid()}")
    replaced = out_dir.with_name(f".{out_dir.name}.replaced-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    try:
        building.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"cannot write the dataset to {out_dir}: {exc.strerror}") from exc
    try:
        for domain, parts in splits.items():
            (building / domain).mkdir()
            for name, pairs in parts.items():
                lines = "".join(json.dumps(p.record(domain), ensure_ascii=False) + "\n" for p in pairs)
                (building / domain / f"{name}.jsonl").write_text(lines, encoding="utf-8", newline="\n")
        (building / MANIFEST).write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n"
        )
        if out_dir.exists():
            out_dir.rename(replaced)
            try:
                building.rename(out_dir)
            except OSError:
                replaced.rename(out_dir)
                raise
            shutil.rmtree(replaced)
        else:
            building.rename(out_dir)
    finally:
        shutil.rmtree(building, ignore_errors=True)  # only left when something failed
