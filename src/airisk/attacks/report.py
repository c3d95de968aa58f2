"""The red-team section of the HTML/JSON report (called by ``airisk.reports`` for runs of kind 'redteam').

``build_section(store, run_id)`` returns ``.title``, ``.html`` (a safe fragment: Jinja autoescape,
so model output and prompts are escaped) and ``.data`` (the summary for the JSON report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jinja2
from markupsafe import Markup

from airisk.attacks.results import summarize

MAX_TRANSCRIPTS = 12
MAX_BEST_ROWS = 50
MAX_CHARS = 2000


@dataclass
class Section:
    title: str
    html: Markup
    data: dict[str, Any] = field(default_factory=dict)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("airisk.attacks", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["pct"] = lambda x: "no data" if x is None else f"{100 * x:.1f}%"
    env.globals["spct"] = lambda x: "no data" if x is None else f"{100 * x:+.1f} pts"
    env.globals["num"] = lambda x: "" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")
    return env


def _cut(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + f" … [{len(text) - MAX_CHARS} more characters]"


def transcript_turns(rec: Any) -> list[dict[str, str]]:
    """Turns to show for one attempt: the full multi-turn transcript when stored, else messages + reply."""
    raw = (rec.completion.raw or {}) if rec.completion else {}
    turns: list[dict[str, str]] = []
    if raw.get("transcript"):
        for t in raw["transcript"]:
            note = ", ".join(x for x in (
                f"query {t.get('query')}", f"verdict {t['verdict']}" if t.get("verdict") else "",
                "rolled back" if t.get("rolled_back") else "") if x)
            turns.append({"role": "user", "content": _cut(t.get("user")), "note": note})
            if t.get("error"):
                turns.append({"role": "error", "content": _cut(t.get("error")), "note": ""})
            else:
                turns.append({"role": "assistant", "content": _cut(t.get("assistant")), "note": ""})
        return turns
    for m in rec.item.to_messages():
        turns.append({"role": m.role, "content": _cut(m.content), "note": ""})
    if rec.completion is not None:
        turns.append({"role": "assistant" if rec.completion.ok else "error",
                      "content": _cut(rec.completion.text if rec.completion.ok else rec.completion.error), "note": ""})
    return turns


def build_section(store: Any, run_id: str) -> Section:
    s = summarize(store, run_id)
    recs = {r.item.id: r for r in store.records(s.run_id)}
    transcripts = []
    for seed, b in s.best.items():
        if b["item"] and len(transcripts) < MAX_TRANSCRIPTS:
            rec = recs[b["item"]]
            lineage = rec.item.metadata.get("lineage") or {}
            chain = " + ".join(
                f"{st['name']}" + (f"({', '.join(f'{k}={v}' for k, v in st.get('params', {}).items() if k not in ('replaced',))})" if st.get("params") else "")
                for st in lineage.get("chain", []))
            transcripts.append({"item_id": rec.item.id, "attack": b["attack"], "hazard": b["hazard"], "queries": b["queries"],
                                "chain": chain or "(none)", "turns": transcript_turns(rec),
                                "seed_prompt": _cut(rec.item.metadata.get("seed_prompt"))})
    errors = [{"seed": p.seed_id, "attack": p.attack, "reason": "; ".join(p.errors)[:300]} for p in s.pairs if p.errors][:30]
    best_rows = list(s.best.items())
    html = _env().get_template("report_section.html.jinja").render(
        s=s, rates={(r.attack, r.hazard): r for r in s.rates}, best_rows=best_rows[:MAX_BEST_ROWS],
        best_more=max(0, len(best_rows) - MAX_BEST_ROWS), transcripts=transcripts, errors=errors,
    )
    data = s.model_dump(mode="json", exclude={"pairs"})
    data["errors"] = errors
    return Section(title="Red team: attack success rates", html=Markup(html), data=data)
