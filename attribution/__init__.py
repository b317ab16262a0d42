"""The attribution method as a library: layer selection, hooks, relevance, scoring (no networking)."""

from protoken.attribution.calibration import DEFAULT_THRESHOLD, Calibration, ClientBaseline
from protoken.attribution.combine import CALIBRATED, MODES, NO_GRADIENT, PAPER, build_provenance, decide
from protoken.attribution.generation import encode_prompt, greedy_generate, stop_token_ids
from protoken.attribution.inprocess import (
    CalibrationExample,
    attribute_in_process,
    calibrate_in_process,
    calibration_relevance,
    client_answers,
    relevance_for_prompt,
)
from protoken.attribution.layers import DEFAULT_RULES, LayerRule, select_layers
from protoken.attribution.probe import POSITION, TOKEN, ModuleRelevance, Probe, Relevance
from protoken.attribution.provenance import ClientShare, Coverage, Provenance, TokenProvenance
from protoken.attribution.relevance import (
    FAST,
    LOG_PROB,
    LOGIT,
    OBJECTIVES,
    PATHS,
    REFERENCE,
    fast_relevance,
    reference_relevance,
    teacher_forced_probe,
)
from protoken.attribution.report import render_html, write_html
from protoken.attribution.scoring import module_scores

__all__ = [
    "CALIBRATED", "DEFAULT_RULES", "DEFAULT_THRESHOLD", "FAST", "LOGIT", "LOG_PROB", "MODES", "NO_GRADIENT",
    "OBJECTIVES", "PAPER", "PATHS", "POSITION", "REFERENCE", "TOKEN", "Calibration", "CalibrationExample",
    "ClientBaseline", "ClientShare", "Coverage", "LayerRule", "ModuleRelevance", "Probe", "Provenance", "Relevance",
    "TokenProvenance", "attribute_in_process", "build_provenance", "calibrate_in_process", "calibration_relevance",
    "client_answers", "decide", "encode_prompt", "fast_relevance", "greedy_generate", "module_scores",
    "reference_relevance", "relevance_for_prompt", "render_html", "select_layers", "stop_token_ids",
    "teacher_forced_probe", "write_html",
]
