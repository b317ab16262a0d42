"""Local training of the trainable state on the client's own examples."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from protoken.examples import Example, collate, response_loss, sample_batches
from protoken.v1 import federation_pb2 as pb

ProgressFn = Callable[[int, int, float], None]


def _lr_lambda(warmup_steps: int) -> Callable[[int], float]:
    return lambda step: min(1.0, (step + 1) / (warmup_steps + 1)) if warmup_steps else 1.0


def train_locally(model: nn.Module, examples: list[Example], hyper: pb.Hyperparameters, pad_id: int,
                  seed: int, progress: ProgressFn) -> dict[str, float]:
    """Run `local_steps` AdamW steps; the loss covers response tokens only. Returns metrics."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hyper.learning_rate, weight_decay=hyper.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(hyper.warmup_steps))
    batches = sample_batches(examples, hyper.batch_size, hyper.local_steps, seed)
    model.train()
    started = time.perf_counter()
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step, batch in enumerate(batches, start=1):
            loss = response_loss(model, collate(batch, pad_id))
            if not math.isfinite(float(loss)):
                raise FloatingPointError(f"training loss became {float(loss)} at step {step}")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss))
            progress(step, len(batches), losses[-1])
    model.eval()
    return {"train_loss": sum(losses) / len(losses), "train_loss_last": losses[-1], "steps": float(len(losses)),
            "train_seconds": time.perf_counter() - started}
