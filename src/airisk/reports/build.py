"""Assemble everything a report shows into one JSON-able dict (the JSON report *is* this dict).

One job: gather scores, grades, zones, examples, judge card and run metadata for a run; the HTML and
Markdown renderers only format it. Model output and dataset text stay raw here: each renderer
escapes them for its own format.
"""

from __future__ import annotations

import importlib
from datetime import datetime, timezone
from typing import Any

from airisk.scoring import grading
from airisk.scoring.hazards import grading_key, hazard_info
from airisk.scoring.rates import RunScores, score_records
from airisk.scoring.zones import Policy, default_policy, evaluate
from airisk.store.store import Record, Store

EXAMPLE_CHARS = 1500  # responses longer than this are cut in reports (the full text stays in the store)
EXTENSIONS = {"redteam": "airisk.attacks.report", "agent": "airisk.agents.report", "agent-attack": "airisk.agents.attack_report"}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("airisk")
    except Exception:  # noqa: BLE001
        return "unknown"


def _cut(text: str | None, n: int = EXAMPLE_CHARS) -> str:
    text = text or ""
    return text if len(text) <= n else text[:n] + f" [... {len(text) - n} more characters]"


def worst_examples(records: list[Record], judge_id: str | None, *, per_hazard: int = 2, limit: int = 40) -> list[dict[str, Any]]:
    """Violating responses, most confident first, at most ``per_hazard`` per hazard."""
    if not judge_id:
        return []
    cands = []
    for r in records:
        j = r.judgments.get(judge_id)
        if j is None or j.label != "violating" or r.completion is None:
            continue
        cands.append((-(j.probability if j.probability is not None else 1.0), r.item.id, r, j))
    cands.sort(key=lambda t: (t[0], t[1]))
    seen: dict[str, int] = {}
    out = []
    for _p, _id, r, j in cands:
        h = r.item.hazard or "(none)"
        if seen.get(h, 0) >= per_hazard:
            continue
        seen[h] = seen.get(h, 0) + 1
        out.append({
            "item_id": r.item.id, "hazard": r.item.hazard, "persona": r.item.persona,
            "attack": r.item.metadata.get("method"), "prompt": _cut(r.item.prompt, 800),
            "response": _cut(r.completion.text), "probability": j.probability, "reason": j.reason,
            "categories": j.categories,
        })
        if len(out) >= limit:
            break
    return out


def _zone_dict(z: dict[str, Any]) -> dict[str, Any]:
    return {
        "zone": z["zone"], "policy": z["policy"],
        "hazards": {r.key: {"zone": r.zone, "rule": r.rule, "value": r.value, "threshold": r.threshold} for r in z["hazards"]},
        "overall": None if z["overall"] is None else {"zone": z["overall"].zone, "rule": z["overall"].rule},
    }


def _meta(scores: RunScores) -> dict[str, Any]:
    run = scores.run
    dur = None
    if run.finished_at and run.created_at:
        dur = (run.finished_at - run.created_at).total_seconds()
    return {
        "run_id": run.id, "kind": run.kind, "status": run.status, "label": run.label,
        "system": run.system_name, "system_fingerprint": run.system_fingerprint,
        "created_at": run.created_at.isoformat(), "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_s": dur, "datasets": run.datasets,
        "judges": [{"id": j.get("id"), "fingerprint": j.get("fingerprint"), "version": j.get("version")} for j in run.judges],
        "judge_used": scores.judge_id, "judge_fingerprint": scores.judge_fingerprint,
        "refusal_judge": scores.refusal_judge_id, "stats": {k: v for k, v in (run.stats or {}).items() if k != "last_execute"},
        "airisk_version": _version(), "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def extension_sections(store: Store, run_id: str, kind: str) -> list[dict[str, Any]]:
    """Sections contributed by the red-teaming / agents packages for their run kinds, if installed."""
    mod_name = EXTENSIONS.get(kind)
    if not mod_name:
        return []
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name in (mod_name, mod_name.rsplit(".", 1)[0]):
            return []
        raise
    try:
        sec = mod.build_section(store, run_id)
    except Exception as e:  # noqa: BLE001 - a broken extension must not hide the rest of the report
        from markupsafe import escape

        msg = f"{type(e).__name__}: {e}"
        return [{"title": f"{mod_name} section unavailable", "html": f"<p class='warn'>{escape(msg)}</p>",
                 "data": {"error": msg}, "module": mod_name}]
    if sec is None:
        return []
    return [{"title": str(sec.title), "html": str(sec.html), "data": dict(sec.data or {}), "module": mod_name}]


def build_report(
    store: Store, run_id: str, *, judge: str | None = None, policy: Policy | None = None,
    reference: grading.Reference | None = None, min_items: int = grading.DEFAULT_MIN_ITEMS,
    records: list[Record] | None = None,
) -> dict[str, Any]:
    run = store.get_run(run_id)
    records = records if records is not None else store.records(run.id)
    scores = score_records(run, records, judge=judge, reference=reference, min_items=min_items)
    policy = policy or default_policy()
    zones = evaluate(scores, policy)
    zd = _zone_dict(zones)
    ref_safe = scores.reference["safe_rates"] if scores.reference else {}
    grades = {g.key: g for g in scores.grades}
    hazards = []
    for h in scores.by_hazard:
        key = grading_key(h.key)
        g = grades.get(key)
        info = hazard_info(h.key)
        hazards.append({
            **h.model_dump(), "judged": h.judged, "errors": h.errors,
            "grading_key": key, "reference_unsafe_rate": (1 - ref_safe[key]) if key in ref_safe else None,
            "grade": g.result if g else None, "zone": zd["hazards"].get(h.key), "llama_guard": info.get("llama_guard", []),
        })
    return {
        "schema": "airisk.report/1",
        "partial": scores.partial, "partial_reasons": scores.partial_reasons,
        "meta": _meta(scores),
        "headline": {
            "grade": scores.overall_grade.result if scores.overall_grade else None,
            "zone": zd["zone"], "overall": scores.overall.model_dump() | {"judged": scores.overall.judged, "errors": scores.overall.errors},
            "overall_bootstrap": scores.overall_bootstrap,
            "errors_counted_unsafe": scores.overall_grade.errors_counted_unsafe if scores.overall_grade else 0,
        },
        "hazards": hazards,
        "grades": [g.model_dump() for g in scores.grades],
        "personas": [p.model_dump() for p in scores.by_persona],
        "locales": [p.model_dump() for p in scores.by_locale],
        "attacks": [p.model_dump() for p in scores.by_attack],
        "over_refusal": scores.over_refusal.model_dump() if scores.over_refusal else None,
        "over_refusal_by_type": [p.model_dump() for p in scores.over_refusal_by_type],
        "zones": zd,
        "policy": policy.model_dump(),
        "reference": scores.reference,
        "judge_card": scores.card,
        "examples": worst_examples(records, scores.judge_id),
        "extensions": extension_sections(store, run.id, run.kind),
        "methods": {
            "interval": "Wilson score interval (95%)",
            "overall_interval": "percentile bootstrap over items, 2000 resamples, fixed seed",
            "corrected_rate": "Rogan-Gladen point; interval from the true rate's posterior with sensitivity/specificity drawn from Beta posteriors of the judge card's counts",
            "grading": "ModelBench score_to_ordinal_grade (mlcommons/modelbench@12001ad), errors counted unsafe",
            "grade_stability": grading.STABILITY_METHOD,
        },
    }
