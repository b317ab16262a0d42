"""Relevance of the selected modules for every generated token: the fast path and the reference.

The **reference** path is the paper's: for each generated token, a full forward pass over the
sequence so far (no cache) and a backward of the token's objective (below) through the whole network.
Every module is recorded over all positions, so nothing about position-wise structure is assumed.

The **fast** path generates with the KV cache, then runs ONE teacher-forced forward over
prompt + response and ONE backward of the sum of the generated tokens' objectives (below), cut off at
the recorded modules. Modules after the last attention operation are position-wise, so each
token's gradient sits at its own position and that single pass is exact per token. For earlier
modules it is exact for the response as a whole; ``per_token=True`` adds one backward per token
(still no extra forward) to make them exact per token too.

What is differentiated is the **objective** of each token:

* ``logit`` (the paper's): the token's raw logit, the output head's value before any
  soft-capping. The head's gradient is exactly one-hot and is sent as the target token ids.
* ``log-prob``: the token's log-probability under those raw logits. A change that raises every
  logit alike leaves it unchanged, so a client whose adapter merely inflates the logits does not
  look responsible for everything. The head's gradient (one-hot minus the softmax) is dense and
  is sent as ``g``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from protoken.attribution.evaluation import evaluating, frozen
from protoken.attribution.generation import (
    check_generation_request,
    greedy_generate,
    model_device,
    stop_token_ids,
)
from protoken.attribution.hooks import Capture
from protoken.attribution.probe import ModuleRelevance, Probe, Relevance

FAST = "fast"
REFERENCE = "reference"
PATHS = (FAST, REFERENCE)
LOGIT = "logit"
LOG_PROB = "log-prob"
OBJECTIVES = (LOGIT, LOG_PROB)


def check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"relevance objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def token_objectives(head_rows: torch.Tensor, targets: torch.Tensor, objective: str) -> torch.Tensor:
    """Each token's objective [T] from the head's raw logits at its position [T, vocab]."""
    if objective == LOGIT:
        return head_rows.gather(1, targets.unsqueeze(1)).squeeze(1)
    return torch.log_softmax(head_rows.float(), dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)


def _head_relevance(name: str, x: torch.Tensor, head_rows: torch.Tensor, targets: torch.Tensor,
                    objective: str) -> ModuleRelevance:
    """The head's relevance: target ids for the logit; one-hot minus softmax for the log-probability."""
    if objective == LOGIT:
        return ModuleRelevance(name, x=x, target_ids=targets)
    g = -torch.softmax(head_rows.detach().float(), dim=-1)
    g[torch.arange(len(targets)), targets] += 1
    return ModuleRelevance(name, x=x, g=g)


def fast_relevance(model: nn.Module, prompt_ids: Sequence[int], layers: Sequence[str], *,
                   max_new_tokens: int = 32, stop_ids: Iterable[int] | None = None,
                   per_token: bool = False, objective: str = LOGIT) -> Relevance:
    """Greedy generation with the KV cache, then `teacher_forced_probe` over the response."""
    stops = stop_token_ids(model) if stop_ids is None else stop_ids
    started = time.perf_counter()
    response = greedy_generate(model, prompt_ids, max_new_tokens=max_new_tokens, stop_ids=stops)
    generated = time.perf_counter()
    probe = teacher_forced_probe(model, prompt_ids, response, layers, per_token=per_token, objective=objective)
    timings = {"generate_s": generated - started, "relevance_s": time.perf_counter() - generated}
    return Relevance(list(prompt_ids), response, probe, objective, timings)


