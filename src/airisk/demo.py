"""``airisk demo``: evaluate recorded responses of real models end to end, offline.

One job: the README's first command. It loads real, recorded responses through the dataset catalog -
JailbreakBench attack artifacts (GPT-3.5, GPT-4, Llama-2-7B, Vicuna-13B under 5 attack methods) for
harm, and XSTest completions of 4 models for over-refusal - stores one run per model and source
(system ``replay:<model>``, kind ``demo``), judges them with the offline judge (its refusal class gives
over-refusal; ``with_refusal_judge`` also runs the dedicated ``refusal`` judge), grades and zones them, writes one HTML/JSON report per run plus an index page, and
prints a summary table.

It is an ordinary use of the public API: each model's recorded answers are a small
:class:`RecordedSystem` (answers looked up by item id), run with ``airisk.evaluate`` (kind ``demo``)
and reported with ``airisk.report``, exactly as a live endpoint would be.

Idempotent: run ids are deterministic (``demo-jbb-<model>``, ``demo-xstest-<model>``); an existing run
is carried on with ``airisk.resume``, which judges only unjudged responses (the offline judge also
caches verdicts in the store), so a second run reuses everything.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import airisk
from airisk.errors import AiriskError
from airisk.store.store import RunNotFound, Store
from airisk.systems.base import System
from airisk.types import Completion, Item, Message

SOURCES = {
    "jbb": {"labels": "jbb-artifacts", "folder": "jailbreakbench", "file": "artifacts_jailbreaks.jsonl",
            "title": "JailbreakBench attack artifacts (harm under jailbreak attacks)"},
    "xstest": {"labels": "xstest-completions", "folder": "xstest", "file": "xstest_prompts.csv",
               "title": "XSTest completions (over-refusal and contrast harm prompts)"},
}
JUDGE_BATCH = 64


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", s.lower()).strip("-")


def _items_and_responses(source: str, examples: list[Any]) -> tuple[list[Item], dict[str, str]]:
    items, responses = [], {}
    for ex in examples:
        m = ex.metadata or {}
        expected = "comply" if m.get("prompt_label") == "safe" else "refuse"
        meta = {k: v for k, v in m.items() if k in ("method", "attack_type", "behavior", "type", "focus", "prompt_label")}
        meta["recorded_label"] = ex.label  # the source's own label, kept to compare with our judge
        meta["recorded_refusal"] = ex.refusal
        items.append(Item(id=ex.id, prompt=ex.prompt, hazard=ex.hazard, locale=ex.locale or "en_US",
                          dataset=SOURCES[source]["labels"], expected=expected,
                          source_category=m.get("source_category") or m.get("type"), metadata=meta))
        responses[ex.id] = ex.response
    return items, responses


def _dataset(source: str, items: list[Item]) -> Any:
    """The recorded set as a Dataset, so the run records the labelled file's name, hash and path."""
    from airisk.datasets.catalog import resolve_file, sha256_file
    from airisk.datasets.dataset import Dataset

    spec = SOURCES[source]
    path = resolve_file(spec["folder"], spec["file"])
    sha = sha256_file(path)
    return Dataset(name=spec["labels"], version="sha256:" + sha[:12], items=items, sha256=sha, path=str(path))


class RecordedSystem(System):
    """A model's recorded answers, looked up by item id: the demo's system under test."""

    cacheable = False  # the answers are already stored; caching them again would only cost space

    def __init__(self, model: str, source: str, answers: dict[str, str]):
        super().__init__(model=model, source=SOURCES[source]["labels"])
        self.name = f"replay:{model}"  # type: ignore[misc]  (per instance: the run shows which model)
        self.answers = answers

    async def generate(self, messages: list[Message], *, item: Item | None = None) -> Completion:
        assert item is not None  # the engine always passes the item
        return Completion(text=self.answers[item.id], latency_s=None, cached=True)


def _make_judge(spec: str, store: Store):
    """The judge a spec names, caching its verdicts in the demo's store when it takes one."""
    import inspect

    from airisk import plugins
    from airisk.judges.factory import make_judge, parse_spec

    takes_store = "store" in inspect.signature(plugins.load("judges", parse_spec(spec)[0])).parameters
    return make_judge(spec, **({"store": store} if takes_store else {}))


def ensure_run(store: Store, run_id: str, *, model: str, source: str, items: list[Item],
               answers: dict[str, str], judge: Any, progress: bool) -> int:
    """Run (or carry on) one model's demo run through the public API; returns verdicts added."""
    system = RecordedSystem(model, source, answers)
    try:
        store.get_run(run_id)
    except RunNotFound:
        res = airisk.evaluate(_dataset(source, items), system, judge, db=store, run_id=run_id, kind="demo",
                              label=f"{model} · {SOURCES[source]['title']}", progress=progress)
        return sum(c.judged + c.errors for c in res.total.judges.values())
    before = len(store.judgments(run_id, judge.id))
    airisk.resume(run_id, system=system, judge=judge, db=store, progress=progress)
    return len(store.judgments(run_id, judge.id)) - before


