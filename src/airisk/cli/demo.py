"""CLI command ``airisk demo``: the README's first command (over ``airisk.demo.run_demo``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from airisk.cli._common import DB_OPTION, LazyConsole

console = LazyConsole(min_width=120)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("airisk-demo"), "--out", "-o", help="Folder for the HTML/JSON reports."),
        db: Optional[str] = DB_OPTION,
        limit: Optional[int] = typer.Option(None, "--limit", help="At most this many responses per model (quick look)."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No progress output."),
        refusal_judge: bool = typer.Option(False, "--refusal-judge", help="Also run the dedicated refusal judge on XSTest (slower)."),
        judge: str = typer.Option("offline", "--judge", help="Harm judge spec; offline-fast reads about twice as many "
                                  "responses per second, a little less accurately (docs/judges.md)."),
    ) -> None:
        """Evaluate recorded responses of real models (JailbreakBench, XSTest) and write the reports."""
        from airisk.demo import run_demo

        run_demo(out=out, db=db, limit=limit, progress=not no_progress, console=console, with_refusal_judge=refusal_judge,
                 judge=judge)
