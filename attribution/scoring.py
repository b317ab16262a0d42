"""A client's side of a probe: its own modules applied to G's inputs, weighted by G's gradients."""

from __future__ import annotations

import torch
from torch import nn

from protoken.attribution.evaluation import evaluating
from protoken.attribution.probe import POSITION, ModuleRelevance, Probe
from protoken.trainable import module_for


def module_scores(client_model: nn.Module, probe: Probe) -> torch.Tensor:
    """Scores [T, L] (float64): entry (t, ℓ) is ⟨C.ℓ(x_ℓ), g_ℓ⟩ for token t.

    C.ℓ is the client's own module ℓ (base + its adapter under LoRA), addressed by base-model
    name. Works from the probe's tensors alone. Raises ValueError for a malformed probe or one
    that does not fit the client's modules.
    """
    probe.validate()
    columns = []
    with torch.no_grad():
        for relevance in probe.modules:
            try:
                module = module_for(client_model, relevance.name)
            except AttributeError as exc:
                raise ValueError(f"the model has no module {relevance.name!r}") from exc
            with evaluating(module):
                columns.append(_module_column(module, relevance, probe.num_tokens))
    return torch.stack(columns, dim=1)


def _module_column(module: nn.Module, relevance: ModuleRelevance, num_tokens: int) -> torch.Tensor:
    parameter = next(module.parameters())
    try:
        out = module(relevance.x.to(parameter.device, parameter.dtype)).to("cpu", torch.float64)
    except RuntimeError as exc:
        raise ValueError(f"module {relevance.name!r}: x {tuple(relevance.x.shape)} does not fit: {exc}") from exc
    if relevance.g is not None and relevance.g.shape[-1] != out.shape[-1]:
        raise ValueError(f"module {relevance.name!r}: g has {relevance.g.shape[-1]} features, "
                         f"the module outputs {out.shape[-1]}")
    if relevance.layout == POSITION:
        totals = torch.einsum("kno,no->k", relevance.g.to(torch.float64), out)
        return totals if totals.shape[0] == num_tokens else totals.sum().div(num_tokens).expand(num_tokens)
    if relevance.target_ids is not None:
        ids = relevance.target_ids
        if int(ids.min()) < 0 or int(ids.max()) >= out.shape[-1]:
            raise ValueError(f"module {relevance.name!r}: a target id is outside 0..{out.shape[-1] - 1}")
        return out.gather(1, ids.unsqueeze(1)).squeeze(1)
    if relevance.g is None:
        return out.sum(dim=1)
    return (out * relevance.g.to(torch.float64)).sum(dim=1)
