"""Real server and client processes over loopback gRPC, with the tiny model."""

import json
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from protoken.server.state import StateStore


def _client_state(fed, name, round_number):
    path = fed.root / "clients" / name / "rounds" / f"{round_number:06d}"
    meta = json.loads((path / "meta.json").read_text())
    return load_file(str(path / "state.safetensors")), meta["num_examples"]


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_two_rounds_final_weights_are_fedavg_of_client_models(federation, mode):
    fed = federation(training__mode=mode)
    fed.start_all()
    assert fed.wait_server() == 0, fed.log("server")
    store = StateStore(fed.root / "server-state")
    rounds = [r for r in store.rounds() if r.round > 0]
    assert [r.round for r in rounds] == [1, 2]
    assert all(r.participants == sorted(fed.clients) for r in rounds)
    final = store.load_weights(rounds[-1])
    states = [_client_state(fed, name, 2) for name in fed.clients]
    total = sum(n for _, n in states)
    assert len({n for _, n in states}) > 1, "unequal example counts make the weighting visible"
    for key, tensor in final.items():
        expected = sum(state[key].double() * n for state, n in states) / total
        torch.testing.assert_close(tensor, expected.float(), rtol=1e-5, atol=1e-7)
    metrics = rounds[-1].metrics
    assert all(f"train_loss/{name}" in metrics and f"heldout_loss/{name}" in metrics for name in fed.clients)


def _start_with_math_frozen(fed) -> None:
    """Connect "math" first and freeze it before round 1 can start: it stays connected but never answers."""
    fed.start_server()
    fed.start_client("math")
    fed.wait_for_log("server", "client math connected")
    fed.procs["math"].send_signal(signal.SIGSTOP)
    fed.start_client("finance")
    fed.start_client("medical")
    fed.wait_for_log("server", "round 1: sampled")


def test_client_killed_mid_round_then_rejoins(federation):
    fed = federation(federation__quorum=0.5)
    _start_with_math_frozen(fed)  # math holds the round 1 task and cannot have answered it
    fed.kill("math")
    fed.wait_for_log("server", "round 1 complete")
    fed.start_client("math")
    assert fed.wait_server() == 0, fed.log("server")
    rounds = {r.round: r for r in StateStore(fed.root / "server-state").rounds()}
    assert rounds[1].participants == ["finance", "medical"]
    assert rounds[2].participants == ["finance", "math", "medical"]
    assert "completed without math" in fed.log("server")


def test_server_killed_after_round_one_resumes(federation):
    fed = federation(federation__round_timeout_s=12.0, federation__quorum=0.5)
    _start_with_math_frozen(fed)  # rounds end only at the deadline, so round 2 cannot finish before the kill
    fed.wait_for_log("server", "round 1 complete", timeout=120)
    fed.kill("server")
    fed.procs["math"].send_signal(signal.SIGCONT)
    store = StateStore(fed.root / "server-state")
    before = store.get(1)
    assert before is not None and store.get(2) is None
    fed.start_server("--resume")
    assert fed.wait_server() == 0, fed.log("server")
    after = {r.round: r for r in store.rounds()}
    assert sorted(after) == [0, 1, 2]
    assert (after[1].sha256, after[1].completed_at) == (before.sha256, before.completed_at)
    assert "resuming after round 1" in fed.log("server")
    assert fed.log("server").count("round 1 complete") == 1


def _run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "protoken.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_unknown_credential_is_refused(federation, tmp_path):
    fed = federation()
    fed.start_server()
    stranger = tmp_path / "stranger.credential"
    stranger.write_text('client_id = "medical"\nsecret = "not-the-real-secret"\n')
    result = _run_cli("client", "--server", fed.address, "--data", str(fed.data / "medical"),
                      "--credential", str(stranger), "--state-dir", str(tmp_path / "s"))
    assert result.returncode != 0
    assert "unknown or missing client credential" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_process_with_the_same_credential_ends_the_first(federation):
    fed = federation()
    fed.start_server()
    fed.start_client("medical")
    fed.wait_for_log("server", "client medical connected")
    twin = fed.start_client("medical-twin", credential=fed.credentials["medical"], data=fed.data / "medical")
    assert fed.procs["medical"].wait(timeout=120) == 2
    assert "another process uses this credential" in fed.log("medical")
    assert "Traceback" not in fed.log("medical")
    assert twin.poll() is None  # the newer connection keeps the session
    assert fed.log("server").count("client medical connected") == 2


