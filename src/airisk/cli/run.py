"""CLI commands of the run engine: ``airisk run`` and ``airisk runs list|show`` (thin: over ``airisk.evaluate``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from airisk.cli._common import DB_OPTION, console, csv, group

if TYPE_CHECKING:
    from airisk._api import RunResult

runs_app = group("Inspect stored runs.")


def print_summary(result: RunResult) -> None:
    """The per-hazard table of a run: counts and each judge's violating k/n (rate)."""
    from rich.table import Table

    table = Table(title=f"run {result.run_id} · {result.system} · {result.status}")
    for col in ("hazard", "items", "responses", "errors", "pending"):
        table.add_column(col, justify="right" if col != "hazard" else "left")
    for jid in result.judges:
        table.add_column(f"{jid}: violating", justify="right")

    def cells(h) -> list[str]:
        out = [h.hazard, str(h.items), str(h.responses), str(h.errors), str(h.pending)]
        for jid in result.judges:
            c = h.judges.get(jid)
            if c is not None and c.judged:
                out.append(f"{c.violating}/{c.judged} ({c.rate:.0%})")
            else:
                out.append("no data" + (f", {c.errors} errors" if c is not None and c.errors else ""))
        return out

    for h in result.hazards:
        table.add_row(*cells(h))
    table.add_section()
    table.add_row(*cells(result.total), style="bold")
    console.print(table)
    stats = result.stats
    if stats.get("unmatched"):
        n = len(stats["unmatched"])
        console.print(f"[yellow]{n} item(s) had no recorded response (stored as 'unmatched' errors), e.g. "
                      f"{', '.join(stats['unmatched'][:5])}", highlight=False)
    if stats.get("errors"):
        console.print("errors by kind: " + ", ".join(f"{k}={v}" for k, v in sorted(stats["errors"].items())))


