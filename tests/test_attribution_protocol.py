"""Attribution through the probe protocol, against real server and client processes."""

import time

import pytest
import torch
from safetensors.torch import load_file

from protoken.attribution import Calibration, attribute_in_process
from protoken.cli import main
from protoken.errors import UserError
from protoken.models import load_model
from protoken.query import AttributionClient
from protoken.server.state import StateStore
from protoken.trainable import build_trainable, load_trainable_state

PROMPT = "What is 3 plus 3?"


def _model_with(fed, state):
    spec = fed.config.trainable_spec()
    model = build_trainable(load_model("tiny-llama").model, spec)
    load_trainable_state(model, state)
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-round federation that stays up to answer attribution queries."""
    from federation_harness import Federation

    fed = Federation(tmp_path_factory.mktemp("fed"), federation__serve_after_training=True,
                     training__local_steps=3, training__learning_rate=5e-3, lora__rank=8,
                     attribution__max_new_tokens=8, attribution__probe_timeout_s=30.0)
    fed.start_all()
    try:
        fed.wait_for_log("server", "serving attribution queries", timeout=240)
        yield fed
    finally:
        fed.close()


def test_protocol_equals_in_process_reference(trained):
    fed = trained
    client = AttributionClient(fed.address)
    remote = client.attribute(PROMPT, mode="paper").provenance
    store = StateStore(fed.root / "server-state")
    record = store.latest()
    tokenizer = load_model("tiny-llama").tokenizer
    global_model = _model_with(fed, store.load_weights(record))
    client_models = {name: _model_with(fed, load_file(str(fed.root / "clients" / name / "rounds" /
                                                          f"{record.round:06d}" / "state.safetensors")))
                     for name in fed.clients}
    local = attribute_in_process(global_model, tokenizer, client_models, PROMPT, mode="paper",
                                 max_new_tokens=8, layers=remote.modules)
    assert remote.response == local.response and len(remote.tokens) == len(local.tokens) > 0
    assert [t.token_id for t in remote.tokens] == [t.token_id for t in local.tokens]
    for r, l in zip(remote.tokens, local.tokens, strict=True):
        torch.testing.assert_close(torch.tensor([s.score for s in r.shares]),
                                   torch.tensor([s.score for s in l.shares]), rtol=1e-4, atol=1e-6)
        assert r.responsible == l.responsible
    assert remote.traced == local.traced
    assert remote.coverage.answered == sorted(fed.clients) and remote.coverage.missing == []


def test_server_holds_no_client_weights_and_attribution_works(trained):
    fed = trained
    state = fed.root / "server-state"
    weight_files = sorted(p.relative_to(state).as_posix() for p in state.rglob("*.safetensors"))
    assert weight_files == [f"rounds/{r:06d}/global.safetensors" for r in (0, 1, 2)]
    store = StateStore(state)
    final = store.load_weights(store.latest())
    for name in fed.clients:
        own = load_file(str(fed.root / "clients" / name / "rounds" / "000002" / "state.safetensors"))
        assert any(not torch.equal(final[k], own[k]) for k in own), "the global model is not a client's"
    result = AttributionClient(fed.address).attribute(PROMPT, mode="calibrated")
    p = result.provenance
    assert p.mode == "calibrated" and p.objective == "logit" and p.round == 2 and len(p.tokens) > 0
    assert abs(sum(s.probability for s in p.shares) - 1.0) < 1e-6
    assert result.probe_bytes > 0 and result.answer_bytes > 0
    saved = sorted((state / "calibration").glob("round-000002-*.json"))
    assert len(saved) == 1
    calibration = Calibration.load(saved[0])
    assert sorted(calibration.clients) == sorted(fed.clients)


def test_earlier_round_and_user_errors(trained):
    client = AttributionClient(trained.address)
    assert client.attribute(PROMPT, round_number=1, mode="paper").provenance.round == 1
    with pytest.raises(UserError, match="round 7 is unknown"):
        client.attribute(PROMPT, round_number=7)
    with pytest.raises(UserError, match="prompt is empty"):
        client.attribute("   ")
    assert [r.round for r in client.rounds()] == [1, 2]
    with pytest.raises(UserError, match="cannot reach"):
        AttributionClient("127.0.0.1:9").attribute(PROMPT, timeout=5)


def test_restarted_light_client_answers_and_a_missing_client_is_reported(trained):
    """Runs last: it restarts one client with --release-model and stops another."""
    fed = trained
    fed.kill("finance")
    fed.start_client("finance", extra=["--release-model"])
    client = AttributionClient(fed.address)
    deadline = time.time() + 180
    while True:
        result = client.attribute(PROMPT, mode="paper").provenance
        if result.coverage.answered == sorted(fed.clients) or time.time() > deadline:
            break
        time.sleep(1)
    assert result.coverage.answered == sorted(fed.clients), result.coverage
    fed.kill("math")
    partial = client.attribute(PROMPT, mode="paper").provenance
    assert partial.coverage.missing == ["math"]
    assert partial.coverage.answered == ["finance", "medical"]
    assert {s.client for s in partial.shares} == {"finance", "medical"}


def test_a_calibration_missing_a_client_is_not_kept_and_a_damaged_round_is_a_clear_error(trained):
    """After the test above: math is down."""
    fed = trained
    client = AttributionClient(fed.address)
    result = client.attribute(PROMPT, round_number=1, mode="calibrated").provenance
    assert result.coverage.missing == ["math"]
    assert not list((fed.state_dir / "calibration").glob("round-000001-*"))  # fitted again once math is back
    weights = fed.state_dir / "rounds" / "000001" / "global.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"XXXX")
    with pytest.raises(UserError) as failed:
        client.attribute(PROMPT, round_number=1, mode="paper")
    assert "round 1's weights" in str(failed.value) and "Exception iterating" not in str(failed.value)
    assert "attribution failed: round 1's weights" in fed.log("server")


@pytest.mark.parametrize("argv, message", [
    (["--server", "127.0.0.1:99999"], "must be HOST:PORT"),
    (["--server", ""], "must be HOST:PORT"),
    (["--server", "127.0.0.1:9", "--out", "no-such-dir/x.txt"], "does not exist"),
    (["--server", "127.0.0.1:9", "--out", "adir/"], "is a directory"),
])
def test_attribute_refuses_bad_arguments_before_asking(tmp_path, monkeypatch, argv, message, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    assert main(["attribute", "--prompt", "hi", *argv]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]