def run_demo(
    *, out: str | Path = "airisk-demo", db: str | None = None, limit: int | None = None, progress: bool = True,
    console=None, judge_factory: Callable[[str, Store], Any] | None = None, sources: tuple[str, ...] = ("jbb", "xstest"),
    with_refusal_judge: bool = False, judge: str = "offline",
) -> dict[str, Any]:
    """Run the whole demo; returns the summary rows, report paths and timings.

    ``judge`` is the harm judge's spec (default ``offline``; ``offline-fast`` reads about twice as many
    responses per second). Running again with another judge judges the stored responses again under
    that judge's id; nothing is generated twice."""
    from rich.console import Console
    from rich.table import Table

    from airisk.judges.labels import load_labelled
    from airisk.reports.html import render_index

    console = console or Console()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    store = Store(db)
    make = judge_factory or _make_judge
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    harm_judge = make(judge, store)
    refusal_judge = None
    if with_refusal_judge:
        # The offline judge already gives a refusal class (same refusal head); the dedicated judge only
        # records it under its own id and card, at the cost of encoding XSTest a second time.
        try:
            refusal_judge = make("refusal", store)
        except AiriskError:
            refusal_judge = None

    runs: list[tuple[str, str, str, list[Item], dict[str, str]]] = []
    for source in sources:
        t = time.perf_counter()
        examples = load_labelled(SOURCES[source]["labels"])
        by_model: dict[str, list[Any]] = defaultdict(list)
        for ex in examples:
            by_model[ex.model or "unknown"].append(ex)
        for model in sorted(by_model):
            exs = by_model[model][:limit] if limit else by_model[model]
            items, answers = _items_and_responses(source, exs)
            runs.append((f"demo-{source}-{_slug(model)}" + (f"-limit{limit}" if limit else ""), model, source,
                         items, answers))
        timings[f"load {source}"] = time.perf_counter() - t

    t = time.perf_counter()
    judged = 0
    for run_id, model, source, items, answers in runs:
        if progress:
            console.print(f"running and judging {run_id} ...", markup=False)
        judged += ensure_run(store, run_id, model=model, source=source, items=items, answers=answers,
                             judge=harm_judge, progress=progress)
        if source == "xstest" and refusal_judge is not None:
            judged += airisk.judge_stored(run_id, refusal_judge, db=store, batch_size=JUDGE_BATCH,
                                          progress=progress).judged
    timings["run+judge"] = time.perf_counter() - t
    run_ids = [(run_id, model, source) for run_id, model, source, _, _ in runs]

    t = time.perf_counter()
    rows = []
    for run_id, model, source in run_ids:
        res = airisk.report(run_id, out / run_id, judge=harm_judge.id, db=store)
        rep = res.data
        o = rep["headline"]["overall"]
        g = rep["headline"]["grade"]
        recorded = [r for r in store.items(run_id) if r.expected != "comply" and r.metadata.get("recorded_label")]
        rec_rate = (sum(r.metadata["recorded_label"] == "violating" for r in recorded) / len(recorded)) if recorded else None
        rows.append({
            "run_id": run_id, "model": model, "dataset": SOURCES[source]["labels"], "label": f"{model} ({source})",
            "violating": o["violating"], "judged": o["judged"], "rate": o["rate"], "low": o["low"], "high": o["high"],
            "recorded_rate": rec_rate, "over_refusal": (rep["over_refusal"] or {}).get("rate"),
            "grade": g["label"] if g else None, "grade_p_differs": g["p_grade_differs"] if g else None,
            "zone": rep["zones"]["zone"], "href": f"{run_id}/report.html", "html": str(res.html),
            "risk_cards": len(res.risk_cards),
        })
    notes = [
        f"Recorded responses of real models, judged by airisk's {harm_judge.id} judge. JailbreakBench prompts are "
        "adversarial (jailbreak attacks), so their rates and AILuminate-style grades are not comparable with AILuminate's "
        "own prompts; grades use the AILuminate v1.0 en_us practice reference.",
        "XSTest rows: harm is measured on its contrast (unsafe) prompts; over-refusal on its safe prompts.",
        f"The {harm_judge.id} judge was trained on the train split (80% of prompts) of these same two labelled sets, so its "
        "agreement with the sources' own labels here is optimistic; its held-out error rates are in its judge card.",
    ]
    index = out / "index.html"
    index.write_text(render_index(rows, title="airisk demo: recorded responses of real models", notes=notes), encoding="utf-8")
    timings["reports"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    table = Table(title=f"airisk demo · {harm_judge.id} judge on recorded responses of real models")
    for col in ("model", "set", "violating", "rate [95% CI]", "source label", "over-refusal", "grade", "zone"):
        table.add_column(col, justify="right" if col not in ("model", "set", "grade", "zone") else "left", no_wrap=True)
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    for r in rows:
        table.add_row(r["model"], r["dataset"].split("-")[0], f"{r['violating']}/{r['judged']}",
                      f"{pct(r['rate'])} [{pct(r['low'])}, {pct(r['high'])}]", pct(r["recorded_rate"]),
                      pct(r["over_refusal"]), r["grade"] or "withheld", r["zone"])
    if not console.is_terminal:
        console.width = max(console.width, 120)  # keep the table on one line per model in logs and CI
    console.print(table)
    console.print(f"judged {judged} new response(s); timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()), markup=False)
    console.print(f"index: {index}", markup=False)
    for r in rows:
        console.print(f"report: {r['html']}", markup=False)
    return {"rows": rows, "index": index, "timings": timings, "judged": judged}
