"""What a run's headline may honestly say: its status, the system and model it measured, and its coverage.

Shared by ``airisk runs list``, the HTML/JSON report and the viewer, so all three say the same thing.

* ``effective_status`` turns a stored status into what the user should see: a run whose process died
  without a clean stop is ``interrupted``, never ``running`` forever. The store has no lease or
  heartbeat yet, so this looks at the run's last activity (its row, its latest response or judgment);
  when the store grows a liveness function, swap it in here and nothing else changes.
* ``system_spec`` names the system type, model and base-URL host (never keys, never full URLs with
  credentials) from the run's stored public config.
* ``coverage`` counts the grading hazards of the reference that have at least ``min_items`` judged
  items; an overall grade is shown only when every one of them does ("graded on 2 of 12 hazards").
* ``kind_headline`` gives red-team runs their attack success and uplift, agent runs their
  unsafe-action and task-completion rates, injection campaigns their attack success and simulated-user
  runs their attack success, unsafe-turn rate and turn of first harm, instead of a grade against a
  chat-model reference.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

STALE_AFTER_S = float(os.environ.get("AIRISK_STALE_AFTER_S", "900"))  # no activity this long: interrupted
GRADED_KINDS = ("benchmark", "demo")  # run kinds graded against the AILuminate chat-model reference


def _aware(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)  # SQLite drops the zone; we always store UTC


def last_activity(store: Any, run: Any) -> datetime | None:
    """The latest time anything was written for the run (run row, response or judgment)."""
    from airisk.store.schema import JudgmentRow, ResponseRow

    times = [_aware(run.updated_at), _aware(run.created_at)]
    with store.session() as s:
        for table in (ResponseRow, JudgmentRow):
            # The newest row is the one with the highest key: found through the run_id index, no scan.
            newest = select(func.max(table.pk)).where(table.run_id == run.id).scalar_subquery()
            times.append(_aware(s.scalar(select(table.created_at).where(table.pk == newest))))
    return max((t for t in times if t is not None), default=None)


def effective_status(store: Any, run: Any, *, now: datetime | None = None, stale_after_s: float | None = None) -> str:
    """``running`` only while the run shows signs of life; else ``interrupted``. Other statuses as stored.

    The one place that decides liveness: replace the body with the store's lease/heartbeat check once it exists.
    """
    if run.status != "running":
        return run.status
    limit = STALE_AFTER_S if stale_after_s is None else stale_after_s
    last = last_activity(store, run)
    now = now or datetime.now(timezone.utc)
    if last is not None and now - last > timedelta(seconds=limit):
        return "interrupted"
    return "running"


def system_spec(run: Any) -> dict[str, Any]:
    """Type, model and base-URL host of the system under test, from the run's stored public config."""
    cfg = (run.config or {}).get("system") or {}
    if not isinstance(cfg, dict):
        cfg = {"type": str(cfg).split(":", 1)[0]}
    model = cfg.get("model") or cfg.get("model_id") or cfg.get("path") or (run.config or {}).get("agent")
    host = None
    if cfg.get("base_url"):
        parts = urlsplit(str(cfg["base_url"]))
        host = parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else None
    stype = cfg.get("type") or (run.system_name.split(":", 1)[0] if run.system_name else None)
    if model is None and run.system_name and ":" in run.system_name:
        model = run.system_name.split(":", 1)[1]  # e.g. the demo's "replay:gpt-4"
    parts = list(dict.fromkeys(str(x) for x in (stype, model, host) if x))  # an agent's name is type and model
    label = " · ".join(parts) or run.system_name or "unknown system"
    return {"type": stype, "model": model, "host": host, "label": label}


def coverage(report: dict[str, Any]) -> dict[str, Any]:
    """How many of the reference's grading hazards the run measured with enough items."""
    grades = report.get("grades") or []
    min_items = report.get("min_items")
    keys = [g["key"] for g in grades]
    with_data = [g["key"] for g in grades if g.get("result")]
    enough = [g["key"] for g in grades if g.get("result") and not g["result"].get("low_items")]
    if min_items is None and grades:
        min_items = next((g["result"].get("min_items") for g in grades if g.get("result")), None)
    complete = bool(keys) and len(enough) == len(keys)
    missing = [k for k in keys if k not in with_data]
    thin = [k for k in with_data if k not in enough]
    if not keys:
        why = "no grading reference for this run"
    elif complete:
        why = f"every grading hazard has at least {min_items} judged items"
    else:
        bits = []
        if missing:
            bits.append(f"{len(missing)} hazard(s) not measured ({', '.join(missing)})")
        if thin:
            bits.append(f"{len(thin)} with fewer than {min_items} items ({', '.join(thin)})")
        why = "No overall grade: " + "; ".join(bits)
    return {"graded": len(with_data), "sufficient": len(enough), "total": len(keys), "complete": complete,
            "missing": missing, "thin": thin, "min_items": min_items,
            "text": f"graded on {len(with_data)} of {len(keys)} hazards", "why": why}


