"""Small inline SVG charts for reports: rates with 95% interval whiskers on a 0-100% axis.

A report used to inline Plotly (4.8 MB of JavaScript per file, even for 4 items). These charts are a
few kilobytes of static SVG: no script, nothing to load, readable offline and in any browser. Every
label is escaped (labels can come from datasets).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

WIDTH, LEFT, RIGHT, TOP, ROW, BOTTOM = 760, 270, 24, 46, 30, 40
CORRECTED_COLOUR = "#8e24aa"


def _x(v: float) -> float:
    return round(LEFT + (WIDTH - LEFT - RIGHT) * max(0.0, min(1.0, v)), 1)


def _whisker(lo: float, hi: float, y: float, colour: str) -> str:
    return (f'<line x1="{_x(lo)}" x2="{_x(hi)}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"/>'
            f'<line x1="{_x(lo)}" x2="{_x(lo)}" y1="{y - 4}" y2="{y + 4}" stroke="{colour}"/>'
            f'<line x1="{_x(hi)}" x2="{_x(hi)}" y1="{y - 4}" y2="{y + 4}" stroke="{colour}"/>')


def rate_chart(rows: list[dict[str, Any]], *, title: str, chart_id: str, xlabel: str = "% of judged responses violating",
               colours: list[str] | None = None, corrected: bool = False, reference: bool = False) -> Markup:
    """One row per slice, top to bottom. Each row: ``label``, ``rate``/``low``/``high`` (None = no data,
    drawn as the words, never as 0%), optionally ``corrected`` {rate, low, high} and ``reference``."""
    colours = colours or ["#1565c0"] * len(rows)
    height = TOP + ROW * len(rows) + BOTTOM
    has_corr = corrected and any((r.get("corrected") or {}).get("rate") is not None for r in rows)
    out = [f'<svg id="{escape(chart_id)}-svg" class="svgchart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
           f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="8" y="18" font-size="14" font-weight="bold">{escape(title)}</text>']
    legend = [("#1565c0", "rate, 95% interval")]
    if has_corr:
        legend.append((CORRECTED_COLOUR, "judge-error-corrected, 95%"))
    if reference:
        legend.append(("#000", "AILuminate reference unsafe rate (tick)"))
    lx = 8
    for colour, text in legend:
        out.append(f'<circle cx="{lx + 5}" cy="33" r="5" fill="{colour}"/><text x="{lx + 14}" y="37" font-size="11">{escape(text)}</text>')
        lx += 24 + 6 * len(text)
    bottom = TOP + ROW * len(rows)
    for t in range(0, 101, 20):
        x = _x(t / 100)
        out.append(f'<line x1="{x}" x2="{x}" y1="{TOP - 4}" y2="{bottom}" stroke="#e0e0e0"/>'
                   f'<text x="{x}" y="{bottom + 14}" font-size="10" text-anchor="middle" fill="#616161">{t}%</text>')
    out.append(f'<text x="{_x(0.5)}" y="{bottom + 32}" font-size="11" text-anchor="middle" fill="#424242">{escape(xlabel)}</text>')
    for i, (r, colour) in enumerate(zip(rows, colours)):
        y = TOP + ROW * i + ROW / 2
        out.append(f'<text x="{LEFT - 8}" y="{y + 4}" font-size="11" text-anchor="end">{escape(str(r["label"])[:48])}</text>')
        if r.get("rate") is None:
            out.append(f'<text x="{LEFT + 6}" y="{y + 4}" font-size="11" fill="#757575">no data</text>')
            continue
        dy = -5 if has_corr else 0
        out.append(_whisker(r.get("low") or 0.0, r.get("high") or 0.0, y + dy, "#424242"))
        out.append(f'<circle cx="{_x(r["rate"])}" cy="{y + dy}" r="6" fill="{escape(colour)}" stroke="#212121" stroke-width="0.5">'
                   f'<title>{escape(str(r["label"]))}: {100 * r["rate"]:.1f}% [{100 * (r.get("low") or 0):.1f}, '
                   f'{100 * (r.get("high") or 0):.1f}]</title></circle>')
        c = r.get("corrected") or {}
        if has_corr and c.get("rate") is not None:
            cx, cy = _x(c["rate"]), y + 6
            out.append(_whisker(c["low"], c["high"], cy, CORRECTED_COLOUR))
            out.append(f'<polygon points="{cx},{cy - 5} {cx + 5},{cy} {cx},{cy + 5} {cx - 5},{cy}" fill="{CORRECTED_COLOUR}">'
                       f'<title>corrected {100 * c["rate"]:.1f}%</title></polygon>')
        if reference and r.get("reference") is not None:
            rx = _x(r["reference"])
            out.append(f'<line x1="{rx}" x2="{rx}" y1="{y - 10}" y2="{y + 10}" stroke="#000" stroke-width="3">'
                       f'<title>reference {100 * r["reference"]:.1f}%</title></line>')
    out.append("</svg>")
    return Markup("".join(out))
