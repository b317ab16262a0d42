"""Docstrings of library code, and the instruction pairs made from them."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

from protoken.data.sources import Pair, Source
from protoken.data.text import clip, clip_lines, squash
from protoken.errors import UserError

_UNDERLINE = re.compile(r"(-{3,}|={3,})")  # under a numpydoc / sympy section heading
_GOOGLE_HEADING = re.compile(
    r"(Args|Arguments|Parameters|Returns|Yields|Raises|Examples?|Notes?|See Also|References|Attributes):"
)
_BOLD_HEADING = re.compile(r"\*\*[\w ]+\*\*")  # mpmath's **Examples**
_URL_LINE = re.compile(r"(From:\s*)?https?://\S+")  # ta cites its sources on lines of their own
_ROLE = re.compile(r"(?::[a-z]+)+:`~?([^`]+)`")  # :func:`~mpmath.ellipk` -> mpmath.ellipk
_C_SIGNATURE = re.compile(r"[\w.]+\(.*\)\s*(-+>.*)?")  # "date(year, month, day) --> date object"
_DANGLING = re.compile(r"(?<=[.!?])\s+[^.!?]*:$")  # "... Example enumeration:" before a code block
_PROSE_HEADINGS = ("Explanation", "Description")  # sympy headings whose text is still the summary
_MIN_SUMMARY = 20
_EXAMPLE_CHARS = 200  # doctests are dense in tokens (digits, symbols): about 125 of them


@dataclass(frozen=True)
class Doc:
    name: str  # qualified name as a user would write it, e.g. "sympy.factorint"
    is_class: bool
    text: str  # cleaned (dedented) docstring


def module_docs(*module_names: str) -> list[Doc]:
    """The public functions and classes that modules export, read in a fresh interpreter.

    The calling process may have imported libraries that patch others (importing torch replaces
    ``inspect.getfile``, for one); a child process keeps the data set independent of that.
    """
    code = "import sys; from protoken.data.docstrings import print_docs; print_docs(sys.argv[1:])"
    child = subprocess.run(
        [sys.executable, "-c", code, *module_names], capture_output=True, text=True, encoding="utf-8"
    )
    if child.returncode != 0:
        raise UserError(
            f"could not read the docstrings of {', '.join(module_names)}:\n{child.stderr.strip()}"
        )
    return [Doc(**fields) for fields in json.loads(child.stdout)]


def print_docs(module_names: list[str]) -> None:
    """Print, as ASCII JSON, the docstrings :func:`module_docs` asks a child process for."""
    docs = [asdict(doc) for name in module_names for doc in _exported_docs(name)]
    json.dump(docs, sys.stdout)


def _exported_docs(module_name: str) -> list[Doc]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    docs = []
    for name in sorted(set(names)):
        obj = getattr(module, name, None)
        text = getattr(obj, "__doc__", None)  # a class's own docstring: __doc__ is not inherited
        if callable(obj) and _defined_in(obj, module_name) and isinstance(text, str) and text.strip():
            docs.append(Doc(f"{module_name}.{name}", inspect.isclass(obj), inspect.cleandoc(text)))
    return docs


def _defined_in(obj: object, module_name: str) -> bool:
    """Whether ``obj`` belongs to the module's own package (``_functools`` counts for functools)."""
    owner = getattr(obj, "__module__", None) or ""
    return owner.lstrip("_").split(".")[0] == module_name.split(".")[0]


def source_docs(path: Path, prefix: str) -> list[Doc]:
    """The public top-level functions and classes of a source file, read without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docs = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            text = ast.get_docstring(node)
            if text:
                docs.append(Doc(f"{prefix}.{node.name}", isinstance(node, ast.ClassDef), text))
    return docs


def _heading_at(lines: list[str], i: int) -> str | None:
    """The section title starting at line ``i``, if one does."""
    line = lines[i].strip()
    if line and i + 1 < len(lines) and _UNDERLINE.fullmatch(lines[i + 1].strip()):
        return line
    if _GOOGLE_HEADING.fullmatch(line) or _BOLD_HEADING.fullmatch(line):
        return line.strip("*:")
    return None


def summary(doc: str) -> str:
    """The prose before the first section, doctest or plot, on one line."""
    lines = doc.splitlines()
    kept: list[str] = []
    i = 1 if lines and _C_SIGNATURE.fullmatch(lines[0].strip()) else 0
    while i < len(lines):
        line = lines[i].strip()
        heading = _heading_at(lines, i)
        if heading in _PROSE_HEADINGS:
            i += 2
            continue
        if heading or line.startswith(">>>"):
            break
        if not line.startswith(".. ") and not _URL_LINE.fullmatch(line):  # rST directives, links
            kept.append(line.replace("``", "`").replace("::", ":"))  # rST literal-block marker
        i += 1
    return _DANGLING.sub("", _ROLE.sub(r"\1", squash(" ".join(kept))))


def section(doc: str, title: str) -> str:
    """The body of a numpydoc (``Notes`` + underline) or Google (``Args:``) section, dedented."""
    lines = doc.splitlines()
    for i in range(len(lines)):
        if _heading_at(lines, i) == title:
            start = i + 2 if lines[i].strip() == title else i + 1
            end = next((j for j in range(start, len(lines)) if _heading_at(lines, j)), len(lines))
            return textwrap.dedent("\n".join(lines[start:end])).strip()
    return ""


def examples(doc: str) -> str:
    """The doctest lines (``>>>`` and their output) of a docstring, without the prose between."""
    kept: list[str] = []
    indent: int | None = None  # indentation of the current doctest block
    for line in doc.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(">>>"):
            indent = len(line) - len(stripped)
            kept.append(stripped)
        elif indent is not None and stripped:
            kept.append(line[indent:] if not line[:indent].strip() else stripped)
        else:
            indent = None  # a blank line or prose ends the block
    lines = clip_lines("\n".join(kept), _EXAMPLE_CHARS).splitlines()
    while lines and lines[-1].startswith((">>>", "...")):  # its output was cut off
        lines.pop()
    return "\n".join(lines)


def doc_pairs(doc: Doc, source: Source) -> list[Pair]:
    """What the object is for, and how it is used when the docstring shows doctests."""
    kind = "class" if doc.is_class else "function"
    pairs = []
    about = clip(summary(doc.text))
    if len(about) >= _MIN_SUMMARY:
        what_for = "is for" if doc.is_class else "does"
        pairs.append(Pair(f"Explain what the {kind} {doc.name} {what_for}.", about, source, doc.name))
    example = examples(doc.text)
    if example:
        pairs.append(Pair(f"Show an example of using {doc.name}.", example, source, doc.name))
    return pairs