def _build_run(config, dataset, system, judge, limit, hazards, personas, locales, concurrency, rps, max_retries,
               skip_bad, label, shuffle, seed) -> tuple[Any, list, list]:
    """The run config and items from flags (or a YAML config that flags override), for the Ray executor."""
    from airisk.engine.config import load_run_config, validate_run_config
    from airisk.engine.items import load_items
    from airisk.errors import ConfigError

    flags = {"dataset": dataset, "system": system, "judge": judge, "limit": limit, "hazards": csv(hazards),
             "personas": csv(personas), "locales": csv(locales), "concurrency": concurrency, "rps": rps,
             "max_retries": max_retries, "skip_bad": skip_bad or None, "label": label, "shuffle": shuffle or None,
             "seed": seed}
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
    if ds_meta[0].get("skipped"):
        console.print(f"[yellow]skipped {ds_meta[0]['skipped']} malformed row(s) (--skip-bad)")
    return cfg, items, ds_meta


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Catalog name or path to a JSONL/CSV prompt file."),
        system: Optional[str] = typer.Option(None, "--system", "-s", help="System spec, e.g. openai:model=m,base_url=http://localhost:8000/v1"),
        judge: Optional[str] = typer.Option(None, "--judge", "-j", help="Judge spec to label responses (e.g. offline)."),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML run config; flags override it."),
        resume: Optional[str] = typer.Option(None, "--resume", help="Resume an interrupted run by id (its stored settings apply)."),
        limit: Optional[int] = typer.Option(None, "--limit", "-n", help="At most this many items, taken round-robin across hazards."),
        shuffle: bool = typer.Option(False, "--shuffle", help="Shuffle items (with --seed) before --limit."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed for --shuffle (default 0)."),
        hazards: Optional[str] = typer.Option(None, "--hazards", help="Comma-separated hazard codes."),
        personas: Optional[str] = typer.Option(None, "--personas", help="Comma-separated personas."),
        locales: Optional[str] = typer.Option(None, "--locales", help="Comma-separated locales."),
        concurrency: Optional[int] = typer.Option(None, "--concurrency", help="Requests in flight (default 16)."),
        rps: Optional[float] = typer.Option(None, "--rps", help="Requests per second cap."),
        max_retries: Optional[int] = typer.Option(None, "--max-retries", help="Retries per request on transient errors (default 5)."),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed dataset rows (reported) instead of failing."),
        retry_errors: bool = typer.Option(False, "--retry-errors", help="With --resume: ask again for items stored as errors."),
        label: Optional[str] = typer.Option(None, "--label", help="A human label for the run."),
        db: Optional[str] = DB_OPTION,
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress output."),
        executor: str = typer.Option("local", "--executor", help="local (this process) or ray (a Ray cluster, docs/distributed.md)."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --executor ray: 'auto' or ray://host:port joins a cluster; default starts a local Ray."),
        workers: Optional[int] = typer.Option(None, "--workers", help="With --executor ray: worker processes (default: the cluster's CPUs)."),
    ) -> None:
        """Run a prompt set against a system under test; store every response and error."""
        import airisk

        if executor != "local" or ray_address or workers:
            # The distributed executor lives in airisk.distributed; this is its only call site here.
            from airisk.cli._ray import run_command

            run_command(airisk.open_store(db), executor=executor, ray_address=ray_address, workers=workers, resume=resume,
                        judge=judge, concurrency=concurrency, progress=not no_progress, retry_errors=retry_errors,
                        build=lambda: _build_run(config, dataset, system, judge, limit, hazards, personas, locales,
                                                 concurrency, rps, max_retries, skip_bad, label, shuffle, seed))
            return
        if resume:
            res = airisk.resume(resume, judge=judge, db=db, concurrency=concurrency, progress=not no_progress,
                                retry_errors=retry_errors)
            console.print(f"resumed run {res.run_id}: {res.stats.get('items_done', 0)} item(s) answered now")
            print_summary(res)
            return
        from airisk.engine.config import load_run_config
        from airisk.errors import ConfigError

        flags = {"dataset": dataset, "system": system, "judge": judge, "limit": limit, "hazards": csv(hazards),
                 "personas": csv(personas), "locales": csv(locales), "concurrency": concurrency, "rps": rps,
                 "max_retries": max_retries, "skip_bad": skip_bad or None, "label": label, "shuffle": shuffle or None,
                 "seed": seed}
        if config:
            options = load_run_config(config, flags).model_dump(exclude_none=True)
        else:
            missing = [f"--{k}" for k in ("dataset", "system") if not flags[k]]
            if missing:
                raise ConfigError(f"missing {' and '.join(missing)} (or give --config run.yaml)")
            options = {k: v for k, v in flags.items() if v is not None}
        options.pop("version", None)
        res = airisk.evaluate(options.pop("dataset"), options.pop("system"), options.pop("judge", None), db=db,
                              progress=not no_progress, **options)
        skipped = sum(d.get("skipped") or 0 for d in res.datasets)
        if skipped:
            console.print(f"[yellow]skipped {skipped} malformed row(s) (--skip-bad)")
        print_summary(res)
        console.print(f"run id: [bold]{res.run_id}[/bold]  (store: {res.store_url})")

    @runs_app.command("list")
    def runs_list(db: Optional[str] = DB_OPTION,
                  limit: int = typer.Option(50, "--limit", help="Show at most this many runs."),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON (schema airisk.runs/1, docs/viewer.md).")) -> None:
        """List runs, newest first (a run killed without a clean stop shows as interrupted)."""
        from rich.table import Table

        import airisk

        store = airisk.open_store(db)
        if as_json:
            from airisk.viewer import json_out

            typer.echo(json_out.dumps(json_out.runs_list(store, limit)))
            return
        from airisk.reports.headline import effective_status, system_spec

        if not console.is_terminal:
            console.width = max(console.width, 140)  # one line per run in logs and pipes
        table = Table()
        table.add_column("id", no_wrap=True)
        for col in ("kind", "status", "system", "items", "responses", "errors", "judges", "created"):
            table.add_column(col)
        for r in store.list_runs(limit):
            total, errs = store.count_responses(r.id)
            table.add_row(r.id, r.kind, effective_status(store, r), system_spec(r)["label"], str(store.count_items(r.id)), str(total), str(errs),
                          ",".join(j.get("id", "?") for j in r.judges), r.created_at.strftime("%Y-%m-%d %H:%M"))
        console.print(table)

    @runs_app.command("show")
    def runs_show(run_id: str = typer.Argument(..., help="Run id (or unique prefix)."),
                  db: Optional[str] = DB_OPTION,
                  as_json: bool = typer.Option(False, "--json", help="Print JSON (schema airisk.run/1, docs/viewer.md).")) -> None:
        """Per-hazard counts of responses, errors and judgments for one run."""
        import airisk

        store = airisk.open_store(db)
        if as_json:
            from airisk.viewer import json_out

            typer.echo(json_out.dumps(json_out.run_show(store, run_id)))
            return
        run = store.get_run(run_id)
        system = run.config.get("system")
        console.print(f"system: {system}", markup=False)
        names = ", ".join(f"{d.get('name')}@{d.get('version')}" for d in run.datasets)
        console.print(f"datasets: {names or '-'}", markup=False)
        print_summary(airisk.run_result(run.id, db=store))
        if run.status == "interrupted" and run.lease:
            console.print(f"[yellow]interrupted while {run.lease['phase']}: {run.lease['dead']}; carry on with "
                          f"`airisk run --resume {run.id}`", highlight=False)

    app.add_typer(runs_app, name="runs")
