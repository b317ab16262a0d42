"""Finance pairs: exam formula sheets, technical indicators, time-value-of-money functions and
encyclopedia articles on economics. Finance has the least text of the four domains, so every
source contributes several questions per item."""

from __future__ import annotations

import json
import re

from protoken.data import wiki
from protoken.data.docstrings import Doc, doc_pairs, module_docs, section, source_docs, summary
from protoken.data.sources import Pair, Source
from protoken.data.text import clip, clip_lines

FORMULAS = Source(
    "cfa-frm-formula-sheets",
    "CC BY 4.0 (UniPrep2Go formula sheets, doi:10.5281/zenodo.23322167); package MIT",
    module="cfa_frm_formula_sheets",
)
INDICATORS = Source("ta", "MIT", module="ta", no_deps=True)
TIME_VALUE = Source("numpy-financial", "BSD-3-Clause", module="numpy_financial")

_ECONOMICS = re.compile(
    r"\b(econom\w*|financ\w*|banking|bankers?|money|monetary|currenc(y|ies)|tax(es|ation)?|trade|"
    r"markets?|prices?|debts?|loans?|investments?|investors?|stocks?|payments?|wages?|wealth|"
    r"goods and services)\b",
    re.IGNORECASE,
)
# Topics where those words mostly describe something else ("economic capital of ...", "goddess of wealth").
_NOT_ECONOMICS = ("Geography", "Technology", "Philosophy and religion", "Everyday life")


def pairs() -> list[Pair]:
    return (
        formula_pairs()
        + topic_weight_pairs()
        + indicator_pairs()
        + time_value_pairs()
        + [p for article in wiki.articles(_is_economics) for p in wiki.article_pairs(article)]
    )


def formula_pairs() -> list[Pair]:
    """Each formula as an equation (LaTeX) with its variables, and when it is used."""
    sheet = json.loads((FORMULAS.directory() / "data" / "formulas.json").read_text(encoding="utf-8"))
    pairs = []
    for f in sheet["entries"]:
        name = f["name"]
        pairs += [
            Pair(
                f"What is the formula for {name} ({f['exam']})?",
                clip(f"{f['latex']} (variables: {f['variables']})"),
                FORMULAS,
                f["id"],
            ),
            Pair(
                f"When is {name} used?",
                clip(f"{f['when_used']}. It belongs to {f['topic']} in the {f['exam']} curriculum."),
                FORMULAS,
                f["id"],
            ),
        ]
    return pairs


def topic_weight_pairs() -> list[Pair]:
    """How much of each exam a topic area makes up."""
    table = json.loads((FORMULAS.directory() / "data" / "topic_weights.json").read_text(encoding="utf-8"))
    pairs = []
    for w in table["entries"]:
        session = _session(w["session"])
        low, high = w["weight_min_pct"], w["weight_max_pct"]
        share = f"{low}%" if low == high else f"{low}–{high}%"
        answer = f"{w['topic']} makes up {share} of the {w['exam']} exam{session}."
        if w["notes"]:
            answer += f" {w['notes']}"
        prompt = f"What weight does {w['topic']} carry in the {w['exam']} exam{session}?"
        pairs.append(Pair(prompt, clip(answer), FORMULAS, f"{w['exam']}{session}: {w['topic']}"))
    return pairs


def _session(label: str | None) -> str:
    """The session as a prompt suffix: " (2026 session)", " (2023 curriculum)", or nothing."""
    if not label:
        return ""
    return f" ({label} session)" if label.isdigit() else f" ({label})"


def indicator_pairs() -> list[Pair]:
    """What each technical indicator measures, and its inputs (read from source: ta imports pandas)."""
    pairs = []
    for path in sorted(INDICATORS.directory().glob("*.py")):
        for doc in source_docs(path, f"ta.{path.stem}"):
            if doc.is_class:
                pairs += _indicator_pairs(doc)
    return pairs


def _indicator_pairs(doc: Doc) -> list[Pair]:
    title, _, body = doc.text.partition("\n")
    pairs = []
    measures = clip(summary(body))
    if measures:
        pairs.append(
            Pair(f"What does the {title.strip()} indicator measure?", measures, INDICATORS, doc.name)
        )
    inputs = clip_lines(section(doc.text, "Args"))
    if inputs:
        pairs.append(Pair(f"What inputs does {doc.name} take?", inputs, INDICATORS, doc.name))
    return pairs


def time_value_pairs() -> list[Pair]:
    """numpy-financial's functions: purpose, parameters, the equation solved, and an example."""
    TIME_VALUE.directory()  # a clear error when the package is missing
    pairs = []
    for doc in module_docs(TIME_VALUE.module):
        pairs += doc_pairs(doc, TIME_VALUE)
        parameters = clip_lines(section(doc.text, "Parameters"))
        if parameters:
            pairs.append(Pair(f"What parameters does {doc.name} take?", parameters, TIME_VALUE, doc.name))
        notes = clip_lines(section(doc.text, "Notes"))
        if notes:
            pairs.append(Pair(f"How does {doc.name} compute its result?", notes, TIME_VALUE, doc.name))
    return pairs


def _is_economics(article: dict) -> bool:
    """Articles whose short description is about economics or finance, or social-science articles
    whose title is (such as "Economy of China", which has no description)."""
    if _ECONOMICS.search(article.get("description") or ""):
        return article.get("topic") not in _NOT_ECONOMICS
    return article.get("topic") == "Society and social sciences" and bool(_ECONOMICS.search(article["title"]))
