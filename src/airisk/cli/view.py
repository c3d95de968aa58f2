"""CLI commands ``airisk view`` (the local web viewer) and ``airisk export`` (one row per item)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("view")
    def view(
        db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help="SQLAlchemy URL of the store."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (anything but loopback needs --token)."),
        port: int = typer.Option(8765, "--port", help="Port to listen on."),
        open_browser: bool = typer.Option(False, "--open", help="Open the viewer in the default browser."),
        token: Optional[str] = typer.Option(None, "--token", envvar="AIRISK_VIEW_TOKEN",
                                            help="Require this token (header, cookie or login form) for every request."),
    ) -> None:
        """Browse, search, compare and export runs in a local, read-only web app."""
        from airisk.viewer.app import check_bind, serve

        check_bind(host, token)
        typer.echo(f"airisk viewer on http://{host}:{port}/ (Ctrl+C to stop)" + (" · token required" if token else ""))
        serve(db, host=host, port=port, token=token, open_browser=open_browser)

    @app.command("export")
    def export(
        run_id: str = typer.Argument(..., help="Run id (or unique prefix)."),
        fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl, csv or parquet (parquet needs pyarrow)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file (default <run id>.<format>)."),
        db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help="SQLAlchemy URL of the store."),
    ) -> None:
        """Write one row per item (prompt, response, every judgment, errors, lineage) to a file."""
        from airisk.store import Store
        from airisk.viewer.export import check_format, write_export

        check_format(fmt)
        path, n = write_export(Store(db), run_id, fmt, out)
        typer.echo(f"wrote {n} item(s) to {path}")


__all__ = ["register"]
