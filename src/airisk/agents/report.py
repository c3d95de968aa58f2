"""The agent-run section of the HTML report: rates per risk category and failure mode, gate effect, examples.

``build_section(store, run_id)`` is called by the report builder for runs of kind ``agent``; it
returns an :class:`AgentSection` with ``title``, ``html`` (a fragment in which every value taken
from scenarios or model output is escaped) and ``data`` (the same figures as a dict, for JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from airisk.agents.evaluate import ScenarioOutcome, summarize


@dataclass
class AgentSection:
    title: str
    html: str
    data: dict[str, Any] = field(default_factory=dict)


def outcomes_of(store: Any, run_id: str) -> list[ScenarioOutcome]:
    """The per-scenario outcomes stored in the run's responses (``Completion.raw['outcome']``)."""
    out = []
    for rec in store.records(run_id):
        raw = (rec.completion.raw or {}) if rec.completion else {}
        if "outcome" in raw:
            out.append(ScenarioOutcome.model_validate(raw["outcome"]))
    return out


def _pct(r: dict[str, Any] | None) -> str:
    if not r or not r.get("n"):
        return "–"
    ci = r.get("ci95")
    ci_s = f" [{ci[0] * 100:.0f}–{ci[1] * 100:.0f}]" if ci else ""
    return f"{r['rate'] * 100:.1f}%{ci_s} <small>({r['k']}/{r['n']})</small>"


def _table(title: str, rows: dict[str, dict[str, Any]], label: str) -> str:
    head = (f"<h4>{escape(title)}</h4><table class='agent-table'><thead><tr><th>{escape(label)}</th><th>scenarios</th>"
            "<th>unsafe (any detector)</th><th>outcome predicate</th><th>gate rules</th><th>judge</th>"
            "<th>task completed</th><th>blocked calls</th></tr></thead><tbody>")
    body = "".join(
        f"<tr><td>{escape(str(k))}</td><td>{r['scenarios']}</td><td>{_pct(r.get('unsafe'))}</td>"
        f"<td>{_pct(r.get('predicate'))}</td><td>{_pct(r.get('gate'))}</td><td>{_pct(r.get('judge'))}</td>"
        f"<td>{_pct(r.get('completed'))}</td><td>{r.get('blocked_calls', 0)}</td></tr>"
        for k, r in rows.items())
    return head + body + "</tbody></table>"


def build_section(store: Any, run_id: str, *, max_examples: int = 10) -> AgentSection:
    run = store.get_run(run_id)
    outcomes = outcomes_of(store, run.id)
    summary = summarize(outcomes)
    cfg = run.config or {}
    data: dict[str, Any] = {"run_id": run.id, "agent": run.system_name, "gate_in_loop": bool(cfg.get("gate_in_loop")),
                            "summary": summary}
    parts = [f"<p>Agent <code>{escape(run.system_name)}</code> on {len(outcomes)} scenarios"
             f"{' with the action gate in the loop' if cfg.get('gate_in_loop') else ''}. Rates with 95% Wilson "
             "intervals; a scenario counts as unsafe when any applicable detector fires.</p>"]
    parts.append(_table("Overall", {"all": summary["overall"]}, ""))
    if len(summary["by_source"]) > 1:
        parts.append(_table("By source", summary["by_source"], "source"))
    parts.append(_table("By risk category", summary["by_risk_category"], "risk category"))
    parts.append(_table("By failure mode", summary["by_failure_mode"], "failure mode"))
    other = cfg.get("compare_with")
    if other:
        try:
            base = summarize(outcomes_of(store, other))["overall"]
        except Exception:  # the paired run was deleted: show this run alone
            base = None
        if base is not None:
            now = summary["overall"]
            data["gate_effect"] = {"without_gate_run": other, "without": base, "with": now}
            parts.append(
                "<h4>Gate in the loop</h4><table class='agent-table'><thead><tr><th></th><th>without gate</th>"
                "<th>with gate</th></tr></thead><tbody>"
                f"<tr><td>unsafe outcome (predicate)</td><td>{_pct(base.get('predicate'))}</td><td>{_pct(now.get('predicate'))}</td></tr>"
                f"<tr><td>task completed</td><td>{_pct(base.get('completed'))}</td><td>{_pct(now.get('completed'))}</td></tr>"
                f"<tr><td>blocked calls</td><td>{base.get('blocked_calls', 0)}</td><td>{now.get('blocked_calls', 0)}</td></tr>"
                "</tbody></table>")
    unsafe = [o for o in outcomes if o.unsafe][:max_examples]
    if unsafe:
        items = "".join(
            f"<li><code>{escape(o.scenario_id)}</code> ({escape(o.risk_category)}): "
            + "; ".join(f"<b>{escape(k)}</b>: {escape(' | '.join(v)[:400])}" for k, v in o.evidence.items()) + "</li>"
            for o in unsafe)
        parts.append(f"<h4>Unsafe examples (first {len(unsafe)})</h4><ul>{items}</ul>")
    data["unsafe_examples"] = [{"scenario_id": o.scenario_id, "evidence": o.evidence} for o in unsafe]
    return AgentSection(title=f"Agent safety: {run.system_name}", html="\n".join(parts), data=data)
