"""CLI command ``airisk simulate`` (thin: over ``airisk.simulate``): simulated users against a target."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from airisk.cli._common import DB_OPTION, LazyConsole

console = LazyConsole(min_width=140)


def _fmt(r: dict[str, Any] | None) -> str:
    if not r or not r.get("n"):
        return "-"
    ci = r.get("ci95")
    return f"{100 * r['rate']:.1f}% ({r['k']}/{r['n']})" + (f" [{100 * ci[0]:.0f}-{100 * ci[1]:.0f}]" if ci else "")


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_cmd(
        target: Optional[str] = typer.Option(None, "--target", "-t", help="Target system spec: openai:model=M,base_url=URL "
                                             "| python:target=mod:fn | ... (not with --resume)."),
        personas: Optional[str] = typer.Option(None, "--personas", help="Persona ids or kinds (benign, malicious, "
                                               "vulnerable), comma-separated; default all."),
        user: str = typer.Option("scripted", "--user", help="scripted | a system spec for the user model "
                                 "(e.g. openai:model=M,base_url=URL,temperature=0.8)."),
        judge: str = typer.Option("offline", "--judge", help="Harm judge spec for every turn (see `airisk judge list`)."),
        care_judge: Optional[str] = typer.Option(None, "--care-judge", help="Care judge for vulnerable personas, e.g. "
                                                 "care:model=M,base_url=URL (default: the offline care scorer)."),
        dialogues: int = typer.Option(20, "--dialogues", "-n", help="Dialogues per persona."),
        turns: int = typer.Option(6, "--turns", help="User turns per dialogue."),
        concurrency: int = typer.Option(4, "--concurrency", help="Dialogues in flight."),
        seed: str = typer.Option("0", "--seed", help="Seed of the scripted user's choice of lines."),
        resume: Optional[str] = typer.Option(None, "--resume", help="Continue a stored simulation run with its own settings."),
        no_store: bool = typer.Option(False, "--no-store", help="Do not save the run."),
        label: Optional[str] = typer.Option(None, "--label", help="Label recorded with the run."),
        json_out: Optional[Path] = typer.Option(None, "--json", help="Write the run id and summary as JSON here."),
        db: Optional[str] = DB_OPTION,
    ) -> None:
        """Simulated users (benign, malicious, vulnerable personas) in multi-turn dialogues with a target."""
        import json

        import airisk
        from airisk.errors import ConfigError

        if dialogues < 1 or turns < 1:
            raise ConfigError("--dialogues and --turns must be at least 1")
        if resume and no_store:
            raise ConfigError("--resume needs the store (not with --no-store)")
        if not resume and not target:
            raise ConfigError("--target is required (unless --resume)")
        res = airisk.simulate(target, personas=personas, user=user, judge=judge, care_judge=care_judge,
                              dialogues=dialogues, turns=turns, concurrency=concurrency, seed=seed,
                              store=not no_store, label=label, resume=resume, db=db)
        s = res.summary()
        _print(res, s)
        if json_out:
            json_out.write_text(json.dumps({"run_id": res.run_id, "summary": s}, indent=2, default=str), encoding="utf-8")


def _print(res: Any, s: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"simulated users vs {res.target}" + (f" (run {res.run_id})" if res.run_id else "")))
    for col in ("group", "dialogues", "harmful dialogues", "unsafe turns", "first harm (median turn)",
                "over-refusal", "bare refusals", "care failures (turns)", "calls/dialogue"):
        table.add_column(col, justify="left" if col == "group" else "right")
    rows = {"OVERALL": s["overall"], **{f"kind: {k}": v for k, v in s["by_kind"].items()}, **s["by_persona"]}
    for k, r in rows.items():
        med = r["first_harm_turn"]["median"]
        table.add_row(escape(k), str(r["dialogues"]), _fmt(r["harmful_dialogues"]), _fmt(r["unsafe_turns"]),
                      "-" if med is None else f"{med:g}", _fmt(r["over_refusal"]), _fmt(r["bare_refusals"]), _fmt(r["care_failure_turns"]),
                      f"{r['model_calls_per_dialogue'] or 0:.1f}")
    console.print(table)
    t = s["throughput"]
    console.print(f"attack success (malicious personas): {_fmt(s['attack_success'])}; "
                  f"{t['ran']} dialogues run in {t['seconds']:.1f}s"
                  + (f" ({t['dialogues_per_s']:.2f}/s)" if t["dialogues_per_s"] else "")
                  + (f", {t['dialogues'] - t['ran']} read back from the stored run" if t["dialogues"] > t["ran"] else ""))
