"""One federated round: sample clients, push the task, aggregate updates as they arrive.

A round completes when every sampled client has either answered or gone, or at its deadline;
it succeeds when at least ``ceil(quorum * sampled)`` updates arrived.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import torch

from protoken.config import FederationConfig
from protoken.v1 import federation_pb2 as pb
from protoken.wire.payload import state_chunks

from .aggregation import FedAvgAccumulator
from .sessions import SessionRegistry


class RoundFailed(RuntimeError):
    """A round that could not complete (too few clients, or too few updates by the deadline)."""


@dataclass
class OpenRound:
    number: int
    tasks: dict[str, str]  # client id -> task id
    accumulator: FedAvgAccumulator
    reference: dict[str, torch.Tensor]
    deadline: float
    answered: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)  # disconnected, or declined the task: not waited for
    metrics: dict[str, float] = field(default_factory=dict)
    closed: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def settled(self) -> bool:
        return self.answered | self.gone >= set(self.tasks)


def sample_clients(connected: list[str], count: int, seed: int, round_number: int) -> list[str]:
    """A seeded choice that depends only on (seed, round, who is connected)."""
    rng = random.Random(f"{seed}:{round_number}")
    return sorted(rng.sample(sorted(connected), min(count, len(connected))))


def hyperparameters(config: FederationConfig, round_number: int) -> pb.Hyperparameters:
    t, lora, dp = config.training, config.lora, config.privacy
    mode = pb.TRAINING_MODE_LORA if t.mode == "lora" else pb.TRAINING_MODE_FULL
    return pb.Hyperparameters(
        mode=mode,
        lora=pb.LoraSettings(rank=lora.rank, alpha=lora.alpha, dropout=lora.dropout,
                             target_modules=lora.target_modules),
        local_steps=t.local_steps, batch_size=t.batch_size, learning_rate=t.learning_rate,
        warmup_steps=t.warmup_steps, max_seq_len=t.max_seq_len, weight_decay=t.weight_decay,
        seed=config.federation.seed * 1_000_003 + round_number,
        dp=pb.DifferentialPrivacy(enabled=dp.enabled, noise_multiplier=dp.noise_multiplier,
                                  max_grad_norm=dp.max_grad_norm),
    )


class RoundRunner:
    def __init__(self, config: FederationConfig, sessions: SessionRegistry, log) -> None:
        self.config = config
        self.sessions = sessions
        self.log = log
        self.current: OpenRound | None = None
        self.stop = threading.Event()
        sessions.add_disconnect_listener(self._client_gone)

    def _client_gone(self, client_id: str) -> None:
        current = self.current
        if current is not None and client_id in current.tasks:
            with current.cond:
                current.gone.add(client_id)
                current.cond.notify_all()

    def run(self, number: int, global_state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], OpenRound]:
        fed = self.config.federation
        connected = self.sessions.wait_for(fed.min_clients, fed.wait_timeout_s, self.stop)
        if self.stop.is_set():
            raise RoundFailed(f"round {number} interrupted: the server is stopping")
        if len(connected) < fed.min_clients:
            raise RoundFailed(f"round {number}: only {len(connected)} of min_clients={fed.min_clients} "
                              f"connected within {fed.wait_timeout_s:g} s")
        sampled = sample_clients(connected, fed.clients_per_round, fed.seed, number)
        deadline = time.time() + fed.round_timeout_s
        round_ = OpenRound(number=number, tasks={cid: uuid.uuid4().hex for cid in sampled},
                           accumulator=FedAvgAccumulator(global_state), reference=global_state,
                           deadline=deadline)
        chunks = state_chunks(global_state)
        chunk_bytes = sum(chunk.ByteSize() for chunk in chunks)
        hyper = hyperparameters(self.config, number)
        self.current = round_
        self.log(f"round {number}: sampled {', '.join(sampled)} of {len(connected)} connected")
        for client_id in sampled:
            session = self.sessions.current(client_id)
            if session is None:
                round_.gone.add(client_id)
                continue
            session.push(pb.ServerMessage(train=pb.TrainTask(
                round=number, task_id=round_.tasks[client_id], hyperparameters=hyper,
                weights_chunks=len(chunks), deadline_unix_ms=int(deadline * 1000))))
            for chunk in chunks:
                session.push(pb.ServerMessage(weights_chunk=chunk))
            round_.metrics[f"bytes_down/{client_id}"] = float(chunk_bytes)
        del chunks
        with round_.cond:
            while not round_.settled() and not self.stop.is_set():
                remaining = deadline - time.time()
                if remaining <= 0:
                    break
                round_.cond.wait(min(remaining, 1.0))
            round_.closed = True
        self.current = None
        required = math.ceil(fed.quorum * len(sampled))
        answered = round_.accumulator.count
        missing = sorted(set(sampled) - round_.answered)
        if answered < required or answered == 0:
            raise RoundFailed(f"round {number} failed: {answered} of {len(sampled)} sampled clients sent an "
                              f"update before the deadline, quorum is {required} (missing: {', '.join(missing)})")
        if missing:
            self.log(f"round {number}: completed without {', '.join(missing)}")
        round_.metrics["clients_sampled"] = float(len(sampled))
        round_.metrics["clients_answered"] = float(answered)
        return round_.accumulator.result(), round_
