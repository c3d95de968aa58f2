"""CLI commands of the run engine: ``airisk run`` and ``airisk runs list|show``."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from airisk.engine.config import RunConfig, load_run_config, validate_run_config
from airisk.errors import ConfigError
from airisk.store import Store
from airisk.types import Item

console = Console()
runs_app = typer.Typer(help="Inspect stored runs.", no_args_is_help=True)


def _csv(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def load_items(cfg: RunConfig) -> tuple[list[Item], list[dict[str, Any]]]:
    """The run's items after filters, and the dataset provenance to record with the run."""
    from airisk import datasets

    path = Path(cfg.dataset)
    if path.suffix.lower() in (".csv", ".jsonl", ".json", ".tsv") or path.exists():
        ds = datasets.load_file(path, skip_bad=cfg.skip_bad)
    else:
        ds = datasets.load_dataset(cfg.dataset, skip_bad=cfg.skip_bad)
    if cfg.hazards:
        from airisk.taxonomy import get_hazard

        for h in cfg.hazards:
            get_hazard(h)  # unknown codes fail here, listing the valid ones
    items = [
        it for it in ds.items
        if (not cfg.hazards or it.hazard in cfg.hazards)
        and (not cfg.personas or it.persona in cfg.personas)
        and (not cfg.locales or it.locale in cfg.locales)
    ]
    if cfg.shuffle:
        random.Random(cfg.seed).shuffle(items)
    if cfg.limit and cfg.limit < len(items):
        items = stratified_head(items, cfg.limit)
    meta = [{"name": ds.name, "version": ds.version, "sha256": ds.sha256, "license": getattr(ds, "license", None),
             "path": str(getattr(ds, "path", "") or ""), "items": len(items),
             "skipped": len(getattr(ds, "skipped", []) or [])}]
    return items, meta


def stratified_head(items: list[Item], n: int) -> list[Item]:
    """The first ``n`` items taken round-robin across hazards (dataset order within each), so a
    ``--limit`` sample covers every hazard instead of the first one or two of a sorted file."""
    by_hazard: dict[str | None, list[Item]] = {}
    for it in items:
        by_hazard.setdefault(it.hazard, []).append(it)
    queues = [iter(v) for v in by_hazard.values()]
    out: list[Item] = []
    while len(out) < n and queues:
        for q in list(queues):
            nxt = next(q, None)
            if nxt is None:
                queues.remove(q)
            elif len(out) < n:
                out.append(nxt)
    return out


def make_judge(spec: str):
    try:
        from airisk.judges.factory import make_judge as factory
    except ModuleNotFoundError:
        from airisk import plugins

        return plugins.load("judges", spec)()
    return factory(spec)


def print_summary(store: Store, run_id: str) -> None:
    run = store.get_run(run_id)
    summary = store.hazard_summary(run.id)
    judge_ids = [j.get("id") for j in run.judges if j.get("id")]
    table = Table(title=f"run {run.id} · {run.system_name} · {run.status}")
    for col in ("hazard", "items", "responses", "errors", "pending"):
        table.add_column(col, justify="right" if col != "hazard" else "left")
    for jid in judge_ids:
        table.add_column(f"{jid}: violating", justify="right")
    totals: dict[str, int] = {}
    for hazard, row in summary.items():
        cells = [hazard] + [str(row.get(k, 0)) for k in ("items", "responses", "errors", "pending")]
        for k in ("items", "responses", "errors", "pending"):
            totals[k] = totals.get(k, 0) + row.get(k, 0)
        for jid in judge_ids:
            v, e = row.get(f"{jid}:violating", 0), row.get(f"{jid}:error", 0)
            judged = v + row.get(f"{jid}:non_violating", 0)
            totals[f"{jid}:v"] = totals.get(f"{jid}:v", 0) + v
            totals[f"{jid}:n"] = totals.get(f"{jid}:n", 0) + judged
            cells.append(f"{v}/{judged} ({v / judged:.0%})" if judged else "no data" + (f", {e} errors" if e else ""))
        table.add_row(*cells)
    foot = ["total"] + [str(totals.get(k, 0)) for k in ("items", "responses", "errors", "pending")]
    for jid in judge_ids:
        v, n = totals.get(f"{jid}:v", 0), totals.get(f"{jid}:n", 0)
        foot.append(f"{v}/{n} ({v / n:.0%})" if n else "no data")
    table.add_section()
    table.add_row(*foot, style="bold")
    console.print(table)
    stats = (run.stats or {}).get("last_execute") or {}
    if stats.get("unmatched"):
        n = len(stats["unmatched"])
        console.print(f"[yellow]{n} item(s) had no recorded response (stored as 'unmatched' errors), e.g. "
                      f"{', '.join(stats['unmatched'][:5])}")
    if stats.get("errors"):
        console.print("errors by kind: " + ", ".join(f"{k}={v}" for k, v in sorted(stats["errors"].items())))


