"""Sizes of an experiment run: the full run on the default model, or a quick one on the tiny model."""

from __future__ import annotations

from dataclasses import dataclass, replace

from protoken.config import FederationConfig
from protoken.models import DEFAULT_MODEL


@dataclass(frozen=True)
class Plan:
    model: str
    rounds: int
    local_steps: int
    batch_size: int
    learning_rate: float
    max_seq_len: int
    lora_rank: int
    prompts: int             # held-out prompts attributed per round (of each kind)
    max_new_tokens: int
    seed: int = 0
    clients: int | None = None     # scaling only: clients in the federation (None: the experiment's default)
    per_round: int | None = None   # scaling only: clients sampled per round
    round_timeout_s: float = 1800.0

    def config(self, clients: int, per_round: int | None = None) -> FederationConfig:
        """A federation config of this size for `clients` clients, `per_round` sampled each round."""
        config = FederationConfig()
        fed = config.federation
        fed.model = self.model
        fed.min_clients = clients
        fed.clients_per_round = per_round or clients
        fed.rounds = self.rounds
        fed.seed = self.seed
        fed.round_timeout_s = fed.wait_timeout_s = self.round_timeout_s
        fed.quorum = 1.0
        fed.serve_after_training = True
        t = config.training
        t.local_steps, t.batch_size, t.learning_rate = self.local_steps, self.batch_size, self.learning_rate
        t.max_seq_len = self.max_seq_len
        config.lora.rank, config.lora.alpha = self.lora_rank, 2.0 * self.lora_rank
        config.attribution.max_new_tokens = self.max_new_tokens
        config.attribution.probe_timeout_s = 600.0
        return config


# Sized to finish within an hour on 2 shared CPU cores: batch 4 keeps a client near 1.5 GB (batch 8: 3 GB).
FULL = Plan(model=DEFAULT_MODEL, rounds=3, local_steps=10, batch_size=4, learning_rate=2e-3, max_seq_len=96,
            lora_rank=16, prompts=12, max_new_tokens=16)
QUICK = Plan(model="tiny-llama", rounds=2, local_steps=4, batch_size=4, learning_rate=1e-2, max_seq_len=32,
             lora_rank=4, prompts=2, max_new_tokens=8, round_timeout_s=300.0)


def plan_for(quick: bool, **changes) -> Plan:
    """The quick or full plan with `changes` (only those that are not None) applied."""
    base = QUICK if quick else FULL
    return replace(base, **{k: v for k, v in changes.items() if v is not None})
