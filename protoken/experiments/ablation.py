"""ablation, on the backdoor federation: what each part of the method contributes.

On one trained LoRA federation (the server restarts on its state for each layer setting):
gradient relevance on vs off (mode "no-gradient"), each default module alone, and the default
modules plus ``lm_head``. Then a second federation with full fine-tuning.

Under LoRA ``lm_head`` is frozen and tied to the embeddings: every client's copy is the same, so
its term adds the same number to every client. The paper rule's softmax and the calibrated
centring both cancel a shared shift, so adding it must leave every outcome unchanged.
"""

from __future__ import annotations

from pathlib import Path

from protoken.experiments.backdoor import BackdoorSetup, backdoor_setup, start_backdoor, variant_figures
from protoken.experiments.plan import Plan
from protoken.experiments.results import bar_plot, write_results
from protoken.experiments.running import TrainedFederation, attribute_all


def attribute_setting(federation: TrainedFederation, setup: BackdoorSetup, mode: str, setting: str) -> list[dict]:
    rows = []
    for kind, prompts in (("triggered", setup.triggered), ("clean", setup.clean)):
        for row in attribute_all(federation, prompts, rounds=[0], mode=mode, progress=f"ablation [{setting}] {kind}"):
            rows.append({**row, "kind": kind, "setting": setting})
    return rows


def run(plan: Plan, data: Path, out: Path) -> dict[str, Path]:
    setup = backdoor_setup(plan, data, out)
    rows: list[dict] = []
    with start_backdoor(plan, setup, out / "federation-lora") as federation:
        for mode in ("calibrated", "paper", "no-gradient"):
            rows += attribute_setting(federation, setup, mode, f"lora: default [{mode}]")
        defaults = rows[0]["provenance"]["modules"]
        for module in defaults:
            federation.reconfigure(layers=[module])
            rows += attribute_setting(federation, setup, "paper", f"lora: {module} alone [paper]")
        federation.reconfigure(layers=[*defaults, "lm_head"])
        for mode in ("calibrated", "paper"):
            rows += attribute_setting(federation, setup, mode, f"lora: default + lm_head [{mode}]")
        config = federation.config.to_dict()

    def full_training(config) -> None:
        config.training.mode = "full"
        config.training.learning_rate = plan.learning_rate / 20  # full weights need a far smaller step than LoRA

    with start_backdoor(plan, setup, out / "federation-full", config_changes=full_training) as federation:
        for mode in ("calibrated", "paper"):
            rows += attribute_setting(federation, setup, mode, f"full: default [{mode}]")
    settings = list(dict.fromkeys(row["setting"] for row in rows))
    figures = {"settings": {s: {**variant_figures([r for r in rows if r["setting"] == s], setup.malicious),
                                "modules": next(r["provenance"]["modules"] for r in rows if r["setting"] == s)}
                            for s in settings},
               "chance": len(setup.malicious) / len(setup.clients), "malicious": sorted(setup.malicious)}
    path = write_results(out / "ablation", "ablation", plan, config, figures, records=rows)
    bar_plot(out / "ablation" / "backdoor_accuracy.png",
             {s: f["backdoor_accuracy"] for s, f in figures["settings"].items()},
             title="ablation: backdoor accuracy (sentinel responses)", ylabel="accuracy", chance=figures["chance"])
    bar_plot(out / "ablation" / "false_blame.png", {s: f["false_blame_rate"] for s, f in figures["settings"].items()},
             title="ablation: false-blame rate (ordinary responses)", ylabel="blame rate")
    return {"ablation": path}