def _build_run(config, dataset, system, judge, limit, hazards, personas, locales, concurrency, rps, skip_bad, label,
               shuffle, seed) -> tuple[RunConfig, list[Item], list[dict[str, Any]]]:
    """The run config and items from flags (or a YAML config that flags override)."""
    flags = {"dataset": dataset, "system": system, "judge": judge, "limit": limit, "hazards": _csv(hazards),
             "personas": _csv(personas), "locales": _csv(locales), "concurrency": concurrency, "rps": rps,
             "skip_bad": skip_bad or None, "label": label, "shuffle": shuffle or None, "seed": seed}
    if config:
        cfg = load_run_config(config, flags)
    else:
        missing = [f"--{k}" for k in ("dataset", "system") if not flags[k]]
        if missing:
            raise ConfigError(f"missing {' and '.join(missing)} (or give --config run.yaml)")
        cfg = validate_run_config({k: v for k, v in flags.items() if v is not None}, source="command line")
    items, ds_meta = load_items(cfg)
    if not items:
        raise ConfigError("no items left after filters (check --hazards/--personas/--locales/--limit)")
    if ds_meta[0]["skipped"]:
        console.print(f"[yellow]skipped {ds_meta[0]['skipped']} malformed row(s) (--skip-bad)")
    return cfg, items, ds_meta


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Catalog name or path to a JSONL/CSV prompt file."),
        system: Optional[str] = typer.Option(None, "--system", "-s", help="System spec, e.g. openai:model=m,base_url=http://localhost:8000/v1"),
        judge: Optional[str] = typer.Option(None, "--judge", "-j", help="Judge spec to label responses (e.g. offline)."),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config; flags override it."),
        resume: Optional[str] = typer.Option(None, "--resume", help="Resume an interrupted run by id."),
        limit: Optional[int] = typer.Option(None, "--limit", "-n", help="At most this many items, taken round-robin across hazards."),
        shuffle: bool = typer.Option(False, "--shuffle", help="Shuffle items (with --seed) before --limit."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed for --shuffle (default 0)."),
        hazards: Optional[str] = typer.Option(None, "--hazards", help="Comma-separated hazard codes."),
        personas: Optional[str] = typer.Option(None, "--personas", help="Comma-separated personas."),
        locales: Optional[str] = typer.Option(None, "--locales", help="Comma-separated locales."),
        concurrency: Optional[int] = typer.Option(None, "--concurrency", help="Requests in flight (default 16)."),
        rps: Optional[float] = typer.Option(None, "--rps", help="Requests per second cap."),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed dataset rows (reported) instead of failing."),
        retry_errors: bool = typer.Option(False, "--retry-errors", help="With --resume: ask again for items stored as errors."),
        label: Optional[str] = typer.Option(None, "--label", help="A human label for the run."),
        db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help="SQLAlchemy URL (default SQLite under .airisk/)."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress output."),
        executor: str = typer.Option("local", "--executor", help="local (this process) or ray (a Ray cluster)."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --executor ray: 'auto' or ray://host:port joins a cluster; default starts a local Ray."),
        workers: Optional[int] = typer.Option(None, "--workers", help="With --executor ray: worker processes (default: the cluster's CPUs)."),
    ) -> None:
        """Run a prompt set against a system under test; store every response and error."""
        store = Store(db)
        if executor != "local" or ray_address or workers:
            # The distributed executor lives in airisk.distributed; this is its only call site here.
            from airisk.distributed.cli_support import run_command

            run_command(store, executor=executor, ray_address=ray_address, workers=workers, resume=resume,
                        judge=judge, concurrency=concurrency, progress=not no_progress, retry_errors=retry_errors,
                        build=lambda: _build_run(config, dataset, system, judge, limit, hazards, personas, locales,
                                                 concurrency, rps, skip_bad, label, shuffle, seed))
            return
        if resume:
            from airisk.engine.runner import resume_run

            run_info = store.get_run(resume)
            jspec = judge or run_info.config.get("judge")
            stats = asyncio.run(resume_run(store, run_info.id, judge=make_judge(jspec) if jspec else None,
                                           concurrency=concurrency, progress=not no_progress, retry_errors=retry_errors))
            console.print(f"resumed run {run_info.id}: {stats.get('items_done', 0)} item(s) answered now")
            print_summary(store, run_info.id)
            return
        flags = {"dataset": dataset, "system": system, "judge": judge, "limit": limit, "hazards": _csv(hazards),
                 "personas": _csv(personas), "locales": _csv(locales), "concurrency": concurrency, "rps": rps,
                 "skip_bad": skip_bad or None, "label": label, "shuffle": shuffle or None, "seed": seed}
        if config:
            cfg = load_run_config(config, flags)
        else:
            missing = [f"--{k}" for k in ("dataset", "system") if not flags[k]]
            if missing:
                raise ConfigError(f"missing {' and '.join(missing)} (or give --config run.yaml)")
            cfg = validate_run_config({k: v for k, v in flags.items() if v is not None}, source="command line")
        items, ds_meta = load_items(cfg)
        if not items:
            raise ConfigError("no items left after filters (check --hazards/--personas/--locales/--limit)")
        from airisk.engine.retry import RetryPolicy
        from airisk.engine.runner import run_items
        from airisk.systems.factory import make_system

        sut = make_system(cfg.system)
        judge_obj = make_judge(cfg.judge) if cfg.judge else None
        if ds_meta[0]["skipped"]:
            console.print(f"[yellow]skipped {ds_meta[0]['skipped']} malformed row(s) (--skip-bad)")

        async def go() -> str:
            try:
                return await run_items(store, sut, items, concurrency=cfg.concurrency, rps=cfg.rps, judge=judge_obj,
                                       config=cfg.model_dump(exclude={"system"}, exclude_none=True), datasets=ds_meta,
                                       label=cfg.label, progress=not no_progress, retry=RetryPolicy(max_retries=cfg.max_retries))
            finally:
                await sut.aclose()

        run_id = asyncio.run(go())
        print_summary(store, run_id)
        console.print(f"run id: [bold]{run_id}[/bold]  (store: {store.safe_url})")

    @runs_app.command("list")
    def runs_list(db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB"),
                  limit: int = typer.Option(50, "--limit")) -> None:
        """List runs, newest first."""
        store = Store(db)
        table = Table()
        table.add_column("id", no_wrap=True)
        for col in ("kind", "status", "system", "items", "responses", "errors", "judges", "created"):
            table.add_column(col)
        for r in store.list_runs(limit):
            total, errs = store.count_responses(r.id)
            table.add_row(r.id, r.kind, r.status, r.system_name, str(store.count_items(r.id)), str(total), str(errs),
                          ",".join(j.get("id", "?") for j in r.judges), r.created_at.strftime("%Y-%m-%d %H:%M"))
        console.print(table)

    @runs_app.command("show")
    def runs_show(run_id: str, db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB")) -> None:
        """Per-hazard counts of responses, errors and judgments for one run."""
        store = Store(db)
        run = store.get_run(run_id)
        console.print(f"system: {run.config.get('system')}")
        names = ", ".join(f"{d.get('name')}@{d.get('version')}" for d in run.datasets)
        console.print(f"datasets: {names or '-'}")
        print_summary(store, run.id)

    app.add_typer(runs_app, name="runs")

