"""Stable JSON documents printed by ``--json`` on the CLI's listing commands (schemas in docs/viewer.md).

Every document is an object with a ``schema`` key (``airisk.<name>/<version>``); a version changes only
when a key is removed or changes meaning, never when one is added.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str)


def runs_list(store: Any, limit: int = 50) -> dict[str, Any]:
    """``airisk runs list --json``: one ``airisk.run-summary/1`` object per run, newest first."""
    from airisk.viewer.data import run_summary

    return {"schema": "airisk.runs/1", "store": store.safe_url,
            "runs": [run_summary(store, r) for r in store.list_runs(limit)]}


def run_show(store: Any, run_id: str) -> dict[str, Any]:
    """``airisk runs show RUN --json``: the run summary and its per-hazard counts."""
    from airisk.viewer.data import run_summary

    run = store.get_run(run_id)
    return {"schema": "airisk.run/1", "run": run_summary(store, run), "datasets": run.datasets,
            "judges": run.judges, "hazards": store.hazard_summary(run.id),
            "errors_by_kind": ((run.stats or {}).get("last_execute") or {}).get("errors", {})}


def gate(result: Any) -> dict[str, Any]:
    """``airisk gate --json``: status, exit code, one entry per check, reasons."""
    return {"schema": "airisk.gate/1", **result.model_dump(mode="json")}


def datasets_list(count: bool = True) -> dict[str, Any]:
    """``airisk datasets list --json``: catalog entries, where each was found and (optionally) its item count."""
    from airisk.datasets import find_local, list_datasets, load_dataset
    from airisk.errors import AiriskError

    out = []
    for e in list_datasets():
        path = find_local(e.folder, e.primary.relpath)
        row: dict[str, Any] = {"name": e.name, "version": e.version, "license": e.license,
                               "path": str(path) if path else None, "items": None, "error": None}
        if path is not None and count:
            try:
                row["items"] = len(load_dataset(e.name, skip_bad=True))
            except AiriskError as err:
                row["error"] = str(err)
        out.append(row)
    return {"schema": "airisk.datasets/1", "datasets": out}


def hazards_list() -> dict[str, Any]:
    """``airisk hazards list --json``: code, name, group, definition and Llama Guard categories."""
    from airisk.taxonomy import HAZARDS, llama_guard_categories

    lg = llama_guard_categories()
    return {"schema": "airisk.hazards/1", "hazards": [
        {"code": h.code, "name": h.name, "group": h.group, "definition": h.definition,
         "llama_guard": [{"code": s, "name": lg.get(s)} for s in h.llama_guard]} for h in HAZARDS.values()]}


def judge_cards(cards: list[Any]) -> dict[str, Any]:
    """``airisk judge validate --json``: every card measured (the judge and any ``--compare`` judges)."""
    return {"schema": "airisk.judge-validation/1", "cards": [c.model_dump(mode="json") for c in cards]}
