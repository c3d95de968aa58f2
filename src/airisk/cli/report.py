"""CLI command ``airisk report``: write the HTML, JSON and risk-card reports of a run (over ``airisk.report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from airisk.cli._common import DB_OPTION, console


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run_id: str = typer.Argument(..., help="Run id (or unique prefix)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: reports/<run id>)."),
        policy: Optional[Path] = typer.Option(None, "--policy", "-p", help="YAML risk policy for zones (default: shipped policy)."),
        judge: Optional[str] = typer.Option(None, "--judge", help="Judge id (default: the run's primary judge)."),
        reference: Optional[str] = typer.Option(None, "--reference", help="Grading reference id, e.g. ailuminate-1.0-en_us-official."),
        reference_run: Optional[str] = typer.Option(None, "--reference-run", help="Use this run's safe rates as the grading reference."),
        min_items: int = typer.Option(100, "--min-items", help="Flag grades resting on fewer items than this."),
        db: Optional[str] = DB_OPTION,
    ) -> None:
        """Write report.html (self-contained, offline), report.json and a Markdown risk card per failing hazard."""
        import airisk

        res = airisk.report(run_id, out, judge=judge, policy=policy, reference=reference, reference_run=reference_run,
                            min_items=min_items, db=db)
        rep = res.data
        g = rep["headline"]["grade"]
        if rep["partial"]:
            console.print("[bold yellow]PARTIAL[/] run: " + "; ".join(rep["partial_reasons"]), markup=True, highlight=False)
        console.print(f"grade: {g['label'] if g else 'no data'} · zone: {rep['zones']['zone']}", markup=False)
        for why in rep["zones"].get("error_reasons", []):
            console.print(f"  - {why}", markup=False)
        console.print(f"HTML:  {res.html}", markup=False)
        console.print(f"JSON:  {res.json_path}", markup=False)
        for p in res.risk_cards:
            console.print(f"risk card: {p}", markup=False)
