"""Attribution probes and answers on the wire: `Probe` <-> `ProbeRequest`, scores <-> `Tensor`."""

from __future__ import annotations

import torch

from protoken.attribution.probe import ModuleRelevance, Probe
from protoken.v1 import federation_pb2 as pb
from protoken.wire.tensors import TensorError, from_wire, to_wire

MAX_PROBE_MODULES = 64


def probe_to_wire(probe: Probe, round_number: int, float_dtype: torch.dtype = torch.float32) -> pb.ProbeRequest:
    """One request with every token and module; floats travel as `float_dtype`."""
    modules = []
    for module in probe.modules:
        item = pb.ModuleProbe(module=module.name, x=to_wire(module.x, float_dtype))
        if module.g is not None:
            item.g.CopyFrom(to_wire(module.g, float_dtype))
        if module.target_ids is not None:
            item.target_ids.extend(module.target_ids.tolist())
        modules.append(item)
    return pb.ProbeRequest(round=round_number, modules=modules, num_tokens=probe.num_tokens)


def probe_from_wire(request: pb.ProbeRequest) -> Probe:
    """Decode and validate a probe; raises ValueError naming what is wrong."""
    if not request.modules:
        raise ValueError("the probe names no module")
    if len(request.modules) > MAX_PROBE_MODULES:
        raise ValueError(f"the probe names {len(request.modules)} modules, more than {MAX_PROBE_MODULES}")
    modules = []
    for index, item in enumerate(request.modules):
        where = f"modules[{index}] ({item.module})"
        try:
            x = from_wire(item.x, name=f"{where}.x", ndim=2).float()
            g = from_wire(item.g, name=f"{where}.g").float() if item.HasField("g") else None
        except TensorError as exc:
            raise ValueError(str(exc)) from exc
        if g is not None and g.dim() not in (2, 3):
            raise ValueError(f"{where}.g must have 2 or 3 dimensions, got shape {list(g.shape)}")
        target_ids = torch.tensor(list(item.target_ids), dtype=torch.int64) if item.target_ids else None
        modules.append(ModuleRelevance(name=item.module, x=x, g=g, target_ids=target_ids))
    probe = Probe(modules=modules, num_tokens=request.num_tokens)
    probe.validate()
    return probe


def scores_to_wire(scores: torch.Tensor) -> pb.Tensor:
    return to_wire(scores.to(torch.float64))


def scores_from_wire(message: pb.Tensor, num_tokens: int, num_modules: int, client: str) -> torch.Tensor:
    """A client's [T, L] scores, validated; raises ValueError naming the client."""
    try:
        scores = from_wire(message, name=f"scores of {client}", ndim=2)
    except TensorError as exc:
        raise ValueError(str(exc)) from exc
    if tuple(scores.shape) != (num_tokens, num_modules):
        raise ValueError(f"client {client} answered scores of shape {tuple(scores.shape)}, "
                         f"expected ({num_tokens}, {num_modules})")
    return scores.to(torch.float64)
