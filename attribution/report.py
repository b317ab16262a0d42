"""A self-contained HTML report: every generated token coloured by its responsible client."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from html import escape
from pathlib import Path

from protoken.attribution.provenance import Provenance, TokenProvenance

NEUTRAL = "#d9d9d9"
NEUTRAL_LABEL = "no client stands out"
_PALETTE = ("#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#80b1d3", "#b3de69", "#fccde5", "#ffed6f",
            "#bc80bd", "#ccebc5")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 60rem; color: #222; }
.legend span, .token { border-radius: 3px; padding: 0 2px; }
.legend span { display: inline-block; margin: 0 .5rem .3rem 0; padding: .1rem .5rem; }
.response { white-space: pre-wrap; line-height: 1.9; font-family: ui-monospace, monospace;
            border: 1px solid #ccc; padding: .8rem; }
.token:hover { outline: 2px solid #333; }
.meta { color: #555; font-size: .9rem; }
section { margin-bottom: 2.5rem; }
"""


def client_colours(clients: Sequence[str]) -> dict[str, str]:
    """A distinct colour per client, stable for the same sorted set of clients."""
    colours = {}
    for index, client in enumerate(sorted(clients)):
        if index < len(_PALETTE):
            colours[client] = _PALETTE[index]
        else:  # spread further hues by the golden ratio
            red, green, blue = colorsys.hls_to_rgb((index * 0.618034) % 1.0, 0.8, 0.6)
            colours[client] = f"#{int(red * 255):02x}{int(green * 255):02x}{int(blue * 255):02x}"
    return colours


def _token_title(token: TokenProvenance) -> str:
    lines = [f"#{token.position} {token.text!r} (id {token.token_id})",
             f"responsible: {token.responsible or NEUTRAL_LABEL}"]
    lines += [f"{share.client}: {share.probability:.1%} (score {share.score:.4g})"
              for share in sorted(token.shares, key=lambda share: -share.probability)]
    return "\n".join(lines)


def _section(provenance: Provenance, colours: dict[str, str]) -> str:
    spans = "".join(
        f'<span class="token" style="background:{colours.get(token.responsible, NEUTRAL)}" '
        f'title="{escape(_token_title(token))}">{escape(token.text)}</span>'
        for token in provenance.tokens
    )
    shares = ", ".join(f"{escape(share.client)} {share.probability:.1%}"
                       for share in sorted(provenance.shares, key=lambda share: -share.probability))
    traced = escape(provenance.traced or NEUTRAL_LABEL)
    round_text = "" if provenance.round is None else f"round {provenance.round} · "
    return (
        "<section>"
        f"<h2>{escape(provenance.prompt)}</h2>"
        f'<p class="meta">{round_text}mode {escape(provenance.mode)} · objective {escape(provenance.objective)}'
        f" · {escape(str(provenance.coverage))}"
        f" · modules {escape(', '.join(provenance.modules))}</p>"
        f'<div class="response">{spans}</div>'
        f"<p>Traced client: <strong>{traced}</strong>"
        f'{" — " + shares if shares else ""}</p>'
        "</section>"
    )


def render_html(provenances: Provenance | Sequence[Provenance], *, title: str = "ProToken attribution") -> str:
    """One HTML page with a legend and a section per response; hover a token for its distribution."""
    items = [provenances] if isinstance(provenances, Provenance) else list(provenances)
    clients = sorted({client for item in items for client in item.coverage.asked})
    colours = client_colours(clients)
    legend = "".join(f'<span style="background:{colours[client]}">{escape(client)}</span>' for client in clients)
    legend += f'<span style="background:{NEUTRAL}">{NEUTRAL_LABEL}</span>'
    body = "".join(_section(item, colours) for item in items)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<div class="legend"><strong>Legend:</strong> {legend}</div>'
        f"{body}</body></html>\n"
    )


def write_html(path: str | Path, provenances: Provenance | Sequence[Provenance], *,
               title: str = "ProToken attribution") -> Path:
    path = Path(path)
    path.write_text(render_html(provenances, title=title), encoding="utf-8")
    return path