def teacher_forced_probe(model: nn.Module, prompt_ids: Sequence[int], response_ids: Sequence[int],
                         layers: Sequence[str], *, per_token: bool = False, objective: str = LOGIT) -> Probe:
    """Relevance of `layers` for a given response, from one forward and one backward pass."""
    check_objective(objective)
    if not prompt_ids or not response_ids:
        raise ValueError("teacher forcing needs a non-empty prompt and response")
    num_prompt, num_tokens = len(prompt_ids), len(response_ids)
    device = model_device(model)
    ids = torch.tensor([[*prompt_ids, *response_ids[:-1]]], device=device)
    rows = torch.arange(num_prompt - 1, num_prompt - 1 + num_tokens, device=device)  # logit positions
    targets = torch.tensor(list(response_ids), device=device)
    with evaluating(model), frozen(model), torch.enable_grad():
        with Capture(model, layers, cut=True) as capture:
            model(input_ids=ids, use_cache=False)
        head_rows = capture.head[0, rows]
        objectives = token_objectives(head_rows, targets, objective)
        aligned = capture.token_aligned()
        graph = [name for name in layers if name != capture.head_name]
        deep = [name for name in graph if name not in aligned]
        outputs = [capture.records[name].out for name in graph]
        summed = torch.autograd.grad(objectives.sum(), outputs, retain_graph=per_token and bool(deep)) if graph else ()
        grads = {name: grad[0] for name, grad in zip(graph, summed, strict=True)}
        if per_token and deep:
            per_token_grads = _per_token_grads(objectives, [capture.records[name].out for name in deep])
            grads.update(zip(deep, per_token_grads, strict=True))

    def relevance(name: str) -> ModuleRelevance:
        x = capture.records[name].x[0].float()
        if name == capture.head_name:
            return _head_relevance(name, x[rows].cpu(), head_rows.cpu(), targets.cpu(), objective)
        if name in aligned:
            return ModuleRelevance(name, x=x[rows].cpu(), g=grads[name][rows].float().cpu())
        g = grads[name] if grads[name].dim() == 3 else grads[name].unsqueeze(0)
        return ModuleRelevance(name, x=x.cpu(), g=g.float().cpu())

    return Probe([relevance(name) for name in layers], num_tokens)


def _per_token_grads(objectives: torch.Tensor, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """For each output, the gradient of each token's objective separately: [T, positions, out]."""
    per_logit = [torch.autograd.grad(value, outputs, retain_graph=t < len(objectives) - 1)
                 for t, value in enumerate(objectives)]
    return [torch.stack([grads[i][0] for grads in per_logit]) for i in range(len(outputs))]


def reference_relevance(model: nn.Module, prompt_ids: Sequence[int], layers: Sequence[str], *,
                        max_new_tokens: int = 32, stop_ids: Iterable[int] | None = None,
                        objective: str = LOGIT) -> Relevance:
    """The paper's computation: per generated token, a full forward without cache and a full backward.

    Greedy decoding picks each token from the same uncached pass. Every module except the head
    is recorded over all positions (position layout with one gradient per token).
    """
    check_generation_request(prompt_ids, max_new_tokens)
    check_objective(objective)
    stops = set(stop_token_ids(model) if stop_ids is None else stop_ids)
    started = time.perf_counter()
    device = model_device(model)
    ids = list(prompt_ids)
    response: list[int] = []
    head_inputs: list[torch.Tensor] = []
    head_rows: list[torch.Tensor] = []
    grads: dict[str, list[torch.Tensor]] = {}
    with evaluating(model), frozen(model), torch.enable_grad():
        while len(response) < max_new_tokens:
            with Capture(model, layers, cut=False) as capture:
                out = model(input_ids=torch.tensor([ids], device=device), use_cache=False)
            token = int(out.logits[0, -1].argmax())
            graph = [name for name in layers if name != capture.head_name]
            # The embeddings are differentiated too, so the backward runs through every layer.
            inputs = [capture.records[name].out for name in graph] + [capture.embeddings]
            value = token_objectives(capture.head[0, -1:], torch.tensor([token], device=device), objective)[0]
            for name, grad in zip(graph, torch.autograd.grad(value, inputs)[:-1], strict=True):
                grads.setdefault(name, []).append(grad[0].float())
            head_inputs.append(capture.records[capture.head_name].x[0, -1].float())
            head_rows.append(capture.head[0, -1].detach().float())
            response.append(token)
            ids.append(token)
            if token in stops:
                break
    records, positions = capture.records, len(ids) - 1  # the last pass saw all but the last token

    def relevance(name: str) -> ModuleRelevance:
        if name == capture.head_name:
            return _head_relevance(name, torch.stack(head_inputs).cpu(), torch.stack(head_rows).cpu(),
                                   torch.tensor(response), objective)
        padded = [F.pad(grad, (0, 0, 0, positions - grad.shape[0])) for grad in grads[name]]
        return ModuleRelevance(name, x=records[name].x[0].float().cpu(), g=torch.stack(padded).cpu())

    probe = Probe([relevance(name) for name in layers], len(response))
    return Relevance(list(prompt_ids), response, probe, objective, {"relevance_s": time.perf_counter() - started})
