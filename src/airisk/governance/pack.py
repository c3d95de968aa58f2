"""The evidence pack: one self-contained HTML dossier (and the same in Markdown) for sign-off.

``build_pack`` gathers everything from a register, the check report and the risk assessment into
plain data; ``render_html`` / ``render_markdown`` print it; ``write_pack`` writes ``pack.html``,
``pack.md`` and ``pack.json`` into a folder.

Properties the tests hold it to:

* **offline**: no script, no external URL; charts are inline SVG; a Content-Security-Policy forbids
  any network load;
* **escaped**: every text from the register, the store or a model goes through Jinja2's autoescape
  (HTML) or :func:`md_escape` (Markdown);
* **traceable**: every number links to the run that produced it (``#run-<id>`` in the runs table,
  which also links the run's own report when ``reports_dir`` holds one);
* **deterministic**: no clock, no randomness beyond the seeded Monte Carlo; the same register, store
  contents and seed give byte-identical files.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from airisk.governance.check import CheckReport
from airisk.governance.coverage import FrameworkCoverage, register_coverage
from airisk.governance.qra import RiskResult
from airisk.governance.register import Register

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
STATUS_CLASS = {"met": "ok", "not met": "bad", "not measured": "warn", "documented": "doc", "gap": "gap"}


def run_anchor(run_id: str) -> str:
    return "run-" + re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def money(x: float | None, currency: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    s = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"
    return f"{s} {currency}".strip()


def pct(x: float | None, nd: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{nd}f}%"


def share(x: float) -> str:
    """A small share without rounding it away: 0.00005 -> '0.005%'."""
    return f"{100 * x:.3g}%"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md_escape(text: Any) -> str:
    """Text safe inside a Markdown table cell or paragraph: Markdown syntax is backslash-escaped and
    ``& < >`` become entities, so no tag, link or emphasis can come from the text."""
    s = _MD_SPECIAL.sub(r"\\\1", str(text if text is not None else ""))
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(s.split())  # a newline would end a table row


# -- the loss exceedance chart (inline SVG, no script) --------------------------------------------


def lec_svg(series: list[tuple[str, str, list[tuple[float, float]]]], *, unit: str, width: int = 560, height: int = 260) -> Markup:
    """Loss exceedance curves, log-x. ``series``: (label, colour, [(loss, P(loss >= x))])."""
    pts = [p for _, _, s in series for p in s if p[0] > 0]
    if not pts:
        return Markup('<p class="muted">no loss simulated (no incidents in any simulated year)</p>')
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    lx0, lx1 = math.log10(x0), math.log10(x1) if x1 > x0 else math.log10(x0) + 1
    L, R, T, B = 60, 12, 12, 36
    W, H = width - L - R, height - T - B

    def sx(x: float) -> float:
        return L + W * (math.log10(x) - lx0) / (lx1 - lx0)

    def sy(p: float) -> float:
        return T + H * (1 - p)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="loss exceedance curve">', f'<rect x="{L}" y="{T}" width="{W}" height="{H}" fill="#fafafa" stroke="#bbb"/>']
    for p in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{L}" x2="{L + W}" y1="{sy(p):.1f}" y2="{sy(p):.1f}" stroke="#e0e0e0"/>'
                     f'<text x="{L - 6}" y="{sy(p) + 4:.1f}" text-anchor="end" font-size="10">{int(p * 100)}%</text>')
    for e in range(math.floor(lx0), math.ceil(lx1) + 1):
        if lx0 - 1e-9 <= e <= lx1 + 1e-9:
            parts.append(f'<line x1="{sx(10 ** e):.1f}" x2="{sx(10 ** e):.1f}" y1="{T}" y2="{T + H}" stroke="#e0e0e0"/>'
                         f'<text x="{sx(10 ** e):.1f}" y="{T + H + 14}" text-anchor="middle" font-size="10">{html.escape(money(10.0 ** e))}</text>')
    parts.append(f'<text x="{L + W / 2}" y="{height - 4}" text-anchor="middle" font-size="11">annual loss ({html.escape(unit)}), log scale</text>')
    parts.append(f'<text x="12" y="{T + H / 2}" font-size="11" transform="rotate(-90 12 {T + H / 2})" text-anchor="middle">P(loss &#8805; x)</text>')
    for i, (label, colour, s) in enumerate(series):
        d = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(p):.1f}" for j, (x, p) in enumerate(s) if x > 0)
        parts.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{L + W - 6}" y="{T + 14 + 14 * i}" text-anchor="end" font-size="11" fill="{colour}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# -- building the pack's data ---------------------------------------------------------------------


def _run_table(store: Any, run_ids: list[str], reports_dir: Path | None, out_dir: Path | None) -> list[dict[str, Any]]:
    rows = []
    for rid in run_ids:
        r = store.get_run(rid)
        report = None
        if reports_dir is not None and (reports_dir / rid / "report.html").is_file():
            target = (reports_dir / rid / "report.html").resolve()
            try:
                report = str(target.relative_to(out_dir.resolve())) if out_dir else str(target)
            except ValueError:
                import os

                report = os.path.relpath(target, out_dir.resolve()) if out_dir else str(target)
        rows.append({"id": r.id, "anchor": run_anchor(r.id), "kind": r.kind, "status": r.status, "system": r.system_name,
                     "label": r.label or "", "created": r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                     "datasets": [f"{d.get('name')} {d.get('version') or ''}".strip() for d in r.datasets],
                     "judges": [j.get("id") for j in r.judges if j.get("id")], "report": report})
    return rows


def _judges(report: CheckReport) -> list[dict[str, Any]]:
    seen: dict[tuple, dict[str, Any]] = {}
    for req in report.requirements:
        for c in req.checks:
            for e in c.runs:
                if not e.judge_id:
                    continue
                key = (e.judge_id, e.judge_fingerprint or "", e.task)
                j = seen.setdefault(key, {"id": e.judge_id, "fingerprint": e.judge_fingerprint or "", "card": e.card,
                                          "task": e.task, "runs": [], "checks": []})
                if e.run_id not in j["runs"]:
                    j["runs"].append(e.run_id)
                if c.id not in j["checks"]:
                    j["checks"].append(c.id)
    return [seen[k] for k in sorted(seen)]


def _hazard_cards(register: Register, report: CheckReport, risks: list[RiskResult]) -> list[dict[str, Any]]:
    from airisk.scoring.hazards import hazard_name

    codes: list[str] = []
    for r in register.requirements:
        for h in r.hazards + [c.hazard for c in r.checks if c.hazard]:
            if h not in codes:
                codes.append(h)
    for h in [r.hazard for r in register.risks] + [h for u in register.system.use_cases for h in u.hazards]:
        if h and h not in codes:
            codes.append(h)
    cards = []
    for code in sorted(codes):
        reqs = [r for r in report.requirements if code in r.hazards or any(
            c.id in {cc.id for rr in register.requirements for cc in rr.checks if cc.hazard == code} for c in r.checks)]
        cards.append({"key": code, "title": f"{code} · {hazard_name(code)}", "requirements": reqs,
                      "risks": [x for x in risks if x.hazard == code],
                      "use_cases": [u.id for u in register.system.use_cases if code in u.hazards]})
    other = [x for x in risks if x.hazard is None]
    if other:
        cards.append({"key": "other", "title": "Not tied to one content hazard", "requirements": [
            r for r in report.requirements if any(c.id in {x.check for x in other} | {x.mitigation_check for x in other}
                                                  for c in r.checks)], "risks": other, "use_cases": sorted({u for x in other for u in x.use_cases})})
    return cards


def _use_case_cards(register: Register, report: CheckReport, risks: list[RiskResult], raw: dict[str, Any]) -> list[dict[str, Any]]:
    import numpy as np

    from airisk.governance.qra import summarise

    cards = []
    for uc in register.system.use_cases:
        ucr = [x for x in risks if uc.id in x.use_cases]
        reqs = [r for r in report.requirements if set(r.hazards) & set(uc.hazards)
                or any(c.id in {x.check for x in ucr} | {x.mitigation_check for x in ucr} for c in r.checks)]
        total = total_mit = None
        sims = [raw[x.id] for x in ucr if x.id in raw]
        if sims:  # risks add up year by year (independence across risks assumed)
            total = summarise(np.sum(sims, axis=0), unit=f"{register.currency}/year", seed=-1,
                              expected_incidents=sum(x.loss.expected_incidents for x in ucr if x.loss))
            mit = [raw.get(x.id + "#mitigated", raw[x.id]) for x in ucr if x.id in raw]
            if any(x.id + "#mitigated" in raw for x in ucr):
                total_mit = summarise(np.sum(mit, axis=0), unit=f"{register.currency}/year", seed=-1,
                                      expected_incidents=float("nan"))
        unmeasured = [x.id for x in ucr if x.id not in raw]
        cards.append({"id": uc.id, "description": uc.description, "hazards": uc.hazards, "requirements": reqs,
                      "risks": ucr, "total": total, "total_mitigated": total_mit, "unmeasured": unmeasured})
    return cards


def _open_issues(register: Register, report: CheckReport, risks: list[RiskResult], coverage: list[FrameworkCoverage],
                 judges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    issues = []
    for r in report.requirements:
        for c in r.checks:
            if c.status != "met":
                issues.append({"severity": "high" if c.status == "not met" else "medium",
                               "what": f"{r.id} / {c.id}: {c.status}", "detail": c.reason,
                               "runs": [e.run_id for e in c.runs]})
            elif c.zone in ("yellow", "red"):
                issues.append({"severity": "medium", "what": f"{r.id} / {c.id}: met, but in the {c.zone} zone",
                               "detail": c.reason, "runs": [e.run_id for e in c.runs]})
            partial = sorted({e.run_id for e in c.runs if e.partial_reasons})
            if partial:
                issues.append({"severity": "medium", "what": f"{c.id}: evidence from unfinished runs",
                               "detail": "; ".join(f"{e.run_id}: {', '.join(e.partial_reasons)}" for e in c.runs if e.partial_reasons),
                               "runs": partial})
    tested = {h for r in register.requirements for h in r.hazards + [c.hazard for c in r.checks if c.hazard]}
    for u in register.system.use_cases:
        untested = [h for h in u.hazards if h not in tested]
        if untested:
            issues.append({"severity": "medium", "what": f"use case {u.id}: hazard(s) {', '.join(untested)} have no requirement",
                           "detail": "the use case is exposed to them but nothing is tested or assessed", "runs": []})
    for j in judges:
        if not j["card"]:
            issues.append({"severity": "medium", "what": f"judge {j['id']} has no judge card ({j['task']} task)",
                           "detail": "its error rates are not measured; rates from it are uncorrected "
                                     f"(checks {', '.join(j['checks'])})", "runs": j["runs"]})
    for x in risks:
        if x.loss is None:
            issues.append({"severity": "high", "what": f"{x.id}: no loss estimate", "detail": x.reason.strip(), "runs": []})
    for fw in coverage:
        if fw.gaps:
            issues.append({"severity": "low", "what": f"{fw.name}: {len(fw.gaps)} of {len(fw.items)} items not covered",
                           "detail": "see the framework coverage section", "runs": []})
    return issues


def inputs_digest(register_text: str, report: CheckReport, store: Any) -> str:
    """A digest of what the pack was built from: the register text and each run's stored state."""
    h = hashlib.sha256(register_text.encode("utf-8"))
    for rid in report.runs_considered:
        r = store.get_run(rid)
        h.update(json.dumps([r.id, r.status, str(r.updated_at), r.stats, r.judges], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def build_pack(register: Register, report: CheckReport, risks: list[RiskResult], raw: dict[str, Any], store: Any, *,
               register_text: str = "", reports_dir: Path | None = None, out_dir: Path | None = None,
               draws: int = 0, seed: int = 0) -> dict[str, Any]:
    """All the pack's content as plain data (rendered by ``render_html`` / ``render_markdown``)."""
    judges = _judges(report)
    coverage = register_coverage(register, report, judge_cards=any(j["card"] for j in judges))
    used = sorted({e.run_id for r in report.requirements for c in r.checks for e in c.runs})
    runs = _run_table(store, used, reports_dir, out_dir)
    latest = max((r["created"] for r in runs if r["id"] in used), default="-")
    mean = sum(x.loss.mean for x in risks if x.loss)
    mean_mit = sum((x.mitigated_loss or x.loss).mean for x in risks if x.loss)
    return {
        "register": register, "report": report, "risks": risks, "runs": runs, "used_runs": used, "judges": judges,
        "coverage": coverage, "hazard_cards": _hazard_cards(register, report, risks),
        "use_case_cards": _use_case_cards(register, report, risks, raw),
        "issues": _open_issues(register, report, risks, coverage, judges),
        "counts": report.counts(), "expected_loss": mean, "expected_loss_mitigated": mean_mit,
        "currency": register.currency, "as_of": latest, "digest": inputs_digest(register_text, report, store),
        "draws": draws, "seed": seed, "n_considered": len(report.runs_considered),
    }


# -- rendering ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("airisk.governance", "templates"), autoescape=jinja2.select_autoescape(
        enabled_extensions=("html", "jinja"), default_for_string=True), trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined)
    env.filters.update(pct=pct, share=share, money=money, md=md_escape, anchor=run_anchor)
    env.globals.update(status_class=lambda s: STATUS_CLASS.get(s, ""), lec_svg=lec_svg)
    return env


def render_html(pack: dict[str, Any]) -> str:
    return _env().get_template("pack.html.jinja").render(**pack, csp=CSP)


def render_markdown(pack: dict[str, Any]) -> str:
    md_env = _env().overlay(autoescape=False)
    return md_env.get_template("pack.md.jinja").render(**pack)


def pack_json(pack: dict[str, Any]) -> str:
    data = {"system": pack["register"].system.model_dump(mode="json"), "digest": pack["digest"], "as_of": pack["as_of"],
            "counts": pack["counts"], "requirements": [r.model_dump(mode="json") for r in pack["report"].requirements],
            "risks": [r.model_dump(mode="json") for r in pack["risks"]],
            "coverage": [{"id": f.id, "items": len(f.items), "gaps": [g.id for g in f.gaps]} for f in pack["coverage"]],
            "issues": pack["issues"], "runs": pack["runs"], "seed": pack["seed"], "draws": pack["draws"]}
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def write_pack(pack: dict[str, Any], out: str | Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "pack.html", "markdown": out / "pack.md", "json": out / "pack.json"}
    paths["html"].write_text(render_html(pack), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(pack), encoding="utf-8")
    paths["json"].write_text(pack_json(pack), encoding="utf-8")
    return paths
