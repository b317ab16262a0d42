"""Prompt encoding and greedy generation with the KV cache."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from protoken.attribution.evaluation import evaluating
from protoken.trainable import base_model_of


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str, *, chat: bool = True) -> list[int]:
    """Token ids of a user prompt, wrapped in the tokenizer's chat template when it has one."""
    if chat and tokenizer.chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             add_generation_prompt=True, tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


def stop_token_ids(model: nn.Module, tokenizer: PreTrainedTokenizerBase | None = None) -> set[int]:
    """End-of-sequence ids from the model's generation config, its config and the tokenizer."""
    base = base_model_of(model)
    found: set[int] = set()
    candidates: list[object] = [getattr(base.config, "eos_token_id", None)]
    if getattr(base, "generation_config", None) is not None:
        candidates.append(base.generation_config.eos_token_id)
    if tokenizer is not None:
        candidates.append(tokenizer.eos_token_id)
    for value in candidates:
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, Iterable):
            found.update(int(v) for v in value)
    return found


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def check_generation_request(prompt_ids: Sequence[int], max_new_tokens: int) -> None:
    if not prompt_ids:
        raise ValueError("the prompt is empty")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")


@torch.inference_mode()
def greedy_generate(model: nn.Module, prompt_ids: Sequence[int], *, max_new_tokens: int,
                    stop_ids: Iterable[int] = ()) -> list[int]:
    """Greedy decoding with the KV cache; a generated stop id ends the response and is kept."""
    check_generation_request(prompt_ids, max_new_tokens)
    stops = set(stop_ids)
    inputs = torch.tensor([list(prompt_ids)], device=model_device(model))
    cache = None
    response: list[int] = []
    with evaluating(model):
        while len(response) < max_new_tokens:
            out = model(input_ids=inputs, cache=cache, use_cache=True, logits_to_keep=1)
            token = int(out.logits[0, -1].argmax())
            response.append(token)
            if token in stops:
                break
            cache = out.cache
            inputs = inputs.new_tensor([[token]])
    return response
