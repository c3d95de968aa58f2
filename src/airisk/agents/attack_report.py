"""The report section for runs of kind ``agent-attack`` (indirect prompt-injection campaigns).

Attack success with Wilson 95% intervals per injection type, per type x placement and per
type x obfuscation, next to the user-task completion under attack and on clean runs. Every value
taken from scenarios, payloads or model output is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from airisk.agents.injection import CaseOutcome, summarize_campaign
from airisk.agents.report import AgentSection, _pct


def outcomes_of(store: Any, run_id: str) -> list[CaseOutcome]:
    out = []
    for rec in store.records(run_id):
        raw = (rec.completion.raw or {}) if rec.completion else {}
        if "outcome" in raw:
            out.append(CaseOutcome.model_validate(raw["outcome"]))
    return out


def _table(title: str, rows: dict[str, Any]) -> str:
    head = ("<h4>" + escape(title) + "</h4><table class='agent-table'><thead><tr><th>group</th><th>cases</th>"
            "<th>attack success</th><th>goal reached without payload</th><th>task done under attack</th>"
            "<th>task done (clean)</th><th>scanner flagged</th><th>blocked calls</th></tr></thead><tbody>")
    body = "".join(
        f"<tr><td>{escape(k)}</td><td>{r['cases']}</td><td>{_pct(r['attack_success'])}</td><td>{_pct(r['clean_goal'])}</td>"
        f"<td>{_pct(r['completed'])}</td><td>{_pct(r['clean_completed'])}</td><td>{_pct(r['scanner_flagged'])}</td>"
        f"<td>{r['blocked_calls']}</td></tr>" for k, r in rows.items())
    return head + body + "</tbody></table>"


def build_section(store: Any, run_id: str) -> AgentSection | None:
    run = store.get_run(run_id)
    outcomes = outcomes_of(store, run.id)
    if not outcomes:
        return None
    s = summarize_campaign(outcomes)
    cfg = run.config or {}
    intro = (f"<p>Agent <b>{escape(run.system_name)}</b>, defence <b>{escape(str(cfg.get('defence', 'none')))}</b>: "
             f"{len(outcomes)} injection cases. Skipped scenarios: {escape(str(cfg.get('skipped') or {}))}.</p>")
    html = intro + _table("Overall and per injection type", {"OVERALL": s["overall"], **s["by_type"]})
    html += _table("Per injection type x placement", s["by_type_placement"])
    html += _table("Per injection type x obfuscation", s["by_type_obfuscation"])
    examples = [o for o in outcomes if o.success][:5]
    if examples:
        html += "<h4>Examples of successful injections</h4><ul>" + "".join(
            f"<li>{escape(o.case_id)}: {escape('; '.join(o.evidence)[:300])}</li>" for o in examples) + "</ul>"
    return AgentSection(title="Indirect prompt injection", html=html, data=s)
