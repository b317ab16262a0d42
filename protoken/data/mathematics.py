"""Mathematics pairs: computer-algebra and arbitrary-precision docstrings, and encyclopedia
articles on mathematics."""

from __future__ import annotations

from protoken.data import wiki
from protoken.data.docstrings import doc_pairs, module_docs
from protoken.data.sources import Pair, Source

SYMPY = Source("sympy", "BSD-3-Clause", module="sympy")
MPMATH = Source("mpmath", "BSD-3-Clause", module="mpmath")


def pairs() -> list[Pair]:
    found = []
    for source in (SYMPY, MPMATH):
        source.directory()  # a clear error when the package is missing
        found += [pair for doc in module_docs(source.module) for pair in doc_pairs(doc, source)]
    for article in wiki.articles(lambda a: a.get("topic") == "Mathematics"):
        found += wiki.article_pairs(article)
    return found
