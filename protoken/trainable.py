"""What a federation trains and exchanges: a LoRA adapter over the base model, or all weights.

Server and clients build the same trainable model from the same base and settings, and exchange
only its *trainable state*: the adapter's tensors (peft names) under LoRA, the model's own
parameters under full fine-tuning. Modules are always addressed by their base-model names
(``model.layers.29.mlp``, ``lm_head``); `module_for` finds them in either kind of model, where
under LoRA they evaluate as base + adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from torch import nn
from transformers import PreTrainedModel

LORA = "lora"
FULL = "full"


@dataclass(frozen=True)
class TrainableSpec:
    mode: str = LORA
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = field(default=("all-linear",))

    def __post_init__(self) -> None:
        if self.mode not in (LORA, FULL):
            raise ValueError(f"training mode must be {LORA!r} or {FULL!r}, got {self.mode!r}")


def build_trainable(base: PreTrainedModel, spec: TrainableSpec, seed: int = 0) -> nn.Module:
    """Wrap `base` for training (LoRA adapter initialised from `seed`), or return it as is (full).

    LoRA wraps `base` in place: pass a model you do not need unwrapped afterwards.
    """
    if spec.mode == FULL:
        for parameter in base.parameters():
            parameter.requires_grad_(True)
        return base
    targets: str | list[str] = "all-linear" if spec.target_modules == ("all-linear",) else list(spec.target_modules)
    config = LoraConfig(r=spec.lora_rank, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout,
                        target_modules=targets, bias="none", task_type="CAUSAL_LM")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(base, config)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a federation exchanges, detached copies in float32."""
    if isinstance(model, PeftModel):
        state = get_peft_model_state_dict(model)
    else:
        state = dict(model.named_parameters())  # a tied lm_head appears once, as the embedding
    return {name: tensor.detach().to(torch.float32).clone() for name, tensor in state.items()}


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Replace the model's trainable state; names and shapes must match exactly."""
    if isinstance(model, PeftModel):
        result = set_peft_model_state_dict(model, state)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise ValueError(f"adapter state has unexpected tensors: {unexpected[:3]}")
        return
    own = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in state.items():
            if name not in own:
                raise ValueError(f"unexpected tensor {name!r}")
            own[name].copy_(tensor.to(own[name].dtype))


def base_model_of(model: nn.Module) -> nn.Module:
    """The underlying transformers model, whose module names probes use."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def module_for(model: nn.Module, name: str) -> nn.Module:
    """The module called `name` in the base model's naming, evaluated with this model's weights."""
    return base_model_of(model).get_submodule(name)
