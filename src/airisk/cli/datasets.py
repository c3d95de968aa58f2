"""CLI commands for the dataset catalog: ``airisk datasets list`` and ``airisk datasets show NAME``."""

from __future__ import annotations

from typing import Any, Optional

import typer

from airisk.cli._common import console, group

datasets_app = group("Browse the dataset catalog.")


@datasets_app.command("list")
def list_cmd(
    count: bool = typer.Option(True, "--count/--no-count", help="Load each dataset found locally to count its items."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (schema airisk.datasets/1, docs/viewer.md)."),
) -> None:
    """Catalog datasets with version, item count, license and where the file was found."""
    if as_json:
        from airisk.viewer import json_out

        typer.echo(json_out.dumps(json_out.datasets_list(count)))
        return
    from rich.markup import escape
    from rich.table import Table

    from airisk.datasets import find_local, list_datasets, load_dataset
    from airisk.errors import AiriskError

    table = Table(title="airisk datasets")
    for col in ("name", "version", "items", "license", "location"):
        table.add_column(col, overflow="fold")
    for e in list_datasets():
        path = find_local(e.folder, e.primary.relpath)
        items = "-"
        if path is None:
            where = "[yellow]not found[/] (set AIRISK_DATA_PATH or download on first use)"
        else:
            where = escape(str(path))
            if count:
                try:
                    items = str(len(load_dataset(e.name, skip_bad=True)))
                except AiriskError as err:
                    items = f"[red]error[/]: {escape(str(err))}"
        table.add_row(e.name, e.version, items, e.license, where)
    console.print(table)


def _counts_table(title: str, counts: dict[str, int]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title)
    t.add_column(title)
    t.add_column("items", justify="right")
    for k, v in counts.items():
        t.add_row(escape(k), str(v))
    return t


@datasets_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Catalog name or path to a dataset file."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed rows and report how many."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Format of a user file: jsonl, csv or ailuminate."),
) -> None:
    """Item counts per hazard, persona, locale and expected behaviour for one dataset."""
    from pathlib import Path

    from rich.markup import escape

    from airisk.datasets import catalog, load_dataset, load_file

    if name not in catalog.catalog() and Path(name).expanduser().is_file():
        ds = load_file(name, skip_bad=skip_bad, fmt=fmt)
    else:
        ds = load_dataset(name, skip_bad=skip_bad)
    console.print(f"[bold]{escape(ds.name)}[/] {escape(ds.version)}  items={len(ds)}  license={ds.license or '-'}")
    check = "matches catalog" if ds.verified else ("no catalog hash" if ds.expected_sha256 is None else "DIFFERS from catalog")
    console.print(f"path={escape(ds.path)}  sha256={ds.sha256} ({check})")
    if ds.skipped:
        console.print(f"[yellow]skipped {len(ds.skipped)} bad rows[/]; first: {escape(ds.skipped[0][1])}")
    for field in ("hazard", "persona", "locale", "expected"):
        console.print(_counts_table(field, ds.counts(field)))


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
