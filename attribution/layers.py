"""Choosing the modules whose relevance is measured, by their base-model names.

A selection is a list of rules, each a shell-style pattern over base-model module names
(``*.mlp`` matches ``model.layers.29.mlp``) and how many of its last matches to keep. The
defaults follow the method: the last block's ``self_attn.o_proj`` and ``mlp``, and ``lm_head``.
Under LoRA only modules that carry the adapter are kept by default, since a module training does
not change scores the same for every client and carries no signal (a frozen, tied ``lm_head``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from peft import PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils import ModulesToSaveWrapper
from torch import nn

from protoken.trainable import base_model_of


@dataclass(frozen=True)
class LayerRule:
    """Keep the `last` last modules (in model order) whose names match `pattern`; 0 keeps all."""

    pattern: str
    last: int = 1

    def __post_init__(self) -> None:
        if self.last < 0:
            raise ValueError(f"layer rule {self.pattern!r}: count must be >= 0, got {self.last}")

    @classmethod
    def parse(cls, text: str) -> LayerRule:
        """``"*.mlp"`` (the last match) or ``"*.mlp:2"`` (the last two); ``":0"`` keeps all."""
        pattern, separator, count = text.strip().rpartition(":")
        if not separator:
            pattern, count = count, ""
        if not pattern:
            raise ValueError(f"layer rule {text!r} has no pattern")
        try:
            return cls(pattern, int(count) if count else 1)
        except ValueError as exc:
            raise ValueError(f"layer rule {text!r}: {exc}") from exc


DEFAULT_RULES = (LayerRule("*.self_attn.o_proj"), LayerRule("*.mlp"), LayerRule("lm_head"))

_WRAPPERS = (BaseTunerLayer, ModulesToSaveWrapper)


def module_names(model: nn.Module) -> list[str]:
    """Base-model module names in model order, without the adapter's internal submodules."""
    names: list[str] = []
    wrapped: list[str] = []
    for name, module in base_model_of(model).named_modules():
        if not name or any(name.startswith(prefix + ".") for prefix in wrapped):
            continue
        names.append(name)
        if isinstance(module, _WRAPPERS):
            wrapped.append(name)
    return names


def is_adapted(module: nn.Module) -> bool:
    """Whether a LoRA adapter (or a trained copy kept by peft) changes this module."""
    return any(isinstance(submodule, _WRAPPERS) for submodule in module.modules())


def check_scorable(name: str, module: nn.Module) -> None:
    """Refuse modules a client cannot evaluate from their input alone.

    Attention needs masks and positions besides its input; an embedding takes token ids.
    """
    if any("Attention" in type(submodule).__name__ for submodule in module.modules()):
        raise ValueError(f"module {name!r} contains attention: choose linear layers, MLPs or lm_head")
    if isinstance(module, nn.Embedding):
        raise ValueError(f"module {name!r} is an embedding: its input is token ids, not activations")


def select_layers(model: nn.Module, rules: Sequence[LayerRule | str] | None = None) -> list[str]:
    """Base-model names of the selected modules, in model order.

    Without `rules`, the defaults; under LoRA the defaults keep only adapted modules.
    """
    names = module_names(model)
    base = base_model_of(model)
    chosen: set[str] = set()
    for rule in DEFAULT_RULES if rules is None else rules:
        rule = LayerRule.parse(rule) if isinstance(rule, str) else rule
        matches = [name for name in names if fnmatch.fnmatchcase(name, rule.pattern)]
        if not matches:
            raise ValueError(f"layer rule {rule.pattern!r} matches no module of the model")
        chosen.update(matches[-rule.last:] if rule.last else matches)
    if rules is None and isinstance(model, PeftModel):
        chosen = {name for name in chosen if is_adapted(base.get_submodule(name))}
        if not chosen:
            raise ValueError("the adapter changes none of the default modules: choose layers explicitly")
    selected = [name for name in names if name in chosen]
    for name in selected:
        check_scorable(name, base.get_submodule(name))
    return selected
