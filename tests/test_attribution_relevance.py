"""Relevance and client scores: the fast path equals the paper's reference path, exactly where claimed.

On tiny Llama, Qwen2 and Gemma3 models with LoRA clients whose adapters differ, for both objectives.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from protoken.attribution.evaluation import evaluating, frozen
from protoken.attribution.generation import encode_prompt
from protoken.attribution.hooks import Capture
from protoken.attribution.layers import select_layers
from protoken.attribution.probe import POSITION, TOKEN, ModuleRelevance, Probe
from protoken.attribution.relevance import (
    LOG_PROB,
    LOGIT,
    OBJECTIVES,
    fast_relevance,
    reference_relevance,
    teacher_forced_probe,
)
from protoken.attribution.scoring import module_scores
from test_attribution_support import fedavg, lora_client, one_thread, tiny  # noqa: F401 (autouse fixture)

FAMILIES = ("tiny-llama", "tiny-qwen2", "tiny-gemma3")
DEEP = "model.layers.1.mlp"  # before the last attention: its per-token split needs one backward per token
PROMPT = "Name three colours of the rainbow."
NEW_TOKENS = 6


@pytest.fixture(scope="module", params=[(spec, objective) for spec in FAMILIES for objective in OBJECTIVES],
                ids=lambda param: "-".join(param))
def family(request):
    spec, objective = request.param
    clients = {f"client-{i}": lora_client(spec, seed=i + 1, b_scale=0.2) for i in range(3)}
    model = fedavg(spec, clients)
    layers = select_layers(model) + [DEEP]
    prompt_ids = encode_prompt(tiny(spec).tokenizer, PROMPT)
    options = dict(max_new_tokens=NEW_TOKENS, objective=objective)
    runs = {
        "fast": fast_relevance(model, prompt_ids, layers, **options),
        "per_token": fast_relevance(model, prompt_ids, layers, per_token=True, **options),
        "reference": reference_relevance(model, prompt_ids, layers, **options),
    }
    scores = {run: {client: module_scores(m, rel.probe) for client, m in clients.items()}
              for run, rel in runs.items()}
    return dict(spec=spec, model=model, clients=clients, layers=layers, runs=runs, scores=scores)


def close(actual: torch.Tensor, expected: torch.Tensor) -> bool:
    return torch.allclose(actual, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))


def test_paths_generate_the_same_tokens(family):
    runs = family["runs"]
    assert len(runs["fast"].response_ids) == NEW_TOKENS
    assert runs["fast"].response_ids == runs["reference"].response_ids == runs["per_token"].response_ids


def test_layouts(family):
    layouts = {m.name: m.layout for m in family["runs"]["fast"].probe.modules}
    assert layouts == {"model.layers.2.self_attn.o_proj": TOKEN, "model.layers.2.mlp": TOKEN, DEEP: POSITION}
    deep = family["runs"]["fast"].probe.modules[-1]
    assert deep.g.shape[0] == 1 and deep.x.shape[0] == len(family["runs"]["fast"].prompt_ids) + NEW_TOKENS - 1


def test_fast_per_token_scores_equal_reference_after_last_attention(family):
    last_attention = [i for i, name in enumerate(family["layers"]) if name != DEEP]
    fast, reference = family["scores"]["fast"], family["scores"]["reference"]
    for client in family["clients"]:
        assert close(fast[client][:, last_attention], reference[client][:, last_attention])
    one, two = fast["client-0"], fast["client-1"]
    assert not torch.allclose(one, two, rtol=1e-3), "clients must differ for the comparison to mean anything"


def test_fast_response_sum_equals_reference_at_a_deeper_module(family):
    column = family["layers"].index(DEEP)
    fast, reference = family["scores"]["fast"], family["scores"]["reference"]
    for client in family["clients"]:
        assert close(fast[client][:, column].sum(), reference[client][:, column].sum())
    # ... while its per-token split is not exact without the per-token option:
    assert not close(fast["client-0"][:, column], reference["client-0"][:, column])


def test_per_token_option_is_exact_per_token_at_any_depth(family):
    per_token, reference = family["scores"]["per_token"], family["scores"]["reference"]
    for client in family["clients"]:
        assert close(per_token[client], reference[client])


def test_fast_path_does_not_differentiate_earlier_layers():
    model = fedavg("tiny-llama", {"a": lora_client("tiny-llama", seed=1)})
    calls = []
    model.get_base_model().model.layers[0].register_full_backward_hook(lambda *_: calls.append(1))
    prompt_ids = encode_prompt(tiny("tiny-llama").tokenizer, PROMPT)
    layers = select_layers(model)
    fast_relevance(model, prompt_ids, layers, max_new_tokens=3)
    assert calls == []
    reference_relevance(model, prompt_ids, layers, max_new_tokens=3)
    assert len(calls) == 3  # the reference backward runs through every layer, once per token


def test_token_aligned_modules_are_those_after_the_last_attention():
    model = tiny("tiny-gemma3").model  # q_norm/k_norm are registered after o_proj but run before attention
    names = ["model.layers.2.self_attn.q_norm", "model.layers.2.self_attn.o_proj", "model.layers.2.mlp",
             "model.layers.2.post_feedforward_layernorm", "model.layers.1.mlp", "model.norm"]
    with evaluating(model), frozen(model), Capture(model, names, cut=True) as capture:
        model(input_ids=torch.tensor([[1, 2, 3]]))
    assert capture.token_aligned() == {"model.layers.2.self_attn.o_proj", "model.layers.2.mlp",
                                       "model.layers.2.post_feedforward_layernorm", "model.norm", "lm_head"}


def test_relevance_leaves_the_model_as_it_was():
    model = lora_client("tiny-qwen2", seed=3).train()
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    fast_relevance(model, [1, 2, 3], select_layers(model), max_new_tokens=2)
    assert model.training
    assert flags == {name: p.requires_grad for name, p in model.named_parameters()}


def test_lm_head_gradient_is_one_hot_and_target_ids_score_like_the_dense_gradient():
    model = copy.deepcopy(tiny("tiny-llama").model)  # full fine-tuning: lm_head is selected
    client = copy.deepcopy(model)
    with torch.no_grad():
        client.lm_head.weight.add_(torch.randn_like(client.lm_head.weight) * 0.05)
    prompt_ids, response_ids = [1, 42, 7, 99], [5, 17, 5]
    probe = teacher_forced_probe(model, prompt_ids, response_ids, select_layers(model))
    head = probe.modules[-1]
    assert head.name == "lm_head" and head.g is None and head.target_ids.tolist() == response_ids

    # the dense gradient of the summed logits at the head's output, taken independently
    ids = torch.tensor([prompt_ids + response_ids[:-1]])
    logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:]
    logits.retain_grad()
    logits.gather(1, torch.tensor(response_ids).unsqueeze(1)).sum().backward()
    dense = logits.grad
    assert torch.equal(dense, F.one_hot(torch.tensor(response_ids), dense.shape[-1]).float())

    dense_probe = Probe([ModuleRelevance("lm_head", x=head.x, g=dense)], len(response_ids))
    assert torch.allclose(module_scores(client, Probe([head], 3)), module_scores(client, dense_probe),
                          rtol=1e-6, atol=1e-6)
    assert torch.allclose(module_scores(client, Probe([head], 3))[:, 0],
                          (head.x.double() @ client.lm_head.weight.double().T)[range(3), response_ids])


def test_log_prob_head_gradient_is_one_hot_minus_softmax_and_ignores_a_shift_of_every_logit():
    model = copy.deepcopy(tiny("tiny-llama").model)  # full fine-tuning: lm_head is selected
    prompt_ids, response_ids = [1, 42, 7, 99], [5, 17, 5]
    head = teacher_forced_probe(model, prompt_ids, response_ids, select_layers(model), objective=LOG_PROB).modules[-1]
    assert head.name == "lm_head" and head.target_ids is None

    ids = torch.tensor([prompt_ids + response_ids[:-1]])
    logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:]
    logits.retain_grad()
    torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(response_ids).unsqueeze(1)).sum().backward()
    assert torch.allclose(head.g, logits.grad, atol=1e-6)

    # a client whose head adds the same amount to every logit: its logit scores differ from G's, its log-prob ones not
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.lm_head.weight.add_(torch.randn(shifted.lm_head.weight.shape[1]) * 0.5)
    logit_head = teacher_forced_probe(model, prompt_ids, response_ids, ["lm_head"], objective=LOGIT)
    assert not torch.allclose(module_scores(shifted, logit_head), module_scores(model, logit_head), atol=1e-3)
    log_prob_head = Probe([head], len(response_ids))
    assert torch.allclose(module_scores(shifted, log_prob_head), module_scores(model, log_prob_head), atol=1e-4)


def test_an_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="objective must be one of"):
        teacher_forced_probe(tiny("tiny-llama").model, [1, 2], [3], ["lm_head"], objective="loss")


def test_module_scores_equal_a_direct_computation():
    client = lora_client("tiny-qwen2", seed=5, b_scale=0.3)
    merged = copy.deepcopy(client).merge_and_unload()  # plain weights: base + adapter
    generator = torch.Generator().manual_seed(0)
    x, g = torch.randn(4, 64, generator=generator), torch.randn(4, 64, generator=generator)
    xs, gs = torch.randn(5, 64, generator=generator), torch.randn(4, 5, 64, generator=generator)
    probe = Probe([ModuleRelevance("model.layers.2.self_attn.o_proj", x=x, g=g),
                   ModuleRelevance("model.layers.2.mlp", x=x, g=g),
                   ModuleRelevance("model.layers.1.mlp", x=xs, g=gs)], 4)
    scores = module_scores(client, probe)

    layers = merged.model.layers
    def mlp(layer, inputs):
        m = layers[layer].mlp
        return F.linear(F.silu(F.linear(inputs, m.gate_proj.weight)) * F.linear(inputs, m.up_proj.weight),
                        m.down_proj.weight)
    expected = torch.stack([
        (F.linear(x, layers[2].self_attn.o_proj.weight) * g).sum(1),
        (mlp(2, x) * g).sum(1),
        torch.einsum("tno,no->t", gs, mlp(1, xs)),
    ], dim=1).double()
    assert scores.dtype == torch.float64 and scores.shape == (4, 3)
    assert torch.allclose(scores, expected, rtol=1e-5, atol=1e-6)
    base_only = module_scores(tiny("tiny-qwen2").model, probe)
    assert not torch.allclose(scores, base_only, rtol=1e-3), "the adapter must change the scores"


def test_relevance_refuses_empty_requests():
    model = tiny("tiny-llama").model
    with pytest.raises(ValueError, match="prompt is empty"):
        fast_relevance(model, [], ["lm_head"])
    with pytest.raises(ValueError, match="at least 1"):
        reference_relevance(model, [1, 2], ["lm_head"], max_new_tokens=0)
    with pytest.raises(ValueError, match="non-empty"):
        teacher_forced_probe(model, [1, 2], [], ["lm_head"])


def test_module_scores_reject_probes_that_do_not_fit():
    client = lora_client("tiny-llama", seed=1)
    x = torch.zeros(2, 64)
    cases = [
        Probe([ModuleRelevance("model.layers.9.mlp", x=x, g=x)], 2),
        Probe([ModuleRelevance("model.layers.2.mlp", x=torch.zeros(2, 7), g=x)], 2),
        Probe([ModuleRelevance("model.layers.2.mlp", x=x, g=torch.zeros(2, 7))], 2),
        Probe([ModuleRelevance("model.layers.2.mlp", x=x, g=x)], 3),
        Probe([ModuleRelevance("lm_head", x=x, target_ids=torch.tensor([0, 10**6]))], 2),
        Probe([ModuleRelevance("model.layers.2.mlp", x=x, g=torch.zeros(3, 2, 64))], 2),
    ]
    for probe in cases:
        with pytest.raises(ValueError):
            module_scores(client, probe)
