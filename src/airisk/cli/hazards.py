"""CLI commands for the hazard taxonomy: ``airisk hazards list`` and ``airisk hazards crosswalk [FRAMEWORK] [--gaps]``."""

from __future__ import annotations

from typing import Optional

import typer

from airisk.cli._common import console, group

hazards_app = group("Browse the hazard taxonomy and its crosswalks.")


@hazards_app.command("list")
def list_cmd(definitions: bool = typer.Option(False, "--definitions", help="Also show each hazard's definition."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON (schema airisk.hazards/1, docs/viewer.md).")) -> None:
    """Hazard codes with name, group and Llama Guard categories."""
    if as_json:
        from airisk.viewer import json_out

        typer.echo(json_out.dumps(json_out.hazards_list()))
        return
    from rich.table import Table

    from airisk.taxonomy import HAZARDS, llama_guard_categories

    lg = llama_guard_categories()
    table = Table(title="AILuminate v1.0 hazards")
    for col in ("code", "name", "group", "llama guard"):
        table.add_column(col)
    if definitions:
        table.add_column("definition (airisk wording)", overflow="fold")
    for h in HAZARDS.values():
        row = [h.code, h.name, h.group, ", ".join(f"{s} {lg[s]}" for s in h.llama_guard) or "-"]
        if definitions:
            row.append(h.definition)
        table.add_row(*row)
    console.print(table)


@hazards_app.command("crosswalk")
def crosswalk_cmd(
    framework: Optional[str] = typer.Argument(None, help="Crosswalk id or framework name, e.g. owasp_llm_2025, owasp-llm, "
                                              "iso_42001, mitre_atlas. Omitted: coverage of every framework."),
    gaps: bool = typer.Option(False, "--gaps", help="List the framework items no airisk test covers."),
) -> None:
    """How each hazard maps onto another framework's categories, and which items no test covers."""
    from rich.table import Table

    from airisk.taxonomy import HAZARDS
    from airisk.taxonomy.frameworks import get_any_crosswalk


    if framework is None or gaps:
        _coverage(framework, gaps)
        return
    cw = get_any_crosswalk(framework)
    table = Table(title=f"{cw.framework} {cw.version}" + ("" if cw.official else " (airisk judgement, not official)"))
    table.add_column("hazard")
    table.add_column("name")
    table.add_column(cw.framework, overflow="fold")
    for h in HAZARDS.values():
        ids = cw.targets_for(h.code)
        table.add_row(h.code, h.name, "; ".join(f"{i} {cw.target_name(i)}" for i in ids) or "-")
    console.print(table)
    if cw.basis:
        console.print(f"basis: {cw.basis}")


def _coverage(framework: str | None, list_gaps: bool) -> None:
    from rich.table import Table

    from airisk.taxonomy.frameworks import coverage, frameworks, get_framework

    fws = [get_framework(framework)] if framework else list(frameworks().values())
    table = Table(title="Framework coverage by airisk's tests (mappings are airisk's judgement)")
    for col in ("framework", "items", "covered", "gaps"):
        table.add_column(col, justify="left" if col == "framework" else "right")
    for fw in fws:
        cov = coverage(fw.id)
        n_gap = sum(c.gap for c in cov)
        table.add_row(f"{fw.id} ({fw.name} {fw.version})", str(len(cov)), str(len(cov) - n_gap), str(n_gap))
    console.print(table)
    if framework is None and "mitre_atlas" not in {f.id for f in fws}:
        console.print("MITRE ATLAS not shown: set AIRISK_DATA_PATH to the folder with taxonomies/mitre_atlas.yaml")
    if list_gaps:
        for fw in fws:
            gap = Table(title=f"{fw.name}: items no airisk test covers")
            items = [c for c in coverage(fw.id) if c.gap]
            cols = ("id", "name", "tactics") if any(c.group for c in items) else ("id", "name")
            for col in cols:
                gap.add_column(col, overflow="fold")
            for c in items:
                gap.add_row(c.id, c.name, *([c.group or ""] if len(cols) == 3 else []))
            console.print(gap)


def register(app: typer.Typer) -> None:
    app.add_typer(hazards_app, name="hazards")