def test_missing_or_empty_data_dir(tmp_path, federation):
    fed = federation()
    (tmp_path / "empty").mkdir()
    for data in (tmp_path / "nowhere", tmp_path / "empty"):
        result = _run_cli("client", "--server", fed.address, "--data", str(data),
                          "--credential", str(fed.credentials["math"]))
        assert result.returncode != 0
        assert str(data) in result.stderr and "Traceback" not in result.stderr


def test_malformed_config_names_the_key(tmp_path):
    config = tmp_path / "f.toml"
    config.write_text("[training]\nbatch_sise = 4\n")
    result = _run_cli("server", "--config", str(config))
    assert result.returncode != 0
    assert "training.batch_sise" in result.stderr and "Traceback" not in result.stderr


def test_resume_from_unreadable_state_changes_nothing(tmp_path, federation):
    fed = federation()
    state = tmp_path / "server-state"
    state.mkdir()
    (state / "index.sqlite").write_bytes(b"garbage" * 100)
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    result = _run_cli("server", "--config", str(fed.config_path), "--resume")
    assert result.returncode != 0
    assert "cannot resume" in result.stderr and "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before


def test_client_missing_the_deadline_is_left_out(federation):
    fed = federation(federation__round_timeout_s=12.0, federation__quorum=0.5)
    _start_with_math_frozen(fed)
    try:
        fed.wait_for_log("server", "round 1 complete", timeout=120)
    finally:
        fed.procs["math"].send_signal(signal.SIGCONT)
    assert fed.wait_server() == 0, fed.log("server")
    rounds = {r.round: r for r in StateStore(fed.state_dir).rounds()}
    assert rounds[1].participants == ["finance", "medical"]
    assert rounds[2].participants == ["finance", "math", "medical"]
    assert "round 1 is not open for updates" in fed.log("math")


def test_below_quorum_the_round_fails_clearly(federation):
    fed = federation(federation__round_timeout_s=12.0, federation__quorum=1.0)
    _start_with_math_frozen(fed)
    try:
        assert fed.wait_server(timeout=120) == 2
    finally:
        fed.procs["math"].send_signal(signal.SIGCONT)
    assert "round 1 failed: 2 of 3 sampled clients sent an update before the deadline, quorum is 3 " \
           "(missing: math)" in fed.log("server")
    assert [r.round for r in StateStore(fed.state_dir).rounds()] == [0]


@pytest.mark.parametrize("override, message", [
    ('attribution.layers=["*.no_such_module"]', "attribution.layers"),
    ('evaluation.heldout_dir="/nonexistent/data"', "evaluation.heldout_dir"),
    ('attribution.reference_prompts="/nonexistent/prompts.txt"', "attribution.reference_prompts"),
])
def test_refused_settings_leave_no_state_behind(federation, override, message):
    fed = federation()
    result = _run_cli("server", "--config", str(fed.config_path), "--set", override)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not fed.state_dir.exists()


def test_clients_that_cannot_train_say_so_and_the_round_does_not_wait_for_its_deadline(federation):
    fed = federation(training__learning_rate=1e30, federation__round_timeout_s=600.0)  # diverges at once
    fed.start_all()
    assert fed.wait_server(timeout=240) == 2  # well before the 600 s deadline
    log = fed.log("server")
    assert log.count("could not train: training diverged") == 3
    assert "round 1 failed: 0 of 3 sampled clients sent an update" in log
