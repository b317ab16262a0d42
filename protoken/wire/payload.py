"""Tensor payloads: a state dict as safetensors bytes, cut into checksummed chunks.

Safetensors is a plain header + raw buffers format: decoding it never executes code, unlike
pickle. Every chunk repeats the payload's size and digest, so a receiver can reject a bad
stream at the first inconsistent chunk instead of buffering all of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from protoken.v1 import federation_pb2 as pb

CHUNK_BYTES = 1 << 20
MAX_PAYLOAD_BYTES = 2 << 30


class PayloadError(ValueError):
    """A payload that is malformed, truncated, oversized or fails its checksum."""

    def __init__(self, message: str, code: int = pb.ERROR_CODE_INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.code = code


def encode_state(state: dict[str, torch.Tensor]) -> bytes:
    return safetensors_save({name: t.detach().contiguous().cpu() for name, t in state.items()})


def chunk_payload(payload: bytes, chunk_bytes: int = CHUNK_BYTES) -> list[pb.PayloadChunk]:
    digest = hashlib.sha256(payload).hexdigest()
    count = max(1, -(-len(payload) // chunk_bytes))
    return [
        pb.PayloadChunk(index=i, count=count, total_bytes=len(payload), sha256=digest,
                        data=payload[i * chunk_bytes:(i + 1) * chunk_bytes])
        for i in range(count)
    ]


def state_chunks(state: dict[str, torch.Tensor], chunk_bytes: int = CHUNK_BYTES) -> list[pb.PayloadChunk]:
    return chunk_payload(encode_state(state), chunk_bytes)


class PayloadAssembler:
    """Collects chunks in order and checks them against each other and the digest."""

    def __init__(self, max_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self._max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._received = 0
        self._first: pb.PayloadChunk | None = None

    @property
    def complete(self) -> bool:
        return self._first is not None and len(self._parts) == self._first.count

    def add(self, chunk: pb.PayloadChunk) -> None:
        first = self._first
        if first is None:
            if chunk.count == 0:
                raise PayloadError("payload chunk count is 0")
            if chunk.total_bytes > self._max_bytes:
                raise PayloadError(f"payload of {chunk.total_bytes} bytes exceeds the limit of {self._max_bytes}")
            if len(chunk.sha256) != 64:
                raise PayloadError("payload checksum is not a sha256 hex digest")
            self._first = first = chunk
        elif (chunk.count, chunk.total_bytes, chunk.sha256) != (first.count, first.total_bytes, first.sha256):
            raise PayloadError(f"chunk {chunk.index} disagrees with chunk 0 about the payload's size or checksum")
        if self.complete:
            raise PayloadError(f"more than the announced {first.count} chunks")
        if chunk.index != len(self._parts):
            raise PayloadError(f"chunk {chunk.index} arrived where chunk {len(self._parts)} was expected")
        self._received += len(chunk.data)
        if self._received > first.total_bytes:
            raise PayloadError(f"chunks carry more than the announced {first.total_bytes} bytes")
        self._parts.append(chunk.data)

    def payload(self) -> bytes:
        first = self._first
        if first is None or not self.complete:
            have = len(self._parts)
            raise PayloadError(f"payload incomplete: {have} of {first.count if first else '?'} chunks")
        data = b"".join(self._parts)
        if len(data) != first.total_bytes:
            raise PayloadError(f"payload has {len(data)} bytes, {first.total_bytes} announced")
        if hashlib.sha256(data).hexdigest() != first.sha256:
            raise PayloadError("payload checksum mismatch: the data was corrupted in transit",
                               code=pb.ERROR_CODE_CHECKSUM_MISMATCH)
        return data


def decode_state(payload: bytes) -> dict[str, torch.Tensor]:
    try:
        return safetensors_load(payload)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise PayloadError(f"payload is not valid safetensors data: {exc}") from exc


def assemble_state(chunks: Iterable[pb.PayloadChunk], max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, torch.Tensor]:
    assembler = PayloadAssembler(max_bytes)
    for chunk in chunks:
        assembler.add(chunk)
    return decode_state(assembler.payload())


def check_state_matches(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> None:
    """Raise PayloadError unless `state` has exactly the reference's names, shapes, dtypes, finite values."""
    missing = sorted(set(reference) - set(state))
    extra = sorted(set(state) - set(reference))
    if missing or extra:
        raise PayloadError(f"tensor names differ from the expected state: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, tensor in state.items():
        ref = reference[name]
        if tensor.shape != ref.shape or tensor.dtype != ref.dtype:
            raise PayloadError(f"{name}: got {tensor.dtype} {tuple(tensor.shape)}, "
                               f"expected {ref.dtype} {tuple(ref.shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise PayloadError(f"{name}: contains NaN or infinite values")


def iter_chunks(messages: Iterator, field: str) -> Iterator[pb.PayloadChunk]:
    """Yield the `field` chunk of each oneof message until a message of another kind arrives."""
    for message in messages:
        if message.WhichOneof("kind") != field:
            raise PayloadError(f"expected a {field} message, got {message.WhichOneof('kind')}")
        yield getattr(message, field)
