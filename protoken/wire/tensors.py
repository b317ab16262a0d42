"""Small dense tensors as raw little-endian bytes + dtype + shape (the `Tensor` message)."""

from __future__ import annotations

import math

import torch

from protoken.v1 import federation_pb2 as pb

_TO_WIRE = {
    torch.float32: pb.DTYPE_FLOAT32,
    torch.float16: pb.DTYPE_FLOAT16,
    torch.bfloat16: pb.DTYPE_BFLOAT16,
    torch.float64: pb.DTYPE_FLOAT64,
    torch.int64: pb.DTYPE_INT64,
}
_FROM_WIRE = {wire: dtype for dtype, wire in _TO_WIRE.items()}
MAX_TENSOR_ELEMENTS = 64 << 20


class TensorError(ValueError):
    """A Tensor message that is malformed or fails validation."""


def to_wire(tensor: torch.Tensor, dtype: torch.dtype | None = None) -> pb.Tensor:
    tensor = tensor.detach().to("cpu", dtype or tensor.dtype).contiguous()
    if tensor.dtype not in _TO_WIRE:
        raise TensorError(f"dtype {tensor.dtype} cannot travel on the wire")
    return pb.Tensor(dtype=_TO_WIRE[tensor.dtype], shape=list(tensor.shape),
                     data=tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


def from_wire(message: pb.Tensor, *, name: str = "tensor", ndim: int | None = None,
              require_finite: bool = True) -> torch.Tensor:
    """Decode and validate; raise TensorError naming `name` on any inconsistency."""
    if message.dtype not in _FROM_WIRE:
        raise TensorError(f"{name}: unknown dtype {message.dtype}")
    dtype = _FROM_WIRE[message.dtype]
    shape = list(message.shape)
    if ndim is not None and len(shape) != ndim:
        raise TensorError(f"{name}: expected {ndim} dimensions, got shape {shape}")
    if any(d < 0 for d in shape):
        raise TensorError(f"{name}: negative dimension in shape {shape}")
    count = math.prod(shape)
    if count > MAX_TENSOR_ELEMENTS:
        raise TensorError(f"{name}: {count} elements exceed the limit of {MAX_TENSOR_ELEMENTS}")
    itemsize = torch.empty((), dtype=dtype).element_size()
    if len(message.data) != count * itemsize:
        raise TensorError(f"{name}: {len(message.data)} bytes do not hold shape {shape} of {dtype}")
    tensor = torch.frombuffer(bytearray(message.data), dtype=dtype).reshape(shape) if count else torch.empty(shape, dtype=dtype)
    if require_finite and tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise TensorError(f"{name}: contains NaN or infinite values")
    return tensor


def wire_dtype(name: str) -> torch.dtype:
    """The torch dtype for a configured wire precision name ('float32' or 'float16')."""
    choices = {"float32": torch.float32, "float16": torch.float16}
    if name not in choices:
        raise TensorError(f"wire dtype must be one of {sorted(choices)}, got {name!r}")
    return choices[name]
