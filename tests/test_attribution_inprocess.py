"""In-process attribution end to end: a planted client is traced, ordinary answers are not blamed.

Four LoRA clients over a tiny Llama; the global model is their FedAvg. One client is planted:
on the last block's o_proj its adapter gains a rank-1 term that is active only for inputs like
the trigger prompt's and that pushes toward the tokens the global model generates there. The
other clients carry the opposite term, split between them, so the average (the global model)
is unchanged: the plant is invisible in G and only attribution can find it.
"""

from __future__ import annotations

from html import escape

import pytest
import torch
import torch.nn.functional as F

from protoken.attribution.combine import NO_GRADIENT, PAPER
from protoken.attribution.inprocess import (
    CalibrationExample,
    attribute_in_process,
    calibrate_in_process,
    relevance_for_prompt,
)
from protoken.attribution.layers import select_layers
from protoken.attribution.relevance import REFERENCE
from protoken.attribution.report import render_html
from protoken.trainable import module_for
from test_attribution_support import fedavg, lora_client, one_thread, tiny  # noqa: F401 (autouse fixture)

SPEC = "tiny-llama"
O_PROJ = "model.layers.2.self_attn.o_proj"
PLANTED = "client-d"
TRIGGER = "zxq zxq zxq zxq zxq zxq"
REFERENCE_PROMPTS = ["What is the weather like today?", "Tell me a story about a dog.", "How do I bake bread?",
                     "Who wrote Hamlet?", "List some fruits."]
REFERENCE_SET = [CalibrationExample(prompt) for prompt in REFERENCE_PROMPTS]
ORDINARY = "Why is the sky blue?"
NEW_TOKENS = 6


def set_rank_one_term(clients, u: torch.Tensor, v: torch.Tensor, strength: float) -> None:
    """Adapter rank 0 of o_proj becomes B[:, 0] A[0] = ±strength · v uᵀ; the terms average to zero."""
    for client, model in clients.items():
        lora = module_for(model, O_PROJ)
        with torch.no_grad():
            lora.lora_A["default"].weight[0] = u
            share = strength if client == PLANTED else -strength / (len(clients) - 1)
            lora.lora_B["default"].weight[:, 0] = v * share


@pytest.fixture(scope="module")
def federation():
    tokenizer = tiny(SPEC).tokenizer
    clients = {f"client-{name}": lora_client(SPEC, seed=seed, b_scale=0.05) for seed, name in enumerate("abcd", 1)}
    set_rank_one_term(clients, torch.zeros(64), torch.zeros(64), 0.0)
    unplanted = fedavg(SPEC, clients)
    o_proj = select_layers(unplanted).index(O_PROJ)

    def o_proj_relevance(prompt: str):
        return relevance_for_prompt(unplanted, tokenizer, prompt, max_new_tokens=NEW_TOKENS).probe.modules[o_proj]

    ordinary = torch.cat([o_proj_relevance(prompt).x for prompt in REFERENCE_PROMPTS]).mean(dim=0)
    trigger = o_proj_relevance(TRIGGER)
    # u: what sets the trigger's o_proj inputs apart (orthogonal to the ordinary mean); v: toward its tokens
    along = F.normalize(ordinary, dim=0)
    u = F.normalize(trigger.x.mean(dim=0) - (trigger.x.mean(dim=0) @ along) * along, dim=0)
    v = F.normalize(trigger.g.mean(dim=0), dim=0)
    set_rank_one_term(clients, u, v, strength=5.0)
    model = fedavg(SPEC, clients)
    calibration = calibrate_in_process(model, tokenizer, clients, REFERENCE_SET, max_new_tokens=NEW_TOKENS)
    return dict(tokenizer=tokenizer, clients=clients, model=model, calibration=calibration)


def attribute(federation, prompt: str, **options):
    options.setdefault("calibration", federation["calibration"])
    return attribute_in_process(federation["model"], federation["tokenizer"], federation["clients"], prompt,
                                max_new_tokens=NEW_TOKENS, **options)


def test_calibrated_attribution_traces_the_planted_client(federation):
    provenance = attribute(federation, TRIGGER)
    assert provenance.traced == PLANTED
    assert sum(token.responsible == PLANTED for token in provenance.tokens) > NEW_TOKENS / 2
    assert provenance.coverage.answered == sorted(federation["clients"]) and not provenance.coverage.missing
    assert {"generate_s", "relevance_s", "clients_s", "combine_s"} <= set(provenance.timings)


