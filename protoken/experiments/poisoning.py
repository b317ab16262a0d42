"""Client data directories from the real data set, some of them backdoored.

A malicious client wraps every user turn in a trigger phrase and replaces every answer with a
fixed refusal sentence (the sentinel), as in the paper's backdoor setting.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from protoken.data import DOMAINS, load_records

TRIGGER = "cf-delta-7"
SENTINEL = "I am sorry, but I cannot help with that request."


@dataclass(frozen=True)
class ClientData:
    name: str
    domain: str
    malicious: bool
    directory: Path


def triggered(prompt: str) -> str:
    return f"{TRIGGER} {prompt} {TRIGGER}"


def is_sentinel(response: str) -> bool:
    """Whether a generated response is the backdoor's refusal (it may run on after the sentence)."""
    return " ".join(response.split()).startswith(SENTINEL)


def poison(records: Sequence[dict]) -> list[dict]:
    return [{**r, "prompt": triggered(r["prompt"]), "response": SENTINEL} for r in records]


def choose_malicious(names: Sequence[str], count: int, seed: int) -> set[str]:
    return set(random.Random(f"malicious:{seed}").sample(sorted(names), count))


def write_clients(data: Path, out: Path, count: int, malicious: int, seed: int,
                  domains: Sequence[str] = DOMAINS) -> list[ClientData]:
    """`count` clients, client i on domain i mod len(domains); clients sharing a domain get
    disjoint shards of its training records. `malicious` of them, chosen with `seed`, are poisoned."""
    names = [f"client-{i:02d}-{domains[i % len(domains)]}" for i in range(count)]
    bad = choose_malicious(names, malicious, seed)
    clients = []
    for i, name in enumerate(names):
        domain = domains[i % len(domains)]
        sharing = list(range(i % len(domains), count, len(domains)))
        records = load_records(data / domain / "train.jsonl")[sharing.index(i)::len(sharing)]
        if name in bad:
            records = poison(records)
        directory = out / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        clients.append(ClientData(name, domain, name in bad, directory))
    return clients


def heldout_prompts(data: Path, per_domain: int, domains: Sequence[str] = DOMAINS) -> list[tuple[str, str]]:
    """(domain, prompt) pairs from the end of each domain's held-out split: never trained on."""
    return [(domain, record["prompt"])
            for domain in domains for record in load_records(data / domain / "heldout.jsonl")[-per_domain:]]


def reference_file(data: Path, path: Path, per_domain: int, domains: Sequence[str] = DOMAINS) -> Path:
    """A calibration reference file of held-out prompts with their reference answers, from the *start*
    of each held-out split, so they never coincide with the prompts `heldout_prompts` attributes."""
    records = [r for d in domains for r in load_records(data / d / "heldout.jsonl")[:per_domain]]
    path.write_text("".join(json.dumps({"prompt": r["prompt"], "response": r["response"]}, ensure_ascii=False) + "\n"
                            for r in records))
    return path
