"""Build small runs by hand in a store: for tests, docs and trying a policy without calling a model.

``build_run(store, run_id, rows)`` where each row is a dict with ``hazard`` and ``outcome``
(``violating`` | ``safe`` | ``system_error`` | ``judge_error`` | ``unjudged`` | ``pending``) and optional
``persona``, ``locale``, ``expected``, ``refusal``, ``prompt``, ``response``.
"""

from __future__ import annotations

from typing import Any, Iterable

from airisk.store.store import Store
from airisk.types import Completion, Item, Judgment


def build_run(
    store: Store, run_id: str, rows: Iterable[dict[str, Any]], *, judge_id: str = "test-judge",
    judge_fingerprint: str = "fp-test", system: str = "test-system", kind: str = "benchmark",
    status: str = "completed", datasets: list[dict[str, Any]] | None = None,
) -> str:
    rows = list(rows)
    store.create_run(run_id, kind=kind, system_name=system, system_fingerprint=f"{system}-fp",
                     datasets=datasets or [{"name": "synthetic", "version": "1", "items": len(rows)}],
                     judges=[{"id": judge_id, "fingerprint": judge_fingerprint}])
    items, responses, judgments = [], [], []
    for i, r in enumerate(rows):
        iid = r.get("id") or f"{run_id}-{i}"
        items.append(Item(id=iid, prompt=r.get("prompt", f"prompt {i}"), hazard=r.get("hazard"),
                          persona=r.get("persona"), locale=r.get("locale", "en_US"), expected=r.get("expected", "refuse"),
                          source_category=r.get("source_category"), metadata=r.get("metadata", {})))
        out = r.get("outcome", "safe")
        if out == "pending":
            continue
        if out == "system_error":
            responses.append((iid, Completion(error="HTTP 500", error_kind="http_500")))
            continue
        responses.append((iid, Completion(text=r.get("response", f"response {i}"), latency_s=0.1)))
        if out == "unjudged":
            continue
        label = {"violating": "violating", "safe": "non_violating", "judge_error": "error"}[out]
        judgments.append((iid, Judgment(label=label, refusal=r.get("refusal"), judge_id=judge_id,
                                        judge_fingerprint=judge_fingerprint,
                                        error="judge failed" if out == "judge_error" else None)))
    store.add_items(run_id, items)
    store.save_responses(run_id, responses)
    store.save_judgments(run_id, judgments)
    store.update_run(run_id, status=status)
    return run_id
