"""CLI commands for the hazard taxonomy: ``airisk hazards list`` and ``airisk hazards crosswalk FRAMEWORK``."""

from __future__ import annotations

import typer

from airisk.cli._common import console, group

hazards_app = group("Browse the hazard taxonomy and its crosswalks.")


@hazards_app.command("list")
def list_cmd(definitions: bool = typer.Option(False, "--definitions", help="Also show each hazard's definition.")) -> None:
    """Hazard codes with name, group and Llama Guard categories."""
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
def crosswalk_cmd(framework: str = typer.Argument(..., help="Crosswalk id or framework name, e.g. owasp_llm_2025 or owasp-llm.")) -> None:
    """How each hazard maps onto another framework's categories."""
    from rich.table import Table

    from airisk.taxonomy import HAZARDS, get_crosswalk

    cw = get_crosswalk(framework)
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


def register(app: typer.Typer) -> None:
    app.add_typer(hazards_app, name="hazards")
