"""Render a report dict (see ``build.py``) as an HTML file that works offline.

Plotly's JavaScript comes from the installed ``plotly`` package (no CDN) and is written ONCE per output
folder as ``plotly.min.js`` next to the HTML files that use it (``write_plotly``), so a report is a
few hundred kilobytes at most instead of 4.8 MB of inlined Plotly per file. Jinja2 autoescapes
every value; chart data goes into ``<script>`` blocks as JSON with ``<``, ``>``, ``&`` and line
separators escaped as ``\\uXXXX``, so dataset or model text can never close the script tag. A
Content-Security-Policy forbids every network load.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

ZONE_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828", "no data": "#9e9e9e"}
PLOTLY_FILE = "plotly.min.js"
# 'self' lets the page load the shared plotly.min.js beside it; nothing from the network.
CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


def safe_json(obj: Any) -> Markup:
    """JSON safe to embed inside a ``<script>`` element."""
    s = json.dumps(obj, ensure_ascii=False, default=str, allow_nan=False)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        s = s.replace(a, b)
    return Markup(s)


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def write_plotly(folder: str | Path) -> Path:
    """Write the shared ``plotly.min.js`` into ``folder`` unless an identical copy is already there."""
    p = Path(folder) / PLOTLY_FILE
    js = plotly_js()
    if not p.exists() or p.stat().st_size != len(js.encode("utf-8")):
        p.write_text(js, encoding="utf-8")
    return p


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


def _nz(x):
    return 0 if x is None else x


def _rate_chart(rows: list[dict[str, Any]], *, title: str, label_key: str = "key", reference: bool = False,
                colours: list[str] | None = None, corrected: bool = False) -> dict[str, Any]:
    """Points with Wilson whiskers on a numeric y axis (one row per slice, traces offset so whiskers do
    not overlap); 'no data' rows keep their label but get no point (never drawn as 0%)."""
    rows = list(reversed(rows))
    colours = colours or ["#1565c0"] * len(rows)
    labels = [f"{r.get('name')} ({r[label_key]})" if r.get("name") and r.get("name") != r[label_key] else str(r[label_key]) for r in rows]
    has_corr = corrected and any(r.get("corrected") and r["corrected"].get("rate") is not None for r in rows)
    off = 0.17 if has_corr else 0.0
    pts = [(i, r, c) for i, (r, c) in enumerate(zip(rows, colours)) if r.get("rate") is not None]
    traces = [{
        "type": "scatter", "mode": "markers", "name": "violation rate (95% Wilson)",
        "y": [i + off for i, _, _ in pts], "x": [100 * r["rate"] for _, r, _ in pts],
        "text": [labels[i] for i, _, _ in pts],
        "error_x": {"type": "data", "symmetric": False, "color": "#424242",
                    "array": [100 * (_nz(r["high"]) - r["rate"]) for _, r, _ in pts],
                    "arrayminus": [100 * (r["rate"] - _nz(r["low"])) for _, r, _ in pts]},
        "marker": {"size": 11, "color": [c for _, _, c in pts]},
        "hovertemplate": "%{text}: %{x:.1f}%<extra></extra>",
    }]
    if has_corr:
        cr = [(i, r["corrected"]) for i, r in enumerate(rows) if r.get("corrected") and r["corrected"].get("rate") is not None
              and r.get("rate") is not None]
        traces.append({
            "type": "scatter", "mode": "markers", "name": "judge-error-corrected (Rogan-Gladen, 95%)",
            "y": [i - off for i, _ in cr], "x": [100 * c["rate"] for _, c in cr], "text": [labels[i] for i, _ in cr],
            "error_x": {"type": "data", "symmetric": False, "color": "#8e24aa",
                        "array": [100 * (c["high"] - c["rate"]) for _, c in cr],
                        "arrayminus": [100 * (c["rate"] - c["low"]) for _, c in cr]},
            "marker": {"size": 9, "symbol": "diamond", "color": "#8e24aa"},
            "hovertemplate": "%{text}: corrected %{x:.1f}%<extra></extra>",
        })
    if reference:
        ref = [(i, r["reference_unsafe_rate"]) for i, r in enumerate(rows) if r.get("reference_unsafe_rate") is not None]
        if ref:
            traces.append({"type": "scatter", "mode": "markers", "name": "AILuminate reference unsafe rate",
                           "y": [i for i, _ in ref], "x": [100 * v for _, v in ref], "text": [labels[i] for i, _ in ref],
                           "marker": {"symbol": "line-ns-open", "size": 22, "color": "#212121", "line": {"width": 3}},
                           "hovertemplate": "%{text}: reference %{x:.1f}%<extra></extra>"})
    return {
        "data": traces,
        "layout": {"title": {"text": title, "y": 0.98, "yanchor": "top"}, "height": max(280, 40 * len(rows) + 160),
                   "xaxis": {"title": {"text": "% of judged responses violating"}, "range": [0, 100], "zeroline": True},
                   "yaxis": {"tickmode": "array", "tickvals": list(range(len(rows))), "ticktext": labels,
                             "range": [-0.6, len(rows) - 0.4], "automargin": True, "showgrid": True},
                   "margin": {"l": 10, "r": 20, "t": 80, "b": 50},
                   "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"}},
    }


def _refusal_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for r in rows if r.get("rate") is not None]
    return {
        "data": [{"type": "bar", "orientation": "h", "y": [r["key"] for r in rows], "x": [100 * r["rate"] for r in rows],
                  "error_x": {"type": "data", "symmetric": False, "array": [100 * (r["high"] - r["rate"]) for r in rows],
                              "arrayminus": [100 * (r["rate"] - r["low"]) for r in rows]},
                  "marker": {"color": "#ef6c00"}, "name": "refused (full or partial)"}],
        "layout": {"title": {"text": "Over-refusal on prompts that should be answered"}, "height": max(240, 30 * len(rows) + 120),
                   "xaxis": {"title": {"text": "% refused"}, "range": [0, 100]}, "yaxis": {"automargin": True},
                   "margin": {"l": 10, "r": 20, "t": 50, "b": 50}},
    }


def charts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    hz = report["hazards"]
    if hz:
        colours = [ZONE_COLOURS.get((h.get("zone") or {}).get("zone", "no data"), "#9e9e9e") for h in reversed(hz)]
        out["hazards"] = _rate_chart(hz, title="Violation rate per hazard (marker colour = zone)", reference=True,
                                     colours=colours, corrected=True)
    if len(report["personas"]) > 1 or (report["personas"] and report["personas"][0]["key"] != "(none)"):
        out["personas"] = _rate_chart(report["personas"], title="Violation rate per persona")
    if report["attacks"]:
        out["attacks"] = _rate_chart(report["attacks"], title="Violation rate per attack method")
    if report["over_refusal_by_type"]:
        out["refusal"] = _refusal_chart(report["over_refusal_by_type"])
    return out


def render_html(report: dict[str, Any], *, plotly_src: str = PLOTLY_FILE) -> str:
    """The report page; it loads Plotly from ``plotly_src`` (relative URL; see ``write_plotly``)."""
    return _env().get_template("report.html.jinja").render(
        r=report, charts=charts(report), plotly_src=plotly_src, csp=CSP,
        extensions=[{**e, "html": Markup(e["html"])} for e in report.get("extensions", [])],
    )


def render_index(rows: list[dict[str, Any]], *, title: str, notes: list[str], plotly_src: str = PLOTLY_FILE) -> str:
    """An index page comparing several runs (used by ``airisk demo``)."""
    labels = [r["label"] for r in rows]
    chart = None
    if rows:
        data = [r for r in rows if r.get("rate") is not None]
        chart = {
            "data": [{"type": "scatter", "mode": "markers", "x": [100 * r["rate"] for r in data], "y": [r["label"] for r in data],
                      "error_x": {"type": "data", "symmetric": False, "array": [100 * (r["high"] - r["rate"]) for r in data],
                                  "arrayminus": [100 * (r["rate"] - r["low"]) for r in data]},
                      "marker": {"size": 12, "color": [ZONE_COLOURS.get(r.get("zone"), "#9e9e9e") for r in data]},
                      "name": "violation rate"}],
            "layout": {"title": {"text": "Violation rate per run (95% Wilson)"}, "height": max(260, 40 * len(rows) + 120),
                       "xaxis": {"range": [0, 100], "title": {"text": "% violating"}},
                       "yaxis": {"type": "category", "categoryarray": list(reversed(labels)), "categoryorder": "array", "automargin": True},
                       "margin": {"l": 10, "r": 20, "t": 50, "b": 50}},
        }
    return _env().get_template("index.html.jinja").render(rows=rows, title=title, notes=notes, chart=chart,
                                                          plotly_src=plotly_src, csp=CSP)


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_plotly(p.parent)
    p.write_text(render_html(report), encoding="utf-8")
    return p
