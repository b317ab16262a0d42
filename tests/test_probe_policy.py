"""A client checks every probe before computing: round, module policy, shapes, finite values."""

import math

import pytest
import torch

from protoken.attribution import module_scores, relevance_for_prompt, select_layers
from protoken.client.probes import ProbeAnswerer, compile_policy
from protoken.client.store import LocalModelStore
from protoken.errors import UserError
from protoken.models import load_model
from protoken.trainable import TrainableSpec, build_trainable, trainable_state
from protoken.v1 import federation_pb2 as pb
from protoken.wire.probes import probe_from_wire, probe_to_wire, scores_from_wire


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    loaded = load_model("tiny-llama")
    model = build_trainable(loaded.model, TrainableSpec(lora_rank=4), seed=0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    store = LocalModelStore(tmp_path_factory.mktemp("client"), "medical")
    store.save(1, trainable_state(model), {"spec": {}})
    relevance = relevance_for_prompt(model, loaded.tokenizer, "Hello there", max_new_tokens=4)
    return model, store, relevance


def _answer(setup, request):
    model, store, _ = setup
    request.probe_id = "p1"
    return ProbeAnswerer(store, lambda round_number: model).answer(request)


def test_answer_equals_local_scores_and_float16_wire(setup):
    model, _, relevance = setup
    answer = _answer(setup, probe_to_wire(relevance.probe, 1))
    assert not answer.HasField("error")
    probe = relevance.probe
    scores = scores_from_wire(answer.scores, probe.num_tokens, len(probe.modules), "c")
    torch.testing.assert_close(scores, module_scores(model, probe))
    half = _answer(setup, probe_to_wire(probe, 1, torch.float16))
    half_scores = scores_from_wire(half.scores, probe.num_tokens, len(probe.modules), "c")
    torch.testing.assert_close(half_scores, scores, rtol=2e-2, atol=2e-2)
    assert probe_to_wire(probe, 1, torch.float16).ByteSize() < probe_to_wire(probe, 1).ByteSize()


def test_refuses_round_it_did_not_take_part_in(setup):
    answer = _answer(setup, probe_to_wire(setup[2].probe, 5))
    assert answer.error.code == pb.ERROR_CODE_UNKNOWN_ROUND and "round 5" in answer.error.message


def test_refuses_module_outside_policy(setup):
    model, _, relevance = setup
    layers = select_layers(model, ["model.layers.0.mlp"])
    early = relevance_for_prompt(model, load_model("tiny-llama").tokenizer, "Hello there", layers=layers,
                                 max_new_tokens=2)
    answer = _answer(setup, probe_to_wire(early.probe, 1))
    assert answer.error.code == pb.ERROR_CODE_POLICY_REFUSED and "model.layers.0.mlp" in answer.error.message


def test_refuses_wrong_shapes_and_non_finite_values(setup):
    request = probe_to_wire(setup[2].probe, 1)
    wrong = pb.ProbeRequest()
    wrong.CopyFrom(request)
    wrong.modules[0].x.shape[1] += 1
    answer = _answer(setup, wrong)
    assert answer.error.code == pb.ERROR_CODE_INVALID_ARGUMENT and "do not hold" in answer.error.message
    nan = pb.ProbeRequest()
    nan.CopyFrom(request)
    x = nan.modules[0].x
    x.data = bytes(bytearray(torch.full((math.prod(x.shape),), float("nan")).numpy().tobytes()))
    answer = _answer(setup, nan)
    assert answer.error.code == pb.ERROR_CODE_INVALID_ARGUMENT and "NaN" in answer.error.message
    rows = pb.ProbeRequest()
    rows.CopyFrom(request)
    rows.num_tokens += 1
    answer = _answer(setup, rows)
    assert answer.error.code == pb.ERROR_CODE_INVALID_ARGUMENT and "rows" in answer.error.message


def test_probe_round_trip_preserves_every_layout(setup):
    probe = setup[2].probe
    back = probe_from_wire(probe_to_wire(probe, 1))
    assert back.names == probe.names and back.num_tokens == probe.num_tokens
    for a, b in zip(back.modules, probe.modules, strict=True):
        assert torch.equal(a.x, b.x.float())
        assert (a.g is None) == (b.g is None) and (a.target_ids is None) == (b.target_ids is None)
    with pytest.raises(ValueError, match="names no module"):
        probe_from_wire(pb.ProbeRequest(round=1, num_tokens=1))


def test_a_state_directory_belongs_to_one_client(tmp_path):
    LocalModelStore(tmp_path / "state", "medical")
    with pytest.raises(UserError, match="belongs to client 'medical'"):
        LocalModelStore(tmp_path / "state", "finance")
    LocalModelStore(tmp_path / "state", "medical")  # its owner may reopen it


def test_a_bad_allow_module_pattern_is_refused_up_front():
    with pytest.raises(UserError, match="not a regular expression"):
        compile_policy(["(["])
    assert compile_policy([r"model\.layers\.1\..*"])[0].fullmatch("model.layers.1.mlp")


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_a_damaged_round_is_refused_with_a_reason_and_the_client_keeps_answering(setup, damage):
    model, store, relevance = setup
    store.save(2, trainable_state(model), {"spec": {}})
    path = store.root / "rounds" / "000002" / "state.safetensors"
    data = path.read_bytes()
    if damage == "flip":
        path.write_bytes(data[:-8] + bytes(8))  # the header still parses: only the checksum sees it
    elif damage == "truncate":
        path.write_bytes(data[:1000])
    else:
        path.unlink()
    answer = _answer(setup, probe_to_wire(relevance.probe, 2))
    assert answer.error.code == pb.ERROR_CODE_INTERNAL and "round 2" in answer.error.message
    assert not _answer(setup, probe_to_wire(relevance.probe, 1)).HasField("error")
