"""Whitespace and length handling shared by every source.

Responses are kept to about ``RESPONSE_CHARS`` characters so that a prompt and its response fit in
roughly 128 tokens of a typical BPE tokenizer.
"""

from __future__ import annotations

import re

RESPONSE_CHARS = 400
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")


def squash(text: str) -> str:
    """Collapse every run of whitespace (newlines included) into one space."""
    return " ".join(text.split())


def chunks(text: str, limit: int = RESPONSE_CHARS) -> list[str]:
    """Consecutive pieces of at most ``limit`` characters, cut between sentences where possible."""
    text = squash(text)
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        if current and len(current) + 1 + len(sentence) > limit:
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}" if current else sentence
        while len(current) > limit:  # one sentence longer than the limit: cut it between words
            head = current[: limit - 1].rsplit(" ", 1)[0]
            pieces.append(head + "…")
            current = current[len(head) :].lstrip()
    if current:
        pieces.append(current)
    return pieces


def clip(text: str, limit: int = RESPONSE_CHARS) -> str:
    """The first ``limit`` characters or fewer, ending at a sentence (or word) boundary."""
    found = chunks(text, limit)
    return found[0] if found else ""


def clip_lines(text: str, limit: int = RESPONSE_CHARS) -> str:
    """Whole leading lines of ``text`` that fit in ``limit`` characters (for code and tables)."""
    kept: list[str] = []
    size = 0
    for line in text.strip("\n").splitlines():
        size += len(line) + 1
        if size > limit + 1:
            break
        kept.append(line.rstrip())
    return "\n".join(kept).strip("\n")
