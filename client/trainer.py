"""Local training of the trainable state on the client's own examples.

With differential privacy enabled, training is DP-SGD through Opacus: per-example gradients of
the trainable tensors are clipped to `max_grad_norm` and Gaussian noise is added before each step.
The loss is then the mean over examples of each example's mean response-token loss, so every
example's gradient is its own.
"""

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


def _private(model: nn.Module, optimizer: torch.optim.Optimizer, dp: pb.DifferentialPrivacy, batch_size: int):
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    wrapped = GradSampleModule(model, batch_first=True, loss_reduction="mean", strict=False)
    private = DPOptimizer(optimizer, noise_multiplier=dp.noise_multiplier, max_grad_norm=dp.max_grad_norm,
                          expected_batch_size=batch_size)
    return wrapped, private


def _epsilon(dp: pb.DifferentialPrivacy, sample_rate: float, steps: int, delta: float) -> float:
    """RDP accounting of these steps (batches are drawn by shuffling, so this is the usual estimate)."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(dp.noise_multiplier, sample_rate, steps)]
    return float(accountant.get_epsilon(delta=delta))


def train_locally(model: nn.Module, examples: list[Example], hyper: pb.Hyperparameters, pad_id: int,
                  seed: int, progress: ProgressFn) -> dict[str, float]:
    """Run `local_steps` AdamW steps; the loss covers response tokens only. Returns metrics."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hyper.learning_rate, weight_decay=hyper.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(hyper.warmup_steps))
    batches = sample_batches(examples, hyper.batch_size, hyper.local_steps, seed)
    dp = hyper.dp.enabled
    forward = model
    if dp:
        forward, optimizer = _private(model, optimizer, hyper.dp, min(hyper.batch_size, len(examples)))
    model.train()
    started = time.perf_counter()
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step, batch in enumerate(batches, start=1):
            inputs = collate(batch, pad_id)
            loss = response_loss(forward, inputs, reduction="per_example" if dp else "mean")
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"training loss became {value} at step {step}")
            loss.backward()
            if not dp:  # DP-SGD clips per example instead
                torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(value)
            progress(step, len(batches), losses[-1])
    if dp:  # leave the model as it was: no per-example gradient hooks or buffers
        forward.remove_hooks()
        for parameter in params:
            parameter.grad_sample = None
    model.eval()
    metrics = {"train_loss": sum(losses) / len(losses), "train_loss_last": losses[-1], "steps": float(len(losses)),
               "train_seconds": time.perf_counter() - started}
    if dp:
        delta = 1.0 / len(examples)
        metrics["dp_epsilon"] = _epsilon(hyper.dp, min(1.0, hyper.batch_size / len(examples)), len(losses), delta)
        metrics["dp_delta"] = delta
    return metrics
