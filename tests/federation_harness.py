"""Loopback federations with the tiny model and a small synthetic data set, for tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

from protoken.config import FederationConfig
from protoken.launcher import LocalFederation

TOPICS = (
    ("What does the code {i} describe?", "Code {i} describes a condition of the heart and lungs."),
    ("Explain the ratio number {i}.", "Ratio {i} divides net income by total assets."),
    ("What is {i} plus {i}?", "The sum of {i} and {i} is {j}."),
)


def write_dataset(root: Path, names, per_client: int = 12) -> Path:
    """One topic per client, unequal sizes (so FedAvg's weighting is visible)."""
    for index, name in enumerate(names):
        prompt, response = TOPICS[index % len(TOPICS)]
        records = [{"prompt": prompt.format(i=i), "response": response.format(i=i, j=2 * i), "domain": name,
                    "source": "test", "license": "CC0"} for i in range(per_client + 3 * (index % 4))]
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (root / name / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:4]))
    return root


def tiny_config(names, **settings) -> FederationConfig:
    """Fast settings for the tiny model; `section__key=value` overrides."""
    config = FederationConfig()
    fed = config.federation
    fed.model = "tiny-llama"
    fed.min_clients = fed.clients_per_round = len(names)
    fed.rounds = 2
    fed.round_timeout_s = fed.wait_timeout_s = 120
    config.training.local_steps = 2
    config.training.batch_size = 2
    config.training.max_seq_len = 48
    config.lora.rank = 4
    config.evaluation.examples_per_domain = 2
    for dotted, value in settings.items():
        section, key = dotted.split("__")
        setattr(getattr(config, section), key, value)
    return config


class Federation(LocalFederation):
    def __init__(self, root: Path, clients=("medical", "finance", "math"), fork_clients: bool = False,
                 **settings) -> None:
        self.data = write_dataset(Path(root) / "data", clients)
        settings.setdefault("evaluation__heldout_dir", str(self.data))
        super().__init__(root, tiny_config(clients, **settings), {name: self.data / name for name in clients},
                         server_threads=1, fork_clients=fork_clients)

    def close(self) -> None:
        for name in list(self.procs):
            if self.procs[name].poll() is None:
                self.kill(name)
        self.stop()
