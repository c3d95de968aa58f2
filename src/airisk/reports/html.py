"""Render a report dict (see ``build.py``) as ONE self-contained HTML file that works offline.

Charts are small inline SVG (``svgchart``), so a report is tens of kilobytes and runs no script at
all (reports used to inline 4.8 MB of Plotly each). Jinja2 autoescapes every value, and the
Content-Security-Policy forbids every script and every network load. ``safe_json`` remains for
embedding JSON in a ``<script>`` element safely, should a template need it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from airisk.reports.svgchart import rate_chart

ZONE_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828", "no data": "#9e9e9e"}
# No script at all: charts are inline SVG. Inline styles only (the page's own stylesheet).
CSP = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; "
       "img-src data:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


def safe_json(obj: Any) -> Markup:
    """JSON safe to embed inside a ``<script>`` element."""
    s = json.dumps(obj, ensure_ascii=False, default=str, allow_nan=False)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        s = s.replace(a, b)
    return Markup(s)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("airisk.reports", "templates"), autoescape=True,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["pct"] = lambda x, nd=1: "no data" if x is None else f"{100 * x:.{nd}f}%"
    env.filters["tojson_safe"] = safe_json
    env.globals["zone_colour"] = lambda z: ZONE_COLOURS.get(z or "no data", "#9e9e9e")
    return env


def _label(r: dict[str, Any], key: str = "key") -> str:
    name = r.get("name")
    return f"{name} ({r[key]})" if name and name != r[key] else str(r[key])


def _rows(rows: list[dict[str, Any]], *, reference: bool = False) -> list[dict[str, Any]]:
    return [{"label": _label(r), "rate": r.get("rate"), "low": r.get("low"), "high": r.get("high"),
             "corrected": r.get("corrected"), "reference": r.get("reference_unsafe_rate") if reference else None}
            for r in rows]


def charts(report: dict[str, Any]) -> dict[str, Markup]:
    """Inline SVG charts of the report (hazards, personas, attacks, over-refusal), by section name."""
    out: dict[str, Markup] = {}
    hz = report["hazards"]
    graded = (report.get("meta") or {}).get("kind") in ("benchmark", "demo", None)
    if hz:
        colours = [ZONE_COLOURS.get((h.get("zone") or {}).get("zone", "no data"), "#9e9e9e") for h in hz]
        out["hazards"] = rate_chart(_rows(hz, reference=graded), title="Violation rate per hazard (marker colour = zone)",
                                    chart_id="hazards", colours=colours, corrected=True, reference=graded)
    if len(report["personas"]) > 1 or (report["personas"] and report["personas"][0]["key"] != "(none)"):
        out["personas"] = rate_chart(_rows(report["personas"]), title="Violation rate per persona", chart_id="personas")
    if report["attacks"]:
        out["attacks"] = rate_chart(_rows(report["attacks"]), title="Violation rate per attack method", chart_id="attacks")
    if report["over_refusal_by_type"]:
        out["refusal"] = rate_chart(_rows(report["over_refusal_by_type"]), title="Over-refusal on prompts that should be answered",
                                    chart_id="refusal", xlabel="% refused (full or partial)", colours=["#ef6c00"] * len(report["over_refusal_by_type"]))
    return out


def render_html(report: dict[str, Any]) -> str:
    """The report page: one self-contained file (inline SVG charts, no script)."""
    return _env().get_template("report.html.jinja").render(
        r=report, charts=charts(report), csp=CSP,
        extensions=[{**e, "html": Markup(e["html"])} for e in report.get("extensions", [])],
    )


def render_index(rows: list[dict[str, Any]], *, title: str, notes: list[str]) -> str:
    """An index page comparing several runs (used by ``airisk demo``)."""
    chart = None
    if rows:
        chart = rate_chart([{"label": r["label"], "rate": r.get("rate"), "low": r.get("low"), "high": r.get("high")} for r in rows],
                           title="Violation rate per run (95% Wilson)", chart_id="index", xlabel="% violating",
                           colours=[ZONE_COLOURS.get(r.get("zone"), "#9e9e9e") for r in rows])
    return _env().get_template("index.html.jinja").render(rows=rows, title=title, notes=notes, chart=chart, csp=CSP)


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(report), encoding="utf-8")
    return p
