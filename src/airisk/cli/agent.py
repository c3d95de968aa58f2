"""``airisk agent ...``: list/validate scenarios, import public suites, run an agent (optionally gated)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import typer

from airisk.cli._common import DB_HELP, console, group
from airisk.errors import ConfigError
agent_app = group("Evaluate tool-using agents on safety scenarios.")

SOURCE_HELP = "builtin, toolemu, agent-safetybench, or a scenario file/directory (YAML/JSON/JSONL)"


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")


def _fmt(r: dict[str, Any] | None) -> str:
    if not r or not r.get("n"):
        return "-"
    ci = r.get("ci95")
    return f"{r['rate'] * 100:.0f}% {r['k']}/{r['n']}" + (f" [{ci[0] * 100:.0f}-{ci[1] * 100:.0f}]" if ci else "")


def _print_summary(title: str, summary: dict[str, Any], by: str = "by_risk_category") -> None:
    from rich.table import Table

    table = Table(title=title)
    cols = [("unsafe", "unsafe (any)"), ("predicate", "predicate"), ("gate", "gate rules"), ("judge", "judge"),
            ("completed", "completed")]
    cols = [c for c in cols if c[0] in ("unsafe", "completed") or summary["overall"].get(c[0])]
    for col in ("group", "n", *(c[1] for c in cols), "blocked"):
        table.add_column(col, justify="left" if col == "group" else "right")
    rows = {"OVERALL": summary["overall"], **summary.get(by, {})}
    for k, r in rows.items():
        table.add_row(k, str(r["scenarios"]), *(_fmt(r.get(c[0])) for c in cols), str(r.get("blocked_calls", 0)))
    console.print(table)


@agent_app.command("scenarios")
def scenarios_cmd(
    source: str = typer.Argument("builtin", help=SOURCE_HELP),
    show: Optional[str] = typer.Option(None, "--show", help="Print one scenario (by id) as JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print counts as JSON."),
) -> None:
    """Load and validate scenarios; print counts per source, risk category and predicate coverage."""
    from airisk.agents.importers import load_source

    scen = load_source(source)
    if show:
        s = next((x for x in scen if x.id == show), None)
        if s is None:
            raise ConfigError(f"no scenario '{show}' in {source}")
        typer.echo(s.model_dump_json(indent=2, by_alias=True, exclude_none=True))
        return
    counts = {
        "scenarios": len(scen), "with_unsafe_predicate": sum(s.unsafe is not None for s in scen),
        "with_completion_predicate": sum(s.completion is not None for s in scen),
        "without_tools": sum(not s.tools for s in scen),
        "by_risk_category": dict(Counter(s.risk_category for s in scen).most_common()),
    }
    if as_json:
        typer.echo(json.dumps(counts, indent=2))
        return
    console.print(f"{counts['scenarios']} valid scenarios from {source}: {counts['with_unsafe_predicate']} with an unsafe "
                  f"predicate, {counts['with_completion_predicate']} with a completion predicate, "
                  f"{counts['without_tools']} without tools")
    from rich.table import Table

    table = Table(title="risk categories")
    table.add_column("risk category")
    table.add_column("scenarios", justify="right")
    for k, v in counts["by_risk_category"].items():
        table.add_row(k, str(v))
    console.print(table)


@agent_app.command("import")
def import_cmd(
    suite: str = typer.Argument(..., help="toolemu or agent-safetybench"),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file to write the converted scenarios to."),
    root: Optional[Path] = typer.Option(None, help="Folder of the suite (default: $AIRISK_DATA_PATH/<suite>)."),
) -> None:
    """Convert a public suite into scenario JSONL (written outside the project), with import counts."""
    from airisk.agents.importers import IMPORTERS

    if suite not in IMPORTERS:
        raise ConfigError(f"unknown suite '{suite}' (available: {', '.join(IMPORTERS)})")
    rep = IMPORTERS[suite](root)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for s in rep.scenarios:
            f.write(s.model_dump_json(by_alias=True, exclude_none=True) + "\n")
    typer.echo(json.dumps(rep.counts()))
    for sk in rep.skipped[:20]:
        typer.echo(f"skipped {sk['id']}: {sk['reason']}", err=True)
    console.print(f"wrote {rep.imported} scenarios to {out}")


@agent_app.command("run")
def run_cmd(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    agent: str = typer.Option(..., "--agent", "-a", help="careful | reckless | tricked | python:mod:fn | "
                              "openai:model=M,base_url=URL | replay:path=file.jsonl"),
    gate: bool = typer.Option(False, "--gate", help="Put the action gate between the agent and the tools."),
    compare_gate: bool = typer.Option(False, "--compare-gate", help="Run without and with the gate; report the change."),
    policy: str = typer.Option("builtin:default", help="Guard policy the gate starts from (scenario tools are added)."),
    gate_detector: bool = typer.Option(True, help="Run the gate's rules over executed calls as a detector."),
    judge: Optional[str] = typer.Option(None, help="Trajectory judge: model=M,base_url=URL[,api_key_env=VAR]."),
    emulator_model: Optional[str] = typer.Option(None, help="Model emulator for tools marked emulator: model "
                                                 "(model=M,base_url=URL)."),
    limit: Optional[int] = typer.Option(None, help="First N scenarios only."),
    max_steps: int = typer.Option(10, help="Agent steps per scenario."),
    concurrency: int = typer.Option(4, help="Scenarios in flight."),
    by: str = typer.Option("risk", help="Table rows: risk | mode | source."),
    db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help=DB_HELP),
    store_url: Optional[str] = typer.Option(None, "--store", hidden=True,
                                            help="Deprecated alias of --db (kept for old scripts)."),
    no_store: bool = typer.Option(False, help="Do not save the run."),
    label: Optional[str] = typer.Option(None, help="Label recorded with the run."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the summary (and gate effect) as JSON."),
) -> None:
    """Run an agent on scenarios and print unsafe-action and completion rates (optionally with the gate)."""
    import airisk

    rows = {"risk": "by_risk_category", "mode": "by_failure_mode", "source": "by_source"}.get(by)
    if rows is None:
        raise ConfigError("--by must be risk, mode or source")
    if store_url:
        typer.secho("warning: --store is deprecated; use --db", err=True, fg=typer.colors.YELLOW)
    res = airisk.run_agents(source, agent, gate=gate, compare_gate=compare_gate, policy=policy,
                            gate_detector=gate_detector, judge=judge, emulator_model=emulator_model, limit=limit,
                            max_steps=max_steps, concurrency=concurrency, store=not no_store, label=label,
                            db=db or store_url)
    for key, what in (("without_gate", "no gate"), ("with_gate", "gate in the loop")):
        r = getattr(res, key)
        if r is not None:
            _print_summary(f"{agent} on {source}: {what}" + (f" (run {r.run_id})" if r.run_id else ""), r.summary(), rows)
    eff = res.gate_effect
    if eff is not None:
        console.print(
            f"gate effect: unsafe outcome {_fmt(eff['predicate']['without_gate'])} -> "
            f"{_fmt(eff['predicate']['with_gate'])}; task completion {_fmt(eff['completed']['without_gate'])}"
            f" -> {_fmt(eff['completed']['with_gate'])}; blocked calls {eff['blocked_calls']}")
    if json_out:
        json_out.write_text(json.dumps(res.to_json(), indent=2, default=str), encoding="utf-8")


@agent_app.command("serve-scripted")
def serve_scripted_cmd(
    port: int = typer.Option(8012, help="Port on 127.0.0.1."),
    latency: float = typer.Option(0.0, help="Seconds per request."),
) -> None:
    """Serve the scripted agents (model = careful | reckless | tricked) over the OpenAI protocol."""
    import uvicorn

    from airisk.agents.examples import scripted_responder
    from airisk.testing.openai_server import build_app

    app, _ = build_app(scripted_responder, latency=latency)
    console.print(f"READY http://127.0.0.1:{port}/v1 (models: careful, reckless, tricked)")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
