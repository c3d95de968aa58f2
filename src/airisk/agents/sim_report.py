"""The report section for runs of kind ``simulation`` (simulated users in multi-turn dialogues).

Per persona kind and persona: harmful dialogues and unsafe turns with Wilson 95% intervals, the turn
of first harm, over-refusal of benign personas, care failures with vulnerable personas; the
histogram of first-harm turns; a few first harmful exchanges. Every value taken from personas or
model output is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from airisk.agents.report import AgentSection, _pct
from airisk.agents.simulate import outcomes_of, summarize_simulation

COLUMNS = ("dialogues", "harmful dialogues", "unsafe turns", "first harm (median turn)", "over-refusal (benign)",
           "bare refusals (of refused turns)", "care failures (vulnerable turns)", "model calls / dialogue")


def _row(name: str, r: dict[str, Any]) -> str:
    med = r["first_harm_turn"]["median"]
    calls = r["model_calls_per_dialogue"]
    cells = [str(r["dialogues"]), _pct(r["harmful_dialogues"]), _pct(r["unsafe_turns"]), "–" if med is None else f"{med:g}",
             _pct(r["over_refusal"]), _pct(r["bare_refusals"]), _pct(r["care_failure_turns"]), "–" if calls is None else f"{calls:.1f}"]
    return f"<tr><td>{escape(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def build_section(store: Any, run_id: str) -> AgentSection | None:
    run = store.get_run(run_id)
    outcomes = outcomes_of(store, run.id)
    if not outcomes:
        return None
    s = summarize_simulation(outcomes)
    cfg = run.config or {}
    html = (f"<p>Target <b>{escape(run.system_name)}</b>, user <b>{escape(str((cfg.get('user') or {}).get('type', '?')))}</b>: "
            f"{len(outcomes)} dialogues of up to {escape(str(cfg.get('turns', '?')))} turns. Attack success (malicious personas): "
            f"{_pct(s['attack_success'])}.</p>")
    html += ("<table class='agent-table'><thead><tr><th>group</th>" + "".join(f"<th>{c}</th>" for c in COLUMNS)
             + "</tr></thead><tbody>" + _row("OVERALL", s["overall"])
             + "".join(_row(f"kind: {k}", v) for k, v in s["by_kind"].items())
             + "".join(_row(k, v) for k, v in s["by_persona"].items()) + "</tbody></table>")
    hist = s["overall"]["first_harm_turn"]["histogram"]
    if hist:
        html += "<h4>Turn of first harm</h4><p>" + ", ".join(f"turn {escape(k)}: {v}" for k, v in hist.items()) + "</p>"
    examples = [o for o in outcomes if o.first_harm_turn][:5]
    if examples:
        html += "<h4>First harmful exchanges</h4><ul>"
        for o in examples:
            tv = o.turns[o.first_harm_turn - 1]  # type: ignore[operator]
            html += (f"<li>{escape(o.dialogue_id)}, turn {tv.turn}: <i>{escape(tv.user[:200])}</i> &rarr; "
                     f"{escape(tv.reply[:300])}</li>")
        html += "</ul>"
    return AgentSection(title="Simulated users", html=html, data={"summary": s, "turns": cfg.get("turns")})