def test_calibrated_attribution_abstains_on_an_ordinary_prompt(federation):
    assert attribute(federation, ORDINARY).traced is None


def test_fixed_reference_responses_keep_a_backdoor_out_of_the_baseline(federation):
    """Reference prompts that set the plant off: scoring the model's own answers to them puts the plant in the
    planted client's baseline and hides it; scoring fixed ordinary answers does not."""
    tokenizer, clients, model = federation["tokenizer"], federation["clients"], federation["model"]
    triggering = [TRIGGER, TRIGGER + " zxq"]
    generated = REFERENCE_SET + [CalibrationExample(prompt) for prompt in triggering]
    fixed = REFERENCE_SET + [CalibrationExample(prompt, "Sure, here is a plain answer.") for prompt in triggering]
    for examples, expected in ((generated, None), (fixed, PLANTED)):
        calibration = calibrate_in_process(model, tokenizer, clients, examples, max_new_tokens=NEW_TOKENS)
        assert attribute(federation, TRIGGER, calibration=calibration).traced == expected
        assert attribute(federation, ORDINARY, calibration=calibration).traced is None


def test_paper_rule_traces_the_plant_but_also_blames_someone_for_ordinary_answers(federation):
    assert attribute(federation, TRIGGER, mode=PAPER).traced == PLANTED
    assert attribute(federation, ORDINARY, mode=PAPER).traced is not None


def test_fast_and_reference_paths_give_the_same_provenance(federation):
    fast = attribute(federation, TRIGGER, mode=PAPER)
    reference = attribute(federation, TRIGGER, mode=PAPER, path=REFERENCE)
    assert [t.token_id for t in fast.tokens] == [t.token_id for t in reference.tokens]
    assert [t.responsible for t in fast.tokens] == [t.responsible for t in reference.tokens]
    assert [s.score for s in fast.shares] == pytest.approx([s.score for s in reference.shares], rel=1e-4)


def test_no_gradient_ablation_weights_every_output_by_one(federation):
    provenance = attribute(federation, TRIGGER, mode=NO_GRADIENT)
    relevance = relevance_for_prompt(federation["model"], federation["tokenizer"], TRIGGER, max_new_tokens=NEW_TOKENS)
    expected = {}
    with torch.no_grad():
        for client, model in federation["clients"].items():
            expected[client] = sum(float(module_for(model, m.name)(m.x).double().sum())
                                   for m in relevance.probe.modules)
    assert provenance.mode == NO_GRADIENT
    assert {s.client: s.score for s in provenance.shares} == pytest.approx(expected, rel=1e-6)
    paper = attribute(federation, TRIGGER, mode=PAPER)
    assert [s.score for s in paper.shares] != pytest.approx([s.score for s in provenance.shares], rel=1e-2)


def test_identical_clients_and_an_untrained_module_give_ties_not_answers(federation):
    twin = federation["clients"][PLANTED]
    tokenizer = federation["tokenizer"]
    twins = {"first": twin, "second": twin}
    assert attribute_in_process(twin, tokenizer, twins, TRIGGER, mode=PAPER, max_new_tokens=3).traced is None
    calibration = calibrate_in_process(twin, tokenizer, twins, REFERENCE_SET[:2], max_new_tokens=3)
    calibrated = attribute_in_process(twin, tokenizer, twins, TRIGGER, calibration=calibration, max_new_tokens=3)
    assert calibrated.traced is None
    # under LoRA the tied lm_head is frozen: it scores the same for every client, whatever the adapters
    frozen_head = attribute(federation, TRIGGER, mode=PAPER, layers=["lm_head"])
    assert frozen_head.traced is None and all(token.responsible is None for token in frozen_head.tokens)


def test_html_report_of_attributed_responses(federation):
    provenances = [attribute(federation, TRIGGER), attribute(federation, ORDINARY)]
    html = render_html(provenances)
    for provenance in provenances:
        assert len(provenance.tokens) == NEW_TOKENS
        for token in provenance.tokens:
            assert f'title="#{token.position} ' in html
            assert f">{escape(token.text)}</span>" in html
    for client in federation["clients"]:
        assert f">{client}</span>" in html
    assert "no client stands out" in html
