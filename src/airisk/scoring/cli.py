"""CLI commands of scoring: ``airisk gate``, ``airisk compare`` and ``airisk demo`` (thin wrappers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from airisk.errors import AiriskError

console = Console()
if not console.is_terminal:
    console.width = max(console.width, 120)  # readable tables in CI logs


def _pct(x: float | None, nd: int = 1) -> str:
    return "no data" if x is None else f"{100 * x:.{nd}f}%"


def _reference(store, reference: str | None, reference_run: str | None, judge: str | None):
    from airisk.scoring import grading
    from airisk.scoring.rates import reference_from_run

    if reference_run:
        return reference_from_run(store, reference_run, judge=judge)
    if reference:
        return grading.get_reference(reference)
    return None


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
        db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help="SQLAlchemy URL of the store."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (schema airisk.gate/1, docs/viewer.md); same exit code."),
    ) -> None:
        """Release gate: exit 0 pass, 1 yellow, 2 red/fail, 3 could not evaluate."""
        from airisk.scoring.gate import error_result, run_gate, write_junit
        from airisk.scoring.rates import score_run
        from airisk.scoring.zones import default_policy, load_policy
        from airisk.store import Store

        try:
            pol = load_policy(policy) if policy else default_policy()
            store = Store(db)
            ref = _reference(store, reference, reference_run, judge)
            scores = score_run(store, run_id, judge=judge, reference=ref)
            base = score_run(store, baseline, judge=judge, reference=ref) if baseline else None
            result = run_gate(scores, pol, base, allow_partial=allow_partial)
        except AiriskError as e:
            result = error_result(run_id, str(e))
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
        db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help="SQLAlchemy URL of the store."),
    ) -> None:
        """Per-hazard change in violation rate from run A to run B, with intervals and p-values."""
        import json

        from airisk.scoring.compare import compare
        from airisk.scoring.rates import score_run
        from airisk.store import Store

        store = Store(db)
        res = compare(score_run(store, run_a, judge=judge), score_run(store, run_b, judge=judge))
        if as_json:
            out = {**res, "hazards": [d.model_dump() for d in res["hazards"]], "overall": res["overall"].model_dump()}
            sys.stdout.write(json.dumps(out, indent=2) + "\n")
            return
        t = Table(title=f"{res['run_a']} (A) -> {res['run_b']} (B)")
        for col in ("hazard", "A", "B", "delta (B-A)", "95% CI", "p-value"):
            t.add_column(col, justify="left" if col == "hazard" else "right")
        for d in res["hazards"] + [res["overall"]]:
            if d.key == "overall":
                t.add_section()
            t.add_row(
                d.key, f"{d.a_k}/{d.a_n} ({_pct(d.rate_a)})" if d.a_n else "no data",
                f"{d.b_k}/{d.b_n} ({_pct(d.rate_b)})" if d.b_n else "no data",
                "no data" if d.delta is None else f"{100 * d.delta:+.1f} pts",
                "" if d.low is None else f"[{100 * d.low:+.1f}, {100 * d.high:+.1f}]",
                "" if d.p_value is None else f"{d.p_value:.3g}",
            )
        console.print(t)
        console.print(f"interval: {res['interval_method']}; test: {res['test_method']}")
        for w in res["warnings"]:
            console.print(f"[yellow]warning: {w}")

    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("airisk-demo"), "--out", "-o", help="Folder for the HTML/JSON reports."),
        db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help="SQLAlchemy URL of the store."),
        limit: Optional[int] = typer.Option(None, "--limit", help="At most this many responses per model (quick look)."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress output."),
        refusal_judge: bool = typer.Option(False, "--refusal-judge", help="Also run the dedicated refusal judge on XSTest (slower)."),
    ) -> None:
        """Evaluate recorded responses of real models (JailbreakBench, XSTest) and write the reports."""
        from airisk.reports.demo import run_demo

        run_demo(out=out, db=db, limit=limit, progress=not no_progress, console=console, with_refusal_judge=refusal_judge)


def _print_gate(result) -> None:
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
