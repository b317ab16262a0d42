import hashlib
import pickle

import pytest
import torch

from protoken.v1 import federation_pb2 as pb
from protoken.wire.payload import (PayloadAssembler, PayloadError, assemble_state, check_state_matches,
                                   chunk_payload, decode_state, state_chunks)
from protoken.wire.tensors import TensorError, from_wire, to_wire


def _state():
    torch.manual_seed(0)
    return {
        "f32": torch.randn(3, 5),
        "f16": torch.randn(7).half(),
        "bf16": torch.randn(2, 2, 2).bfloat16(),
        "i64": torch.arange(11),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
    }


def test_round_trip_several_dtypes_and_shapes():
    state = _state()
    chunks = state_chunks(state, chunk_bytes=64)
    assert len(chunks) > 3
    back = assemble_state(chunks)
    assert set(back) == set(state)
    for name, tensor in state.items():
        assert back[name].dtype == tensor.dtype and back[name].shape == tensor.shape
        assert torch.equal(back[name], tensor)


def test_corrupted_chunk_is_rejected():
    chunks = state_chunks(_state(), chunk_bytes=64)
    broken = pb.PayloadChunk()
    broken.CopyFrom(chunks[2])
    broken.data = bytes([broken.data[0] ^ 0xFF]) + broken.data[1:]
    chunks[2] = broken
    with pytest.raises(PayloadError, match="checksum mismatch"):
        assemble_state(chunks)


def test_wrong_checksum_is_rejected():
    chunks = chunk_payload(b"x" * 100, chunk_bytes=40)
    for chunk in chunks:
        chunk.sha256 = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(PayloadError, match="checksum mismatch"):
        assemble_state(chunks)


def test_inconsistent_truncated_and_oversized_streams():
    chunks = chunk_payload(b"y" * 100, chunk_bytes=40)
    with pytest.raises(PayloadError, match="incomplete"):
        assemble_state(chunks[:2])
    with pytest.raises(PayloadError, match="expected"):
        assemble_state([chunks[1], chunks[0], chunks[2]])
    other = chunk_payload(b"z" * 100, chunk_bytes=40)
    with pytest.raises(PayloadError, match="disagrees"):
        assemble_state([chunks[0], other[1], chunks[2]])
    with pytest.raises(PayloadError, match="exceeds the limit"):
        PayloadAssembler(max_bytes=50).add(chunks[0])


def test_pickle_is_never_unpickled():
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    payload = pickle.dumps({"w": Boom()})
    with pytest.raises(PayloadError, match="not valid safetensors"):
        decode_state(payload)
    with pytest.raises(PayloadError, match="not valid safetensors"):
        assemble_state(chunk_payload(payload))


def test_state_validation_names_shapes_dtypes_finite():
    ref = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    check_state_matches({"a": torch.ones(2, 3), "b": torch.ones(4)}, ref)
    with pytest.raises(PayloadError, match="missing"):
        check_state_matches({"a": torch.ones(2, 3)}, ref)
    with pytest.raises(PayloadError, match="expected torch.float32"):
        check_state_matches({"a": torch.ones(3, 2), "b": torch.ones(4)}, ref)
    with pytest.raises(PayloadError, match="NaN"):
        check_state_matches({"a": torch.full((2, 3), float("nan")), "b": torch.ones(4)}, ref)


def test_tensor_message_round_trip_and_validation():
    t = torch.randn(4, 6)
    assert torch.equal(from_wire(to_wire(t)), t)
    half = from_wire(to_wire(t, torch.float16))
    assert half.dtype == torch.float16 and torch.allclose(half.float(), t, atol=1e-2)
    bad = to_wire(t)
    bad.shape[:] = [5, 6]
    with pytest.raises(TensorError, match="do not hold"):
        from_wire(bad)
    with pytest.raises(TensorError, match="expected 3 dimensions"):
        from_wire(to_wire(t), ndim=3)
    with pytest.raises(TensorError, match="NaN"):
        from_wire(to_wire(torch.tensor([1.0, float("inf")])))
    unknown = to_wire(t)
    unknown.dtype = 99
    with pytest.raises(TensorError, match="unknown dtype"):
        from_wire(unknown)
