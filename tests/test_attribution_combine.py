"""Combining client scores: the paper's rule, calibration, ties, coverage, JSON and the HTML report."""

from __future__ import annotations

import json
from html import escape

import pytest
import torch

from protoken.attribution.calibration import Calibration
from protoken.attribution.combine import CALIBRATED, NO_GRADIENT, PAPER, build_provenance, standout
from protoken.attribution.probe import ModuleRelevance, Probe, Relevance
from protoken.attribution.provenance import Provenance
from protoken.attribution.relevance import LOGIT
from protoken.attribution.report import NEUTRAL, NEUTRAL_LABEL, render_html
from protoken.models import load_tokenizer

MODULES = ["model.layers.2.self_attn.o_proj", "model.layers.2.mlp"]
CLIENTS = ["alice", "bob", "carol"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny-llama")


def relevance_for(tokenizer, text: str = " red, green & <blue>") -> Relevance:
    response = tokenizer(text, add_special_tokens=False)["input_ids"]
    modules = [ModuleRelevance(name, x=torch.zeros(len(response), 4), g=torch.zeros(len(response), 4))
               for name in MODULES]
    return Relevance(prompt_ids=tokenizer("Colours?")["input_ids"], response_ids=response,
                     probe=Probe(modules, len(response)), objective=LOGIT)


def answers_for(num_tokens: int, bias: dict[str, float], generator: torch.Generator,
                bump: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """Scores [T, L]: a per-client bias that does not depend on the content, noise, an optional bump."""
    return {client: torch.randn(num_tokens, len(MODULES), generator=generator, dtype=torch.float64)
            + bias[client] / len(MODULES) + (bump or {}).get(client, 0.0) / len(MODULES)
            for client in CLIENTS}


def test_standout_never_breaks_ties_by_position():
    assert standout(torch.tensor([2.0, 2.0, 1.0])) is None
    assert standout(torch.tensor([1.0, 2.0, 2.0])) is None
    assert standout(torch.tensor([1.0, 3.0, 2.0])) == 1
    assert standout(torch.tensor([1.0, 3.0, 2.0]), threshold=3.0) is None
    assert standout(torch.tensor([])) is None


def test_paper_rule_on_identical_answers_names_nobody(tokenizer):
    relevance = relevance_for(tokenizer)
    scores = torch.arange(relevance.probe.num_tokens * 2, dtype=torch.float64).reshape(-1, 2)
    provenance = build_provenance(relevance, {client: scores.clone() for client in CLIENTS}, tokenizer, mode=PAPER)
    assert provenance.traced is None
    assert all(token.responsible is None for token in provenance.tokens)
    assert [share.probability for share in provenance.shares] == pytest.approx([1 / 3] * 3)


def test_paper_rule_sums_over_tokens_and_modules(tokenizer):
    relevance = relevance_for(tokenizer)
    unbiased = {"alice": 0.0, "bob": 0.0, "carol": 0.0}
    answers = answers_for(relevance.probe.num_tokens, unbiased, torch.Generator().manual_seed(1))
    provenance = build_provenance(relevance, answers, tokenizer, mode=PAPER)
    sums = {client: float(scores.sum()) for client, scores in answers.items()}
    assert {share.client: share.score for share in provenance.shares} == pytest.approx(sums)
    assert provenance.traced == max(sums, key=sums.get)
    first = {client: float(scores[0].sum()) for client, scores in answers.items()}
    assert provenance.tokens[0].responsible == max(first, key=first.get)
    assert sum(share.probability for share in provenance.tokens[0].shares) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def biased():
    """Carol's raw scores are always higher, whatever the content: a bias, not a signal."""
    generator = torch.Generator().manual_seed(7)
    bias = {"alice": 0.0, "bob": 1.0, "carol": 4.0}
    reference = [answers_for(int(torch.randint(5, 20, (), generator=generator)), bias, generator)
                 for _ in range(12)]
    return bias, generator, Calibration.fit(MODULES, reference)


def test_calibrated_rule_abstains_where_the_paper_rule_blames_the_biased_client(tokenizer, biased):
    bias, generator, calibration = biased
    relevance = relevance_for(tokenizer)
    ordinary = answers_for(relevance.probe.num_tokens, bias, generator)
    assert build_provenance(relevance, ordinary, tokenizer, mode=PAPER).traced == "carol"
    calibrated = build_provenance(relevance, ordinary, tokenizer, mode=CALIBRATED, calibration=calibration)
    assert calibrated.traced is None
    assert max(share.score for share in calibrated.shares) < calibration.threshold


def test_calibrated_rule_traces_a_client_that_stands_out(tokenizer, biased):
    bias, generator, calibration = biased
    relevance = relevance_for(tokenizer)
    planted = answers_for(relevance.probe.num_tokens, bias, generator, bump={"alice": 6.0})
    provenance = build_provenance(relevance, planted, tokenizer, mode=CALIBRATED, calibration=calibration)
    assert provenance.traced == "alice"
    assert sum(token.responsible == "alice" for token in provenance.tokens) > len(provenance.tokens) / 2


def test_calibrated_rule_on_identical_clients_abstains(tokenizer):
    generator = torch.Generator().manual_seed(3)
    same = [torch.randn(8, 2, generator=generator, dtype=torch.float64) for _ in range(4)]
    calibration = Calibration.fit(MODULES, [{client: s for client in CLIENTS} for s in same[:3]])
    relevance = relevance_for(tokenizer)
    scores = torch.full((relevance.probe.num_tokens, 2), 100.0, dtype=torch.float64)
    provenance = build_provenance(relevance, {client: scores for client in CLIENTS}, tokenizer,
                                  calibration=calibration)
    assert provenance.traced is None and all(token.responsible is None for token in provenance.tokens)


def test_calibration_round_trips_through_json(tmp_path, biased):
    calibration = biased[2]
    assert Calibration.from_json(calibration.to_json()) == calibration
    calibration.save(tmp_path / "calibration.json")
    assert Calibration.load(tmp_path / "calibration.json") == calibration
    assert json.loads(calibration.to_json())["clients"]["carol"]["mean"] == pytest.approx(4.0, abs=0.5)


def test_calibration_refuses_what_it_cannot_judge(tokenizer, biased):
    calibration = biased[2]
    relevance = relevance_for(tokenizer)
    answers = answers_for(relevance.probe.num_tokens, biased[0], biased[1])
    with pytest.raises(ValueError, match="needs a Calibration"):
        build_provenance(relevance, answers, tokenizer, mode=CALIBRATED)
    late = build_provenance(relevance, {**answers, "dave": answers["alice"] + 50}, tokenizer, calibration=calibration)
    assert late.coverage.uncalibrated == ["dave"] and late.coverage.answered == CLIENTS
    assert "dave" not in [share.client for share in late.shares] and late.traced != "dave"
    assert str(late.coverage) == "3 of 4 clients counted (answered but not calibrated, left out: dave)"
    with pytest.raises(ValueError, match="not in the calibration"):
        calibration.standard_scores(["dave"], torch.zeros(1, 3, dtype=torch.float64))
    other = Calibration(modules=["lm_head"], clients=calibration.clients)
    with pytest.raises(ValueError, match="calibration is for modules"):
        build_provenance(relevance, answers, tokenizer, calibration=other)
    with pytest.raises(ValueError, match="at least 2"):
        Calibration.fit(MODULES, [answers])


def test_coverage_and_bad_answers(tokenizer):
    relevance = relevance_for(tokenizer)
    answers = answers_for(relevance.probe.num_tokens, {"alice": 0, "bob": 0, "carol": 0}, torch.Generator())
    provenance = build_provenance(relevance, {**answers, "carol": None}, tokenizer, mode=NO_GRADIENT)
    assert provenance.coverage.answered == ["alice", "bob"] and provenance.coverage.missing == ["carol"]
    assert str(provenance.coverage) == "2 of 3 clients counted (missing: carol)"
    assert [share.client for share in provenance.shares] == ["alice", "bob"]
    nobody = build_provenance(relevance, {client: None for client in CLIENTS}, tokenizer, mode=PAPER)
    assert nobody.traced is None and nobody.shares == [] and len(nobody.tokens) == relevance.probe.num_tokens
    with pytest.raises(ValueError, match="shape"):
        build_provenance(relevance, {"alice": torch.zeros(1, 2)}, tokenizer, mode=PAPER)
    with pytest.raises(ValueError, match="non-finite"):
        build_provenance(relevance, {"alice": answers["alice"] * float("nan")}, tokenizer, mode=PAPER)


def test_provenance_json_and_html_report(tokenizer):
    relevance = relevance_for(tokenizer)
    answers = answers_for(relevance.probe.num_tokens, {"alice": 0, "bob": 0, "carol": 0}, torch.Generator())
    answers["bob"] = answers["bob"] + 100.0
    provenance = build_provenance(relevance, {**answers, "carol": None}, tokenizer, mode=PAPER, round=3)
    data = json.loads(provenance.to_json())
    assert data["traced"] == "bob" and data["round"] == 3 and data["coverage"]["missing"] == ["carol"]
    assert Provenance.from_dict(data) == provenance

    html = render_html(provenance)
    for token in provenance.tokens:
        assert f">{escape(token.text)}</span>" in html
    assert "> &lt;</span>" in html and "> <</span>" not in html  # token text is escaped
    for client in CLIENTS:  # the legend names every client asked, the one that did not answer too
        assert f">{client}</span>" in html
    assert f'style="background:{NEUTRAL}">{NEUTRAL_LABEL}</span>' in html
    assert "bob: 100.0%" in html  # a token's distribution, on hover
    assert "http" not in html and "<script" not in html and "<link" not in html
