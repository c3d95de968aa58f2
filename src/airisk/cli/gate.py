"""CLI commands of scoring: ``airisk gate`` and ``airisk compare`` (thin: over ``airisk.gate``/``airisk.compare``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from airisk.cli._common import DB_OPTION, LazyConsole

console = LazyConsole(min_width=120)


def _pct(x: float | None, nd: int = 1) -> str:
    return "no data" if x is None else f"{100 * x:.{nd}f}%"


def register(app: typer.Typer) -> None:
    @app.command("gate")
    def gate(
        run_id: str = typer.Argument(..., help="Run to gate (id or unique prefix)."),
        policy: Optional[Path] = typer.Option(None, "--policy", "-p", help="YAML risk policy (default: the shipped policy)."),
        baseline: Optional[str] = typer.Option(None, "--baseline", help="Baseline run: fail on significant per-hazard regressions."),
        junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here (one testcase per hazard/rule)."),
        judge: Optional[str] = typer.Option(None, "--judge", help="Judge id to score with (default: the run's primary judge)."),
        reference: Optional[str] = typer.Option(None, "--reference", help="Grading reference id, e.g. ailuminate-1.0-en_us-official."),
        reference_run: Optional[str] = typer.Option(None, "--reference-run", help="Use this run's safe rates as the grading reference."),
        allow_partial: bool = typer.Option(False, "--allow-partial", help="Evaluate a run that is not finished (otherwise exit 3)."),
        db: Optional[str] = DB_OPTION,
        as_json: bool = typer.Option(False, "--json", help="Print JSON (schema airisk.gate/1, docs/viewer.md); same exit code."),
    ) -> None:
        """Release gate: exit 0 pass, 1 yellow, 2 red/fail, 3 could not evaluate."""
        import airisk
        from airisk.scoring.gate import write_junit

        result = airisk.gate(run_id, policy, baseline=baseline, judge=judge, reference=reference,
                             reference_run=reference_run, allow_partial=allow_partial, db=db)
        if as_json:
            from airisk.viewer import json_out

            typer.echo(json_out.dumps(json_out.gate(result)))
        else:
            _print_gate(result)
        if junit:
            console.print(f"JUnit XML: {write_junit(result, junit)}")
        raise typer.Exit(result.exit_code)

    @app.command("compare")
    def compare_cmd(
        run_a: str = typer.Argument(..., help="Baseline run (A)."),
        run_b: str = typer.Argument(..., help="Candidate run (B)."),
        judge: Optional[str] = typer.Option(None, "--judge", help="Judge id to score both runs with."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        db: Optional[str] = DB_OPTION,
    ) -> None:
        """Per-hazard change in violation rate from run A to run B, with intervals and p-values."""
        import json

        from rich.table import Table

        import airisk

        res = airisk.compare(run_a, run_b, judge=judge, db=db)
        if as_json:
            sys.stdout.write(json.dumps(res.model_dump(), indent=2) + "\n")
            return
        t = Table(title=f"{res.run_a} (A) -> {res.run_b} (B)")
        for col in ("hazard", "A", "B", "delta (B-A)", "95% CI", "p-value"):
            t.add_column(col, justify="left" if col == "hazard" else "right")
        for d in [*res.hazards, res.overall]:
            if d.key == "overall":
                t.add_section()
            t.add_row(
                d.key, f"{d.a_k}/{d.a_n} ({_pct(d.rate_a)})" if d.a_n else "no data",
                f"{d.b_k}/{d.b_n} ({_pct(d.rate_b)})" if d.b_n else "no data",
                "no data" if d.delta is None else f"{100 * d.delta:+.1f} pts",
                "" if d.low is None else f"[{100 * d.low:+.1f}, {100 * d.high:+.1f}]",
                "" if d.p_value is None else f"{d.p_value:.3g}" + (" (exact)" if d.z is None else ""),
            )
        console.print(t)
        console.print(f"interval: {res.interval_method}; test: {res.test_method}")
        for w in res.warnings:
            console.print(f"[yellow]warning: {w}")


def _print_gate(result: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    colour = {"pass": "green", "yellow": "yellow", "red": "red", "error": "magenta"}[result.status]
    t = Table(title=f"gate · run {result.run_id}")
    for col in ("check", "zone", "why"):
        t.add_column(col)
    zc = {"green": "green", "yellow": "yellow", "red": "red", "no data": "dim"}
    for c in result.checks:
        t.add_row(escape(c.name), f"[{zc.get(c.zone, 'white')}]{c.zone}", escape(c.why))
    if result.checks:
        console.print(t)
    console.print(f"[bold {colour}]gate: {result.status.upper()} (exit {result.exit_code})")
    for r in result.reasons:
        console.print(f"  - {r}", markup=False)
