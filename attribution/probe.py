"""What a client receives to score a response: per module, G's input ``x`` and the weights ``g``.

A module's relevance comes in one of two layouts:

* **token** (modules after the last attention, and ``lm_head``): one row per generated token.
  ``x`` is [T, in]; the weights are ``g`` [T, out], or ``target_ids`` [T] when ``g`` is one-hot
  (``lm_head``: the score is the client's logit for that id), or neither: all ones (the
  no-gradient ablation). Token t's score is ⟨C(x[t]), g[t]⟩.
* **position** (modules before the last attention, where a token's logit depends on every
  earlier position): ``x`` is [N, in] over all N positions and ``g`` is [K, N, out]. With K = T,
  token t's score is Σ_p ⟨C(x[p]), g[t, p]⟩, exact per token. With K = 1, ``g`` is the gradient
  of the sum of all the response's logits: exact for the response, not split by token, so each
  token gets an equal share of the total and every response-level quantity stays exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

TOKEN = "token"
POSITION = "position"


@dataclass
class ModuleRelevance:
    """Relevance of one module (base-model name `name`) for every generated token."""

    name: str
    x: torch.Tensor
    g: torch.Tensor | None = None
    target_ids: torch.Tensor | None = None

    @property
    def layout(self) -> str:
        return POSITION if self.g is not None and self.g.dim() == 3 else TOKEN

    def validate(self, num_tokens: int) -> None:
        """Raise ValueError when shapes or dtypes are inconsistent with `num_tokens` tokens."""
        def fail(message: str) -> None:
            raise ValueError(f"module {self.name!r}: {message}")

        if self.x.dim() != 2 or not self.x.is_floating_point():
            fail(f"x must be a 2-D float tensor, got {tuple(self.x.shape)} {self.x.dtype}")
        if self.g is not None and self.target_ids is not None:
            fail("give either g or target_ids, not both")
        if self.layout == POSITION:
            k, n, _ = self.g.shape
            if k not in (1, num_tokens) or n != self.x.shape[0]:
                fail(f"g {tuple(self.g.shape)} does not match x {tuple(self.x.shape)} and {num_tokens} tokens")
            return
        if self.x.shape[0] != num_tokens:
            fail(f"x has {self.x.shape[0]} rows for {num_tokens} tokens")
        if self.g is not None and (self.g.dim() != 2 or self.g.shape[0] != num_tokens):
            fail(f"g {tuple(self.g.shape)} does not have one row per token ({num_tokens})")
        if self.target_ids is not None and (self.target_ids.shape != (num_tokens,)
                                            or self.target_ids.dtype != torch.int64):
            fail(f"target_ids must be int64 of shape ({num_tokens},), got {tuple(self.target_ids.shape)}")

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in (self.x, self.g, self.target_ids) if t is not None]


@dataclass
class Probe:
    """Everything a client needs to score one response: no prompt, no text, no weights of G."""

    modules: list[ModuleRelevance]
    num_tokens: int

    @property
    def names(self) -> list[str]:
        return [module.name for module in self.modules]

    def validate(self) -> None:
        if self.num_tokens < 1:
            raise ValueError("a probe needs at least one token")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"a probe names a module twice: {self.names}")
        for module in self.modules:
            module.validate(self.num_tokens)

    def nbytes(self, float_dtype: torch.dtype = torch.float32) -> int:
        """Size of the tensors with floats sent as `float_dtype` (target ids stay int64)."""
        float_size = torch.empty((), dtype=float_dtype).element_size()
        return sum(math.prod(t.shape) * (t.element_size() if not t.is_floating_point() else float_size)
                   for module in self.modules for t in module.tensors())

    def without_gradient(self) -> Probe:
        """The no-gradient ablation: every module weighted by ones at each token's own position."""
        def ones(module: ModuleRelevance) -> ModuleRelevance:
            x = module.x[-self.num_tokens:] if module.layout == POSITION else module.x
            return replace(module, x=x, g=None, target_ids=None)

        return Probe([ones(module) for module in self.modules], self.num_tokens)


@dataclass
class Relevance:
    """The global model's side of one attributed response."""

    prompt_ids: list[int]
    response_ids: list[int]
    probe: Probe
    objective: str  # what the probe's gradients differentiate (see relevance.OBJECTIVES)
    timings: dict[str, float] = field(default_factory=dict)
