"""Attribution cost against plain generation, measured in one run on the same prompt and model.

    python tests/benchmarks/attribution_bench.py [--model smollm2-135m] [--tokens 32] [--clients 4] [--threads 1]

The global model is the FedAvg of `--clients` LoRA adapters (rank 16, alpha 32, all linear
modules) with random non-zero B. Every path generates exactly `--tokens` tokens (no stop id):

* plain:     greedy generation with the KV cache;
* fast:      generation + one teacher-forced forward/backward + every client's module_scores;
* reference: the paper's per-token full forward/backward (no cache) + every client's module_scores.

Times are medians over `--repeats` rounds after one warm-up round; each round runs the three
paths in turn, so a change in the machine's load affects them alike. It runs torch on one thread
by default: on a small machine shared with other processes, one thread per core (torch's default)
makes every path many times slower and the timings erratic.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch

from protoken.attribution import (
    encode_prompt,
    fast_relevance,
    greedy_generate,
    module_scores,
    reference_relevance,
    select_layers,
)
from protoken.models import DEFAULT_MODEL, load_model
from protoken.trainable import TrainableSpec, build_trainable, load_trainable_state, trainable_state

PROMPT = "Explain in two sentences why the sky is blue."


def lora_models(base: torch.nn.Module, count: int) -> tuple[torch.nn.Module, dict[str, torch.nn.Module]]:
    clients = {}
    for index in range(count):
        model = build_trainable(copy.deepcopy(base), TrainableSpec(), seed=index)
        generator = torch.Generator().manual_seed(index)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.01)
        clients[f"client-{index}"] = model.eval()
    states = [trainable_state(model) for model in clients.values()]
    average = {name: torch.stack([state[name] for state in states]).mean(dim=0) for name in states[0]}
    global_model = build_trainable(copy.deepcopy(base), TrainableSpec())
    load_trainable_state(global_model, average)
    return global_model.eval(), clients


def interleaved_medians(runs: dict[str, Callable[[], object]],
                        repeats: int) -> tuple[dict[str, float], dict[str, object]]:
    """Median seconds and last result of each run, over `repeats` rounds after a warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, object] = {}
    for round_index in range(repeats + 1):
        for name, run in runs.items():
            started = time.perf_counter()
            results[name] = run()
            if round_index:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = load_model(args.model)
    model, clients = lora_models(loaded.model, args.clients)
    layers = select_layers(model)
    prompt_ids = encode_prompt(loaded.tokenizer, PROMPT)
    options = dict(max_new_tokens=args.tokens, stop_ids=())

    def plain() -> list[int]:
        return greedy_generate(model, prompt_ids, **options)

    def attribute(relevance_path: Callable[..., object]):
        def run():
            relevance = relevance_path(model, prompt_ids, layers, **options)
            return relevance, {client: module_scores(c, relevance.probe) for client, c in clients.items()}
        return run

    seconds, results = interleaved_medians(
        {"plain": plain, "fast": attribute(fast_relevance), "reference": attribute(reference_relevance)}, args.repeats)
    plain_s, fast_s, reference_s = seconds["plain"], seconds["fast"], seconds["reference"]
    tokens, (fast, fast_scores), (reference, reference_scores) = results["plain"], results["fast"], results["reference"]

    assert fast.response_ids == reference.response_ids == tokens, "the paths generated different tokens"
    worst = max(float(((fast_scores[c] - reference_scores[c]).abs() / reference_scores[c].abs().clamp_min(1e-9)).max())
                for c in clients)
    print(f"model {args.model}, {len(prompt_ids)} prompt tokens, {len(tokens)} generated, {args.clients} clients, "
          f"layers {layers}, torch threads {torch.get_num_threads()}")
    print(f"plain generation (KV cache)     {plain_s:7.3f} s   1.00x")
    print(f"fast attribution                {fast_s:7.3f} s   {fast_s / plain_s:5.2f}x plain")
    print(f"reference attribution (paper)   {reference_s:7.3f} s   {reference_s / plain_s:5.2f}x plain, "
          f"{reference_s / fast_s:5.1f}x fast")
    print(f"fast breakdown: generate {fast.timings['generate_s']:.3f} s, relevance {fast.timings['relevance_s']:.3f} s")
    print(f"same tokens on both paths; largest relative score difference {worst:.2e}")
    for dtype in (torch.float32, torch.float16):
        print(f"probe x/g bytes at {str(dtype).removeprefix('torch.')}: {fast.probe.nbytes(dtype):,}")


if __name__ == "__main__":
    main()
