"""The calibration reference set: built-in examples and the file format."""

from __future__ import annotations

import json

import pytest

from protoken.attribution import CalibrationExample
from protoken.config import AttributionSection
from protoken.errors import UserError
from protoken.server.reference import DEFAULT_REFERENCE, read_reference_file, reference_examples


def test_built_in_examples_all_carry_a_fixed_response():
    examples = reference_examples(AttributionSection())
    assert examples == list(DEFAULT_REFERENCE) and len(examples) >= 2
    assert all(example.response and example.response.strip() for example in examples)


def test_text_lines_and_jsonl_records_with_or_without_a_response(tmp_path):
    path = tmp_path / "reference.jsonl"
    path.write_text("What is rain?\n\n" + json.dumps({"prompt": "Name a colour.", "response": "Blue."}) + "\n"
                    + json.dumps({"prompt": "Count to three."}) + "\n")
    assert reference_examples(AttributionSection(reference_prompts=str(path))) == [
        CalibrationExample("What is rain?"), CalibrationExample("Name a colour.", "Blue."),
        CalibrationExample("Count to three.")]


@pytest.mark.parametrize("lines, message", [
    (['{"prompt": "a", "response": "  "}', "b"], "must be non-empty text"),
    (['{"prompt": "a", "response": 3}', "b"], "must be non-empty text"),
    (['{"question": "a"}', "b"], "not a prompt line"),
    (['{"prompt": "a"', "b"], "not a prompt line"),
    (["only one"], "at least 2 prompts"),
])
def test_a_bad_reference_file_is_refused_with_its_line(tmp_path, lines, message):
    path = tmp_path / "reference.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=message):
        read_reference_file(str(path))
