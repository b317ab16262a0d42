"""The reference set a round is calibrated on: `attribution.reference_prompts`, or built-in examples.

Each example is a prompt with, optionally, a fixed response. A fixed response is scored as it is
(teacher-forced), so the per-client baselines describe ordinary text whatever the round's model
has learnt to say; without one, the global model's own greedy answer is scored.
"""

from __future__ import annotations

import json
from pathlib import Path

from protoken.attribution import CalibrationExample
from protoken.config import AttributionSection
from protoken.errors import UserError

# Ordinary requests with plain answers, used when no reference file is configured.
DEFAULT_REFERENCE = (
    CalibrationExample("What is the capital of France?",
                       "The capital of France is Paris, which is also the largest city in the country."),
    CalibrationExample("Give me three tips for staying focused while studying.",
                       "Put your phone in another room, work in short blocks with breaks, and set one clear goal "
                       "for each session."),
    CalibrationExample("Describe a sunny day at the beach in two sentences.",
                       "The sand is warm and the waves roll in slowly under a bright blue sky. Children build "
                       "castles while their parents read in the shade of an umbrella."),
    CalibrationExample("How do I boil an egg?",
                       "Place the egg in a pot of cold water, bring it to a boil, then simmer for about nine "
                       "minutes and cool it in cold water before peeling."),
    CalibrationExample("What is the difference between weather and climate?",
                       "Weather is the state of the atmosphere over hours or days, while climate is the average "
                       "pattern of weather in a region over many years."),
    CalibrationExample("Write a short thank-you note to a colleague.",
                       "Thank you for your help with the report this week. Your careful work made a real "
                       "difference, and I am grateful to have you on the team."),
    CalibrationExample("Why is the sky blue?",
                       "Sunlight is scattered by the molecules of the air, and blue light is scattered much more "
                       "than red light, so the sky looks blue."),
    CalibrationExample("Name a few common household plants.",
                       "Common household plants include the spider plant, the snake plant, pothos, the peace "
                       "lily and aloe vera."),
)


def reference_examples(settings: AttributionSection) -> list[CalibrationExample]:
    """The configured reference file's examples, or the built-in ones."""
    return read_reference_file(settings.reference_prompts) if settings.reference_prompts \
        else list(DEFAULT_REFERENCE)


def read_reference_file(path: str) -> list[CalibrationExample]:
    """Examples from a text file (one prompt per line) or JSONL (a "prompt" and an optional "response")."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read attribution.reference_prompts {path}: {exc.strerror}") from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if line:
            examples.append(_example(line, f"{path}:{number}"))
    if len(examples) < 2:
        raise UserError(f"attribution.reference_prompts {path} needs at least 2 prompts to calibrate on")
    return examples


def _example(line: str, where: str) -> CalibrationExample:
    if not line.startswith("{"):
        return CalibrationExample(line)
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) or not record["prompt"].strip():
        raise UserError(f"{where}: not a prompt line or a JSON record with a \"prompt\"")
    response = record.get("response")
    if response is not None and (not isinstance(response, str) or not response.strip()):
        raise UserError(f"{where}: \"response\" must be non-empty text when given")
    return CalibrationExample(record["prompt"], response)