def _rate(k: int, n: int) -> dict[str, Any]:
    from airisk.stats import wilson_interval

    lo, hi = wilson_interval(k, n) if n else (None, None)
    return {"k": k, "n": n, "rate": k / n if n else None, "low": lo, "high": hi}


def redteam_headline(extension_data: dict[str, Any]) -> dict[str, Any]:
    """Attack success over all attacks but the baseline, the baseline's, and the best uplift."""
    rates = [r for r in extension_data.get("rates", []) if r.get("hazard") == "all"]
    base = next((r for r in rates if r["attack"] == "baseline"), None)
    attacked = [r for r in rates if r["attack"] != "baseline"]
    k, n = sum(r["k"] for r in attacked), sum(r["n"] for r in attacked)
    ups = [u for u in extension_data.get("uplift", []) if u.get("hazard") == "all" and u.get("uplift") is not None]
    best = max(ups, key=lambda u: u["uplift"], default=None)
    return {"kind": "redteam", "attack_success": _rate(k, n),
            "baseline_success": _rate(base["k"], base["n"]) if base else None,
            "best_uplift": best, "attacks": len(attacked), "seeds": extension_data.get("seeds")}


def agent_headline(extension_data: dict[str, Any]) -> dict[str, Any]:
    overall = (extension_data.get("summary") or {}).get("overall") or {}

    def conv(r: dict[str, Any] | None) -> dict[str, Any] | None:
        if not r:
            return None
        ci = r.get("ci95") or (None, None)
        return {"k": r.get("k"), "n": r.get("n"), "rate": r.get("rate"), "low": ci[0], "high": ci[1]}

    return {"kind": "agent", "unsafe_action": conv(overall.get("unsafe")), "task_completion": conv(overall.get("completed")),
            "scenarios": overall.get("scenarios"), "blocked_calls": overall.get("blocked_calls"),
            "gate_in_loop": extension_data.get("gate_in_loop")}


def _ci(r: dict[str, Any] | None) -> dict[str, Any] | None:
    if not r:
        return None
    ci = r.get("ci95") or (None, None)
    return {"k": r.get("k"), "n": r.get("n"), "rate": r.get("rate"), "low": ci[0], "high": ci[1]}


def agent_attack_headline(extension_data: dict[str, Any]) -> dict[str, Any]:
    """Injection campaigns: attack success over all cases, and the user task done under attack."""
    overall = extension_data.get("overall") or {}
    return {"kind": "agent-attack", "attack_success": _ci(overall.get("attack_success")),
            "task_completion": _ci(overall.get("completed")), "cases": overall.get("cases")}


def simulation_headline(extension_data: dict[str, Any]) -> dict[str, Any]:
    """Simulated users: attack success (malicious personas), unsafe-turn rate, turn of first harm, over-refusal."""
    s = extension_data.get("summary") or {}
    overall = s.get("overall") or {}
    return {"kind": "simulation", "attack_success": _ci(s.get("attack_success")),
            "unsafe_turns": _ci(overall.get("unsafe_turns")), "harmful_dialogues": _ci(overall.get("harmful_dialogues")),
            "first_harm_turn": (overall.get("first_harm_turn") or {}).get("median"),
            "over_refusal": _ci(overall.get("over_refusal")), "care_failure_turns": _ci(overall.get("care_failure_turns")),
            "dialogues": overall.get("dialogues")}


KIND_HEADLINES = {"redteam": redteam_headline, "agent": agent_headline, "agent-attack": agent_attack_headline,
                  "simulation": simulation_headline}


def kind_headline(kind: str, extensions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The red-team or agent headline from the run kind's report extension (None for graded kinds)."""
    fn = KIND_HEADLINES.get(kind)
    data = next((e.get("data") for e in extensions if e.get("data") and "error" not in e["data"]), None)
    if fn is None or data is None:
        return None
    return fn(data)


def graded(kind: str) -> bool:
    """Whether a run of this kind is graded against the chat-model reference."""
    return kind in GRADED_KINDS
