"""Forward hooks that record, in one forward pass, what relevance needs from each module.

For every recorded module: its input ``x`` and its output as a node of the autograd graph, so
that the gradient of a logit with respect to the output (``g``) can be taken afterwards. The
model's parameters are frozen while recording, so the graph only exists from the first point
that is made to need a gradient:

* ``cut=True``: the output of the first recorded module that runs. Backward then stops at the
  recorded modules and never differentiates earlier layers (the fast path).
* ``cut=False``: the input embeddings, so backward runs through the whole network as in the
  paper's reference computation.

The hooks also note the order in which modules start, which tells which recorded modules run
after the last attention operation (see `Capture.token_aligned`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from protoken.trainable import base_model_of


@dataclass
class Recording:
    x: torch.Tensor  # the module's input, [1, positions, in_features], detached
    out: torch.Tensor  # its output, [1, positions, out_features], in the autograd graph


def is_attention(module: nn.Module) -> bool:
    return "Attention" in type(module).__name__


class Capture:
    """Context manager recording `names` (base-model module names) and the output head.

    Use around one forward pass of a model whose parameters are frozen; after it, `records`
    holds each module's last call and `head` the output head's raw logits.
    """

    def __init__(self, model: nn.Module, names: Sequence[str], *, cut: bool) -> None:
        self._base = base_model_of(model)
        self._cut = cut
        head = self._base.get_output_embeddings()
        if head is None:
            raise ValueError("the model has no output head (lm_head)")
        self.head_name = next(name for name, module in self._base.named_modules() if module is head)
        self.names = list(dict.fromkeys([*names, self.head_name]))
        self.records: dict[str, Recording] = {}
        self._ticks = count()
        self._starts: dict[str, int] = {}
        self._ends: dict[str, int] = {}
        self._attention: set[str] = set()
        self._handles: list[RemovableHandle] = []
        self.embeddings: torch.Tensor | None = None  # the graph's leaf when cut=False

    @property
    def head(self) -> torch.Tensor:
        """The output head's raw logits of the last forward pass, [1, positions, vocab]."""
        return self.records[self.head_name].out

    def __enter__(self) -> Capture:
        modules = dict(self._base.named_modules())
        self._attention = {name for name, module in modules.items() if is_attention(module)}
        timed = set(self.names) | set(self._attention)
        timed |= {name for name in modules if name.rpartition(".")[0] in self._attention}
        for name in timed:
            self._handles.append(modules[name].register_forward_pre_hook(self._on_start(name)))
        for name in self._attention:
            self._handles.append(modules[name].register_forward_hook(self._on_end(name)))
        for name in self.names:
            self._handles.append(modules[name].register_forward_hook(self._on_output(name), with_kwargs=True))
        if not self._cut:
            embeddings = self._base.get_input_embeddings()
            self._handles.append(embeddings.register_forward_hook(self._on_embeddings))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _on_start(self, name: str):
        def hook(_module: nn.Module, _args: Any) -> None:
            self._starts[name] = next(self._ticks)
        return hook

    def _on_end(self, name: str):
        def hook(_module: nn.Module, _args: Any, _out: Any) -> None:
            self._ends[name] = next(self._ticks)
        return hook

    def _on_embeddings(self, _module: nn.Module, _args: Any, out: torch.Tensor) -> torch.Tensor:
        self.embeddings = _leaf(out)
        return self.embeddings

    def _on_output(self, name: str):
        def hook(_module: nn.Module, args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"module {name!r} returns {type(out).__name__}, not a tensor")
            x = args[0] if args else next(iter(kwargs.values()))
            if self._cut and not out.requires_grad:
                out = _leaf(out)
            self.records[name] = Recording(x=x.detach().clone(), out=out)
            return out
        return hook

    def token_aligned(self) -> set[str]:
        """Recorded modules that run after the last attention operation.

        Everything after it is position-wise, so the gradient of the logit at one position is
        zero at every other position. Inside the last attention module, its last child to run
        (the output projection) comes after the attention operation; the children before it
        (q/k/v projections, their norms) come before. Without attention every module counts.
        """
        started = [name for name in self._attention if name in self._starts]
        if not started:
            return set(self.names)
        last = max(started, key=self._starts.__getitem__)
        children = [name for name in self._starts if name.rpartition(".")[0] == last]
        if children:
            boundary = max(self._starts[name] for name in children)
            return {name for name in self.names if self._starts.get(name, -1) >= boundary}
        return {name for name in self.names if self._starts.get(name, -1) > self._ends[last]}


def _leaf(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().requires_grad_(True)
