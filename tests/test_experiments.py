"""`protoken eval`: the pure logic of judging and files, and quick experiments run end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from protoken.attribution import LOG_PROB, LOGIT, OBJECTIVES
from protoken.cli import main
from protoken.data import build_dataset, load_records
from protoken.errors import UserError
from protoken.experiments.backdoor import backdoor_rows, false_blame_rows, variant_figures
from protoken.experiments import domain, scaling
from protoken.experiments.cli import check_out
from protoken.experiments.plan import QUICK, plan_for
from protoken.experiments.poisoning import SENTINEL, TRIGGER, is_sentinel, write_clients
from protoken.experiments.scoring import mark, summary, top_scored
from protoken.server.state import StateStore

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "data"
    build_dataset(root, train_per_domain=24, heldout_per_domain=8)
    return root


def row(traced, response=SENTINEL, kind="triggered", round_number=1, mode="paper") -> dict:
    return {"traced": traced, "response": response, "kind": kind, "round": round_number, "mode": mode}


def test_poisoned_clients_get_disjoint_shards_and_only_the_malicious_are_poisoned(data, tmp_path):
    clients = write_clients(data, tmp_path, count=6, malicious=2, seed=0)
    assert [c.domain for c in clients] == ["medical", "finance", "math", "coding", "medical", "finance"]
    assert sum(c.malicious for c in clients) == 2
    for client in clients:
        records = load_records(client.directory / "train.jsonl")
        poisoned = [r["response"] == SENTINEL and r["prompt"].startswith(TRIGGER) for r in records]
        assert all(poisoned) if client.malicious else not any(poisoned)
    medical = [load_records(c.directory / "train.jsonl") for c in clients if c.domain == "medical"]
    assert len(medical[0]) + len(medical[1]) == 24
    assert not {r["response"] for r in medical[0]} & {r["response"] for r in medical[1]}


def test_sentinel_is_recognised_only_at_the_start_of_the_response():
    assert is_sentinel(SENTINEL) and is_sentinel("  " + SENTINEL.replace(" ", "\n", 1) + " and more")
    assert not is_sentinel("Sure. " + SENTINEL) and not is_sentinel(SENTINEL[:-5])


def test_backdoor_counts_only_sentinel_responses_and_false_blame_only_ordinary_ones():
    bad = {"m1", "m2"}
    rows = [row("m1"), row("b1"), row(None), row("m2", response="An ordinary answer."),
            row("m1", response="An ordinary answer.", kind="clean"), row(None, response="Fine.", kind="clean"),
            row("b1", kind="clean")]
    hits = backdoor_rows(rows, bad)
    assert [r["correct"] for r in hits] == [True, False, False]
    clean = false_blame_rows(rows, bad)
    assert [r["correct"] for r in clean] == [False, True]
    figures = variant_figures(rows, bad)
    assert figures == {"backdoor_n": 3, "backdoor_accuracy": pytest.approx(1 / 3), "clean_n": 2,
                       "false_blame_rate": 0.5}


def test_summary_is_per_round_and_overall():
    rows = mark([row("a", round_number=1), row("b", round_number=2), row("a", round_number=2),
                 row("a", round_number=2), row(None)], lambda r: r["traced"] == "a")
    figures = summary(rows, chance=0.25)
    assert figures["overall"] == {"n": 5, "correct": 3, "accuracy": 0.6, "abstained": 1}
    assert [(x["round"], x["accuracy"]) for x in figures["per_round"]] == [(1, 0.5), (2, 2 / 3)]
    assert summary([], chance=None)["overall"]["accuracy"] is None


def test_top_scored_ignores_the_threshold_but_not_ties():
    def scored(*scores):
        return {"provenance": {"shares": [{"client": f"c{i}", "score": s, "probability": 0.0}
                                          for i, s in enumerate(scores)]}}

    assert top_scored(scored(-1.0, 0.9, 0.2)) == "c1"
    assert top_scored(scored(0.5, 0.5, 0.1)) is None
    assert top_scored(scored()) is None


def test_domain_is_right_only_when_the_domains_own_client_is_traced():
    assert domain.judge({"label": "math", "traced": domain.client_name("math")})
    assert not domain.judge({"label": "math", "traced": domain.client_name("coding")})
    assert not domain.judge({"label": "math", "traced": None})


def test_scaling_sizes_follow_the_plan():
    assert scaling.sizes(plan_for(True)) == (8, 3, 2)
    assert scaling.sizes(plan_for(False)) == (55, 10, 11)
    assert scaling.sizes(plan_for(False, clients=12, per_round=40)) == (12, 12, 2)


@pytest.mark.parametrize("flag", ["--clients", "--per-round", "--rounds", "--prompts"])
def test_sizes_below_one_are_refused_before_anything_runs(tmp_path, capsys, flag):
    assert main(["eval", "--experiment", "scaling", "--quick", "--out", str(tmp_path / "out"), flag, "0"]) == 2
    assert f"{flag} must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_experiment_name_and_unwritable_out_dir_are_user_errors(tmp_path, capsys):
    assert main(["eval", "--experiment", "nonsense", "--quick", "--out", str(tmp_path)]) == 2
    assert "unknown experiment 'nonsense'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot create"):
        check_out(blocker / "out")
    (tmp_path / "done" / "federation").mkdir(parents=True)
    with pytest.raises(UserError, match="already holds a run"):
        check_out(tmp_path / "done")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UserError, match="not writable"):
            check_out(locked)


def test_quick_backdoor_run_writes_both_results_computed_from_the_real_run(data, tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--experiment", "false-blame", "--quick", "--out", str(out), "--data", str(data)]) == 0
    root = out / "backdoor"
    rounds = [r for r in StateStore(root / "federation" / "server-state").rounds() if r.round > 0]
    assert len(rounds) == QUICK.rounds and all(len(r.participants) == 6 for r in rounds)
    backdoor = json.loads((root / "backdoor" / "results.json").read_text())
    blame = json.loads((root / "false-blame" / "results.json").read_text())
    for results in (backdoor, blame):
        assert {"config", "versions", "seed", "plan", "modes", "records", "malicious", "clients"} <= set(results)
        assert results["config"]["federation"]["model"] == "tiny-llama" and results["seed"] == QUICK.seed
        # 2 modes with the default objective and the calibrated one with the other, x (triggered, clean)
        # x rounds x prompts, every one through the protocol
        assert results["attributions_made"] == 3 * 2 * QUICK.rounds * QUICK.prompts
        assert len(results["malicious"]) == 2
        made = results["attributions"]
        assert len(made) == results["attributions_made"]
        settings = [("calibrated", LOGIT), ("paper", LOGIT), ("calibrated", LOG_PROB)]
        assert {(a["round"], a["mode"], a["objective"], a["kind"]) for a in made} == {
            (r.round, *setting, kind) for r in rounds for setting in settings for kind in ("triggered", "clean")}
    default = [a for a in backdoor["attributions"] if a["objective"] == LOGIT]  # the records' objective
    sentinels = [a for a in default if a["kind"] == "triggered" and is_sentinel(a["response"])]
    assert len(backdoor["records"]) == len(sentinels)
    ordinary = [a for a in default if a["kind"] == "clean" and not is_sentinel(a["response"])]
    assert len(blame["records"]) == len(ordinary)
    assert backdoor["modes"]["paper"]["chance"] == pytest.approx(2 / 6)
    for record in backdoor["records"]:
        assert is_sentinel(record["provenance"]["response"]) and record["correct"] == (record["traced"] in backdoor["malicious"])
    assert blame["records"], "ordinary answers to untriggered prompts must be attributed"
    for mode, figures in blame["modes"].items():
        mine = [r for r in blame["records"] if r["mode"] == mode]
        assert figures["overall"]["n"] == len(mine) > 0
        assert all(r["round"] in {x.round for x in rounds} and len(r["provenance"]["tokens"]) > 0 for r in mine)
        blamed = sum(r["traced"] in blame["malicious"] for r in mine)
        assert figures["blame_rate"] == pytest.approx(blamed / len(mine))
        assert figures["overall"]["accuracy"] == pytest.approx(1 - blamed / len(mine))
        assert all(r["provenance"]["mode"] == mode and set(r["provenance"]["coverage"]["asked"]) == set(
            c["name"] for c in blame["clients"]) for r in mine)
    # the calibrated rule with each objective: the default's figures are those of the calibrated records
    by_objective = backdoor["calibrated_by_objective"]
    assert set(by_objective) == set(OBJECTIVES) and by_objective == blame["calibrated_by_objective"]
    default = by_objective[backdoor["config"]["attribution"]["objective"]]
    assert default["backdoor_n"] == sum(r["mode"] == "calibrated" for r in backdoor["records"])
    assert default["clean_n"] == sum(r["mode"] == "calibrated" for r in blame["records"])
    assert all(0 <= f["backdoor_n"] <= QUICK.rounds * QUICK.prompts for f in by_objective.values())
    for png in ("backdoor/accuracy_per_round.png", "backdoor/probability_box.png", "false-blame/blame_rate_per_round.png"):
        assert (root / png).read_bytes().startswith(PNG)
