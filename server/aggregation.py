"""FedAvg as a running weighted sum: memory stays constant in the number of clients."""

from __future__ import annotations

import threading

import torch


class FedAvgAccumulator:
    """Adds each update into a float64 sum as it arrives; the update itself is not kept."""

    def __init__(self, reference: dict[str, torch.Tensor]) -> None:
        self._sum = {name: torch.zeros_like(t, dtype=torch.float64) for name, t in reference.items()}
        self._dtypes = {name: t.dtype for name, t in reference.items()}
        self._weight = 0.0
        self._count = 0
        self._lock = threading.Lock()

    def add(self, state: dict[str, torch.Tensor], num_examples: int) -> None:
        if num_examples <= 0:
            raise ValueError("an update must cover at least one example")
        with self._lock:
            for name, tensor in state.items():
                self._sum[name].add_(tensor.to(torch.float64), alpha=float(num_examples))
            self._weight += num_examples
            self._count += 1

    @property
    def count(self) -> int:
        return self._count

    @property
    def total_examples(self) -> int:
        return int(self._weight)

    def result(self) -> dict[str, torch.Tensor]:
        with self._lock:
            if self._count == 0:
                raise ValueError("no update to average")
            return {name: (total / self._weight).to(self._dtypes[name]) for name, total in self._sum.items()}
