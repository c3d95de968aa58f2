"""``airisk govern ...``: init a risk register, check it against stored runs, assess risk in money, write the pack.

A thin adapter over :mod:`airisk.governance.workflow`; heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

govern_app = typer.Typer(help="Requirements -> tests -> evidence -> money: risk register, checks, QRA, evidence pack.",
                         no_args_is_help=True)

RUNS_HELP = "Run ids or globs to evaluate (repeat the option), e.g. --runs 'demo-*'."
DB_HELP = "SQLAlchemy URL of the store (default $AIRISK_DB / .airisk)."


def register(app: typer.Typer) -> None:
    app.add_typer(govern_app, name="govern")


@govern_app.command("init")
def init_cmd(path: Path = typer.Argument(Path("register.yaml"), help="Where to write the starter register."),
             force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write a commented starter risk register (fits the runs `airisk demo` stores)."""
    from airisk.governance.workflow import write_starter

    typer.echo(f"wrote {write_starter(path, force=force)}; edit it, then: airisk govern check {path} --runs 'demo-*'")


@govern_app.command("validate")
def validate_cmd(path: Path = typer.Argument(..., help="Register file.")) -> None:
    """Validate a register without reading any run."""
    from airisk.governance.register import load_register

    reg = load_register(path)
    n_checks = sum(len(r.checks) for r in reg.requirements)
    typer.echo(f"{path}: valid ({len(reg.requirements)} requirements, {n_checks} checks, {len(reg.risks)} risks)")


@govern_app.command("check")
def check_cmd(path: Path = typer.Argument(..., help="Register file."),
              runs: List[str] = typer.Option(..., "--runs", help=RUNS_HELP),
              db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help=DB_HELP),
              judge: Optional[str] = typer.Option(None, help="Score with this judge id (default: each run's primary)."),
              seed: int = typer.Option(0, help="Seed of the judge-correction intervals."),
              json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the full report as JSON."),
              strict: bool = typer.Option(False, "--strict", help="Exit 1 unless every requirement is met.")) -> None:
    """Evaluate every requirement: met / not met / not measured, with the evidence."""
    from rich.console import Console
    from rich.table import Table

    from airisk.governance.workflow import check_register

    _reg, rep = check_register(path, runs=runs, db=db, seed=seed, judge=judge)
    table = Table(title=f"{rep.system}: requirements")
    for col in ("requirement", "status", "check", "measured", "threshold", "zone", "evidence"):
        table.add_column(col, overflow="fold")
    for r in rep.requirements:
        for i, c in enumerate(r.checks):
            d = c.deciding()
            measured = f"{100 * d.value:.1f}%" if d else "-"
            ev = (f"{d.run_id} k/n={d.k}/{d.n} judge={d.judge_id}" + (" (card)" if d.card else " (no card)")) if d else c.reason
            table.add_row(r.id if i == 0 else "", r.status if i == 0 else "", f"{c.id}: {c.status}", measured,
                          f"{100 * c.threshold:g}%", c.zone or "-", ev)
    console = Console()
    console.print(table)
    counts = rep.counts()
    console.print(f"met {counts['met']}, not met {counts['not met']}, not measured {counts['not measured']} "
                  f"(runs considered: {len(rep.runs_considered)})", markup=False)
    if json_out:
        json_out.write_text(rep.model_dump_json(indent=1), encoding="utf-8")
    if strict and counts["met"] != len(rep.requirements):
        raise typer.Exit(1)


@govern_app.command("qra")
def qra_cmd(path: Path = typer.Argument(..., help="Register file."),
            runs: List[str] = typer.Option(..., "--runs", help=RUNS_HELP),
            db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help=DB_HELP),
            draws: int = typer.Option(100_000, min=1, help="Simulated years."),
            seed: int = typer.Option(0, help="Monte Carlo seed.")) -> None:
    """Annualised loss per risk (mean, percentiles), with and without its mitigation."""
    from rich.console import Console
    from rich.table import Table

    from airisk.governance.pack import money
    from airisk.governance.workflow import assess

    a = assess(path, runs=runs, db=db, seed=seed, draws=draws)
    cur = a["register"].currency
    table = Table(title=f"annual loss ({cur}/year), {draws} draws, seed {seed}")
    for col in ("risk", "rate [95%]", "mean", "p50", "p90", "p99", "mitigated mean"):
        table.add_column(col, justify="left" if col == "risk" else "right")
    for x in a["risks"]:
        rate = f"{100 * x.rate.rate:.1f}% [{100 * x.rate.low:.1f}, {100 * x.rate.high:.1f}]" if x.rate else "not measured"
        if x.loss:
            p = x.loss.percentiles
            cells = [money(x.loss.mean), money(p["p50"]), money(p["p90"]), money(p["p99"])]
        else:
            cells = ["-"] * 4
        table.add_row(x.id, rate, *cells, money(x.mitigated_loss.mean) if x.mitigated_loss else "-")
    Console().print(table)


@govern_app.command("pack")
def pack_cmd(path: Path = typer.Argument(..., help="Register file."),
             runs: List[str] = typer.Option(..., "--runs", help=RUNS_HELP),
             out: Path = typer.Option(..., "--out", "-o", help="Folder for pack.html, pack.md, pack.json."),
             db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help=DB_HELP),
             reports: Optional[Path] = typer.Option(None, help="Folder of per-run reports (<dir>/<run id>/report.html) to link."),
             draws: int = typer.Option(100_000, min=1, help="Monte Carlo draws (simulated years)."),
             seed: int = typer.Option(0, help="Seed (same inputs + seed = byte-identical pack)."),
             judge: Optional[str] = typer.Option(None, help="Score with this judge id (default: each run's primary).")) -> None:
    """Write the evidence pack: a self-contained HTML dossier plus Markdown and JSON."""
    from airisk.governance.workflow import make_pack

    paths = make_pack(path, runs=runs, out=out, db=db, seed=seed, draws=draws, reports_dir=reports, judge=judge)
    for kind, p in paths.items():
        typer.echo(f"{kind}: {p}")
