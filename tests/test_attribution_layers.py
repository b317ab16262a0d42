"""Layer selection: default modules for full fine-tuning and LoRA, patterns, counts, refusals."""

from __future__ import annotations

import copy

import pytest
from peft import LoraConfig, get_peft_model

from protoken.attribution.layers import LayerRule, module_names, select_layers
from test_attribution_support import lora_client, tiny


def test_full_fine_tuning_defaults_are_last_block_and_head():
    model = tiny("tiny-llama").model
    assert select_layers(model) == ["model.layers.2.self_attn.o_proj", "model.layers.2.mlp", "lm_head"]


def test_lora_defaults_keep_only_adapted_modules():
    model = lora_client("tiny-qwen2", seed=0)
    assert select_layers(model) == ["model.layers.2.self_attn.o_proj", "model.layers.2.mlp"]
    assert not any("lora_" in name or "base_layer" in name for name in module_names(model))


def test_lora_includes_lm_head_when_trained():
    config = LoraConfig(r=4, target_modules=["o_proj", "down_proj", "lm_head"])
    model = get_peft_model(copy.deepcopy(tiny("tiny-llama").model), config)
    assert select_layers(model) == ["model.layers.2.self_attn.o_proj", "model.layers.2.mlp", "lm_head"]


def test_lora_without_adapted_default_module_is_refused():
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(copy.deepcopy(tiny("tiny-llama").model), config)
    with pytest.raises(ValueError, match="adapter changes none"):
        select_layers(model)
    assert select_layers(model, ["*.q_proj"]) == ["model.layers.2.self_attn.q_proj"]


def test_patterns_and_counts():
    model = tiny("tiny-gemma3").model
    assert select_layers(model, ["*.mlp:2"]) == ["model.layers.1.mlp", "model.layers.2.mlp"]
    assert select_layers(model, ["*.mlp:0", "lm_head"]) == [
        "model.layers.0.mlp", "model.layers.1.mlp", "model.layers.2.mlp", "lm_head"]
    assert select_layers(model, [LayerRule("*.mlp"), "model.layers.2.mlp"]) == ["model.layers.2.mlp"]
    assert LayerRule.parse("*.o_proj:3") == LayerRule("*.o_proj", 3)


@pytest.mark.parametrize("rule, message", [
    ("*.nothing", "matches no module"),
    ("*.self_attn", "contains attention"),
    ("model.layers.2", "contains attention"),
    ("model.embed_tokens", "embedding"),
    ("*.mlp:-1", "must be >= 0"),
    (":2", "no pattern"),
])
def test_bad_rules_are_refused(rule, message):
    with pytest.raises(ValueError, match=message):
        select_layers(tiny("tiny-llama").model, [rule])
