"""Writing an experiment's files: ``results.json`` (with what is needed to rerun it) and PNG plots."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from protoken.experiments.plan import Plan  # noqa: E402

PACKAGES = ("protoken", "torch", "transformers", "peft", "grpcio", "protobuf", "numpy", "matplotlib")
RESULTS = "results.json"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_results(out: Path, experiment: str, plan: Plan, config: Mapping, figures: Mapping, *,
                  records: Sequence[dict] = (), extra: Mapping | None = None) -> Path:
    """``results.json``: the experiment, its plan, config, seed, versions, figures and per-prompt records."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"experiment": experiment, "plan": asdict(plan), "seed": plan.seed, "config": dict(config),
            "versions": package_versions(), **figures, **(extra or {}), "records": list(records)}
    path = out / RESULTS
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return path


def line_plot(path: Path, series: Mapping[str, Sequence[tuple[float, float | None]]], *, title: str,
              xlabel: str = "round", ylabel: str = "accuracy", chance: float | None = None,
              fraction: bool = True) -> Path:
    """One line per series (points without a value are skipped); `fraction` fixes the y axis to 0..1."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in series.items():
        kept = [(r, v) for r, v in points if v is not None]
        ax.plot([r for r, _ in kept], [v for _, v in kept], marker="o", label=label)
    if chance is not None:
        ax.axhline(chance, linestyle="--", color="grey", label="chance")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if fraction:
        ax.set_ylim(-0.05, 1.05)
    ax.legend()
    return _save(fig, path)


def box_plot(path: Path, groups: Mapping[str, Sequence[float]], *, title: str, ylabel: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = list(groups)
    ax.boxplot([list(groups[label]) or [float("nan")] for label in labels])
    ax.set_xticks(range(1, len(labels) + 1), labels)
    ax.set(title=title, ylabel=ylabel)
    return _save(fig, path)


def bar_plot(path: Path, values: Mapping[str, float | None], *, title: str, ylabel: str,
             chance: float | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(max(6, len(values) * 1.1), 4))
    labels = list(values)
    ax.bar(range(len(labels)), [values[label] or 0.0 for label in labels])
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    if chance is not None:
        ax.axhline(chance, linestyle="--", color="grey", label="chance")
        ax.legend()
    ax.set(title=title, ylabel=ylabel)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
