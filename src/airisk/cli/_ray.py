"""What ``airisk run --executor ray`` does after parsing flags: a thin adapter over ``airisk.distributed``.

Kept apart from ``airisk/cli/run.py`` so the local path there is untouched and Ray is imported
only when asked for.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from airisk.distributed.options import ray_options

console = Console()


def run_command(store, *, executor: str, ray_address: str | None, workers: int | None, resume: str | None,
                judge: str | None, concurrency: int | None, progress: bool, retry_errors: bool,
                build: Callable[[], tuple[Any, list, list]]) -> None:
    import airisk
    from airisk.cli.run import print_summary as _print
    from airisk.distributed import api
    from airisk.judges.factory import make_judge

    def print_summary(store: Any, run_id: str) -> None:
        _print(airisk.run_result(run_id, db=store))

    opts = ray_options(executor, ray_address, workers)
    if resume:
        run = store.get_run(resume)
        jspec = judge or run.config.get("judge")
        stats = api.resume(store, run.id, executor=executor, ray=opts, judge=jspec, concurrency=concurrency,
                           progress=progress, retry_errors=retry_errors)
        console.print(f"resumed run {run.id}: {stats.get('items_done', 0)} item(s) answered now")
        print_workers(stats)
        print_summary(store, run.id)
        return
    cfg, items, ds_meta = build()
    if cfg.judge:
        make_judge(cfg.judge)  # a bad judge spec fails before anything is stored
    run_id = api.run_items(store, cfg.system, items, executor=executor, ray=opts, concurrency=cfg.concurrency,
                           rps=cfg.rps, judge=cfg.judge, config=cfg.model_dump(exclude={"system"}, exclude_none=True),
                           datasets=ds_meta, label=cfg.label, progress=progress, retry=cfg.retry)
    print_workers(store.get_run(run_id).stats.get("last_execute") or {})
    print_summary(store, run_id)
    console.print(f"run id: [bold]{run_id}[/bold]  (store: {escape(store.safe_url)})")


def print_workers(stats: dict[str, Any], what: str = "answered") -> None:
    """The per-worker summary of a Ray execution (``what``: ``answered`` for a run, ``judged`` for judging):
    what each worker process did, on which node."""
    per = stats.get("per_worker") or {}
    if not per:
        return
    if what == "answered":
        title = (f"workers · {stats.get('items_per_s')} items/s · Ray retries {stats.get('ray_retries', 0)} · "
                 f"max in flight {stats.get('max_in_flight')}/{stats.get('concurrency')}")
        cols = ("answered", "errors", "cached", "shards")
    else:
        title = (f"judge workers · {stats.get('items_per_s')} items/s judging · judges loaded in "
                 f"{stats.get('ready_s')} s")
        cols = ("judged", "errors", "shards")
    table = Table(title=title)
    for col in ("worker", "node", *cols):
        table.add_column(col, justify="left" if col in ("worker", "node") else "right")
    for name, w in sorted(per.items()):
        table.add_row(escape(name), escape(str(w.get("node", ""))), *(str(w.get(k, 0)) for k in cols))
    console.print(table)
