"""``airisk demo``: evaluate recorded responses of real models end to end, offline.

One job: the README's first command. It loads real, recorded responses through the dataset catalog -
JailbreakBench attack artifacts (GPT-3.5, GPT-4, Llama-2-7B, Vicuna-13B under 5 attack methods) for
harm, and XSTest completions of 4 models for over-refusal - stores one run per model and source
(system ``replay:<model>``, kind ``demo``), judges them with the offline judge (its refusal class gives
over-refusal; ``with_refusal_judge`` also runs the dedicated ``refusal`` judge), grades and zones them, writes one HTML/JSON report per run plus an index page, and
prints a summary table.

Idempotent: run ids are deterministic (``demo-jbb-<model>``, ``demo-xstest-<model>``), items and
responses are insert-or-ignore, and only unjudged responses are judged (the offline judge also caches
verdicts in the store), so a second run reuses everything.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from airisk.errors import AiriskError
from airisk.store.store import RunNotFound, Store
from airisk.types import Completion, Item, stable_hash

SOURCES = {
    "jbb": {"labels": "jbb-artifacts", "folder": "jailbreakbench", "file": "artifacts_jailbreaks.jsonl",
            "title": "JailbreakBench attack artifacts (harm under jailbreak attacks)"},
    "xstest": {"labels": "xstest-completions", "folder": "xstest", "file": "xstest_prompts.csv",
               "title": "XSTest completions (over-refusal and contrast harm prompts)"},
}
JUDGE_BATCH = 64


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", s.lower()).strip("-")


def _items_and_responses(source: str, examples: list[Any]) -> tuple[list[Item], list[tuple[str, Completion]]]:
    items, responses = [], []
    for ex in examples:
        m = ex.metadata or {}
        expected = "comply" if m.get("prompt_label") == "safe" else "refuse"
        meta = {k: v for k, v in m.items() if k in ("method", "attack_type", "behavior", "type", "focus", "prompt_label")}
        meta["recorded_label"] = ex.label  # the source's own label, kept to compare with our judge
        meta["recorded_refusal"] = ex.refusal
        items.append(Item(id=ex.id, prompt=ex.prompt, hazard=ex.hazard, locale=ex.locale or "en_US",
                          dataset=SOURCES[source]["labels"], expected=expected,
                          source_category=m.get("source_category") or m.get("type"), metadata=meta))
        responses.append((ex.id, Completion(text=ex.response, latency_s=None, cached=True)))
    return items, responses


def _dataset_meta(source: str, n: int) -> dict[str, Any]:
    from airisk.datasets.catalog import resolve_file, sha256_file

    spec = SOURCES[source]
    path = resolve_file(spec["folder"], spec["file"])
    return {"name": spec["labels"], "version": "sha256:" + sha256_file(path)[:12], "sha256": sha256_file(path),
            "path": str(path), "items": n, "title": spec["title"]}


def _make_judge(name: str, store: Store):
    from airisk import plugins

    cls = plugins.load("judges", name)
    try:
        return cls(store=store)
    except TypeError:
        return cls()


async def _judge(store: Store, run_id: str, judge, progress: bool) -> int:
    try:
        from airisk.engine.runner import judge_run
    except ModuleNotFoundError as e:  # pragma: no cover - the engine ships with airisk
        raise AiriskError(f"the run engine is not installed ({e})") from e
    return await judge_run(store, run_id, judge, batch_size=JUDGE_BATCH, progress=progress)


def ensure_run(store: Store, run_id: str, *, model: str, source: str, items: list[Item],
               responses: list[tuple[str, Completion]], datasets: list[dict[str, Any]]) -> bool:
    """Create the run if needed and store items/responses (insert-or-ignore). True if anything was new."""
    try:
        store.get_run(run_id)
        existed = True
    except RunNotFound:
        store.create_run(run_id, kind="demo", system_name=f"replay:{model}",
                         system_fingerprint=stable_hash({"replay": model, "source": source}),
                         config={"system": {"type": "replay", "model": model, "source": SOURCES[source]["labels"]}},
                         datasets=datasets, label=f"{model} · {SOURCES[source]['title']}")
        existed = False
    new = store.add_items(run_id, items)
    new += store.save_responses(run_id, responses)
    return new > 0 or not existed


def run_demo(
    *, out: str | Path = "airisk-demo", db: str | None = None, limit: int | None = None, progress: bool = True,
    console=None, judge_factory: Callable[[str, Store], Any] | None = None, sources: tuple[str, ...] = ("jbb", "xstest"),
    with_refusal_judge: bool = False,
) -> dict[str, Any]:
    """Run the whole demo; returns the summary rows, report paths and timings."""
    from rich.console import Console
    from rich.table import Table

    from airisk.judges.labels import load_labelled
    from airisk.reports.html import render_index
    from airisk.reports.write import write_report

    console = console or Console()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    store = Store(db)
    make = judge_factory or _make_judge
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    harm_judge = make("offline", store)
    refusal_judge = None
    if with_refusal_judge:
        # The offline judge already gives a refusal class (same refusal head); the dedicated judge only
        # records it under its own id and card, at the cost of encoding XSTest a second time.
        try:
            refusal_judge = make("refusal", store)
        except AiriskError:
            refusal_judge = None

    run_ids: list[tuple[str, str, str]] = []
    for source in sources:
        t = time.perf_counter()
        examples = load_labelled(SOURCES[source]["labels"])
        by_model: dict[str, list[Any]] = defaultdict(list)
        for ex in examples:
            by_model[ex.model or "unknown"].append(ex)
        for model in sorted(by_model):
            exs = by_model[model][:limit] if limit else by_model[model]
            items, responses = _items_and_responses(source, exs)
            run_id = f"demo-{source}-{_slug(model)}" + (f"-limit{limit}" if limit else "")
            ensure_run(store, run_id, model=model, source=source, items=items, responses=responses,
                       datasets=[_dataset_meta(source, len(items))])
            run_ids.append((run_id, model, source))
        timings[f"load+store {source}"] = time.perf_counter() - t

    t = time.perf_counter()
    judged = 0
    for run_id, model, source in run_ids:
        if progress:
            console.print(f"judging {run_id} ...", markup=False)
        judged += asyncio.run(_judge(store, run_id, harm_judge, progress))
        if source == "xstest" and refusal_judge is not None:
            judged += asyncio.run(_judge(store, run_id, refusal_judge, progress))
        store.update_run(run_id, status="completed")
    timings["judge"] = time.perf_counter() - t

    t = time.perf_counter()
    rows = []
    for run_id, model, source in run_ids:
        res = write_report(store, run_id, out / run_id, judge=harm_judge.id)
        rep = res["report"]
        o = rep["headline"]["overall"]
        g = rep["headline"]["grade"]
        recorded = [r for r in store.items(run_id) if r.expected != "comply" and r.metadata.get("recorded_label")]
        rec_rate = (sum(r.metadata["recorded_label"] == "violating" for r in recorded) / len(recorded)) if recorded else None
        rows.append({
            "run_id": run_id, "model": model, "dataset": SOURCES[source]["labels"], "label": f"{model} ({source})",
            "violating": o["violating"], "judged": o["judged"], "rate": o["rate"], "low": o["low"], "high": o["high"],
            "recorded_rate": rec_rate, "over_refusal": (rep["over_refusal"] or {}).get("rate"),
            "grade": g["label"] if g else None, "grade_p_differs": g["p_grade_differs"] if g else None,
            "zone": rep["zones"]["zone"], "href": f"{run_id}/report.html", "html": str(res["html"]),
            "risk_cards": len(res["risk_cards"]),
        })
    notes = [
        "Recorded responses of real models, judged offline by airisk's default judge. JailbreakBench prompts are "
        "adversarial (jailbreak attacks), so their rates and AILuminate-style grades are not comparable with AILuminate's "
        "own prompts; grades use the AILuminate v1.0 en_us practice reference.",
        "XSTest rows: harm is measured on its contrast (unsafe) prompts; over-refusal on its safe prompts.",
        "The offline judge was trained on the train split (80% of prompts) of these same two labelled sets, so its "
        "agreement with the sources' own labels here is optimistic; its held-out error rates are in its judge card.",
    ]
    index = out / "index.html"
    index.write_text(render_index(rows, title="airisk demo: recorded responses of real models", notes=notes), encoding="utf-8")
    timings["reports"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    table = Table(title="airisk demo · offline judge on recorded responses of real models")
    for col in ("model", "set", "violating", "rate [95% CI]", "source label", "over-refusal", "grade", "zone"):
        table.add_column(col, justify="right" if col not in ("model", "set", "grade", "zone") else "left", no_wrap=True)
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    for r in rows:
        table.add_row(r["model"], r["dataset"].split("-")[0], f"{r['violating']}/{r['judged']}",
                      f"{pct(r['rate'])} [{pct(r['low'])}, {pct(r['high'])}]", pct(r["recorded_rate"]),
                      pct(r["over_refusal"]), r["grade"] or "no data", r["zone"])
    if not console.is_terminal:
        console.width = max(console.width, 120)  # keep the table on one line per model in logs and CI
    console.print(table)
    console.print(f"judged {judged} new response(s); timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()), markup=False)
    console.print(f"index: {index}", markup=False)
    for r in rows:
        console.print(f"report: {r['html']}", markup=False)
    return {"rows": rows, "index": index, "timings": timings, "judged": judged}
