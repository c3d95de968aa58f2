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
    source: Optional[str] = typer.Argument(None, help=SOURCE_HELP + " (not with --resume)"),
    agent: Optional[str] = typer.Option(None, "--agent", "-a", help="careful | reckless | tricked | python:mod:fn | "
                                        "openai:model=M,base_url=URL | replay:path=file.jsonl"),
    gate: bool = typer.Option(False, "--gate", help="Put the action gate between the agent and the tools."),
    scan: bool = typer.Option(False, "--scan", help="Put the tool-output injection scanner in the loop."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a stored agent run (killed or failed): "
                                         "runs only the scenarios it has no result for, with the run's own settings."),
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
    executor: str = typer.Option("local", "--executor", help="local (this process) or ray (scenarios spread over a Ray cluster, docs/distributed.md)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --executor ray: 'auto' or ray://host:port joins a cluster; default starts a local Ray."),
    workers: Optional[int] = typer.Option(None, "--workers", help="With --executor ray: worker processes (default: the cluster's CPUs)."),
) -> None:
    """Run an agent on scenarios and print unsafe-action and completion rates (optionally with the gate).

    Results are stored per scenario as they finish; `--resume RUN_ID` continues a run that was killed.
    """
    from airisk.distributed.options import ray_options

    opts = ray_options(executor, ray_address, workers)
    from airisk._api import _emulator, _trajectory_judge
    from airisk.agents.evaluate import gate_effect, run_suite
    from airisk.agents.importers import load_source
    from airisk.agents.loop import make_agent

    if store_url:
        typer.secho("warning: --store is deprecated; use --db", err=True, fg=typer.colors.YELLOW)
    store_url = db or store_url
    if resume:
        if no_store or compare_gate:
            raise ConfigError("--resume needs the store and resumes one run (not with --no-store or --compare-gate)")
        from airisk.store import Store

        cfg = Store(store_url).get_run(resume).config
        if not cfg.get("agent_spec") or not cfg.get("source"):
            raise ConfigError(f"run {resume} was not started by `airisk agent run` with a resumable config")
        source, agent, policy = cfg["source"], cfg["agent_spec"], cfg.get("policy", policy)
        gate, scan, limit, max_steps = bool(cfg.get("gate_in_loop")), bool(cfg.get("scanner_in_loop")), cfg.get("limit"), cfg.get("max_steps", max_steps)
    if not source or not agent:
        raise ConfigError("agent run needs SOURCE and --agent (or --resume RUN_ID)")
    scen = load_source(source)[:limit] if limit else load_source(source)
    if not scen:
        raise ConfigError(f"no scenarios in {source}")
    rows = {"risk": "by_risk_category", "mode": "by_failure_mode", "source": "by_source"}.get(by)
    if rows is None:
        raise ConfigError("--by must be risk, mode or source")
    scenario_gate = None
    if gate or compare_gate or gate_detector:
        from airisk.agents.gating import ScenarioGate

        scenario_gate = ScenarioGate(policy)
    judge_obj = _trajectory_judge(judge) if judge else None
    emu = _emulator(emulator_model) if emulator_model else None
    store = None
    if not no_store:
        from airisk.store import Store

        store = Store(store_url)

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {"source": source, "agent": agent, "scenarios": len(scen)}
        common = dict(detector_gate=scenario_gate if gate_detector else None, judge=judge_obj, max_steps=max_steps,
                      concurrency=concurrency, model_emulator=emu, store=store, label=label, resume=resume,
                      scanner=_scanner() if scan else None)
        base_cfg = {"source": source, "policy": policy, "agent_spec": agent, "limit": limit}

        async def suite(agent_obj: Any, gated: bool, cfg: dict[str, Any]) -> Any:
            if executor == "local":
                return await run_suite(scen, agent_obj, gate=scenario_gate if gated else None, config=cfg, **common)
            from airisk.distributed.agents import SuiteParts, run_suite_on_ray

            parts = SuiteParts(agent=agent, gate=gated, policy=policy, gate_detector=gate_detector, judge=judge,
                               emulator_model=emulator_model, scan=scan, max_steps=max_steps)
            return await run_suite_on_ray(store, scen, agent_obj, parts, opts=opts,
                                          gate=scenario_gate if gated else None, config=cfg,
                                          **{k: v for k, v in common.items() if k not in ("store", "max_steps")})

        ag = make_agent(agent)
        try:
            base = None
            if not gate or compare_gate:
                base = await suite(ag, False, base_cfg)
                out["without_gate"] = {"run_id": base.run_id, "summary": base.summary()}
                _print_summary(f"{agent} on {source}: no gate" + (f" (run {base.run_id})" if base.run_id else ""),
                               base.summary(), rows)
            if gate or compare_gate:
                ag2 = make_agent(agent)  # a fresh agent: replay cursors and client state restart
                cfg = {**base_cfg, **({"compare_with": base.run_id} if base and base.run_id else {})}
                gated = await suite(ag2, True, cfg)
                await ag2.aclose()
                out["with_gate"] = {"run_id": gated.run_id, "summary": gated.summary()}
                _print_summary(f"{agent} on {source}: gate in the loop" + (f" (run {gated.run_id})" if gated.run_id else ""),
                               gated.summary(), rows)
                if base is not None:
                    eff = gate_effect(base, gated)
                    out["gate_effect"] = eff
                    console.print(
                        f"gate effect: unsafe outcome {_fmt(eff['predicate']['without_gate'])} -> "
                        f"{_fmt(eff['predicate']['with_gate'])}; task completion {_fmt(eff['completed']['without_gate'])}"
                        f" -> {_fmt(eff['completed']['with_gate'])}; blocked calls {eff['blocked_calls']}")
        finally:
            await ag.aclose()
            if judge_obj is not None:
                await judge_obj.aclose()
        return out

    import asyncio

    result = asyncio.run(go())
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")


def _scanner() -> Any:
    from airisk.guard.injection import InjectionScanner

    return InjectionScanner()




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


def _csv(v: Optional[str]) -> Optional[list[str]]:
    return [x.strip() for x in v.split(",") if x.strip()] if v else None


@agent_app.command("attack")
def attack_cmd(
    source: Optional[str] = typer.Argument(None, help=SOURCE_HELP + " (not with --resume)"),
    agent: Optional[str] = typer.Option(None, "--agent", "-a", help="careful | reckless | tricked | python:mod:fn | "
                                        "openai:model=M,base_url=URL"),
    defences: str = typer.Option("none,gate,scanner,gate+scanner", help="Comma list of: none, gate, scanner, gate+scanner "
                                 "(one stored run each)."),
    types: Optional[str] = typer.Option(None, help="Injection types (default all): goal_hijack, data_exfiltration, "
                                        "privilege_escalation, tool_misuse."),
    placements: Optional[str] = typer.Option(None, help="Placements (default all): prepend, append, field, hidden."),
    obfuscations: str = typer.Option("none", help="Comma list: none and/or mutators (base64, rot13, leetspeak, "
                                     "zero_width, homoglyphs, spacing, ...)."),
    styles: Optional[str] = typer.Option(None, help="Template styles (default all): override, fake_system, request."),
    policy: str = typer.Option("builtin:default", help="Guard policy the gate starts from."),
    audit_url: Optional[str] = typer.Option(None, "--audit", help="Audit log URL for the scanner's findings "
                                            "(default: not audited)."),
    limit: Optional[int] = typer.Option(None, help="First N scenarios only."),
    max_steps: int = typer.Option(10, help="Agent steps per episode."),
    concurrency: int = typer.Option(4, help="Episodes in flight."),
    no_clean: bool = typer.Option(False, help="Skip the clean (payload-free) control runs."),
    store_url: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help="Store URL (default $AIRISK_DB / .airisk)."),
    no_store: bool = typer.Option(False, help="Do not save the runs."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a stored agent-attack run with its own settings."),
    label: Optional[str] = typer.Option(None, help="Label recorded with the runs."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the summaries as JSON."),
) -> None:
    """Indirect prompt injection: payloads planted in tool outputs; attack success per type x placement."""
    from airisk.agents.importers import load_source
    from airisk.agents.injection import plan_cases, run_campaign
    from airisk.agents.loop import make_agent

    store = None
    if not no_store:
        from airisk.store import Store

        store = Store(store_url)
    if resume:
        if store is None:
            raise ConfigError("--resume needs the store (not with --no-store)")
        cfg = store.get_run(resume).config
        plan = cfg.get("plan") or {}
        if not plan or not cfg.get("agent_spec"):
            raise ConfigError(f"run {resume} was not started by `airisk agent attack`")
        source, agent, limit = plan["source"], cfg["agent_spec"], plan.get("limit")
        types, placements, obfuscations, styles = plan.get("types"), plan.get("placements"), plan.get("obfuscations"), plan.get("styles")
        defences, policy, max_steps, no_clean = cfg["defence"], cfg.get("policy", policy), cfg.get("max_steps", max_steps), not cfg.get("clean_runs", True)
    if not source or not agent:
        raise ConfigError("agent attack needs SOURCE and --agent (or --resume RUN_ID)")
    scen = load_source(source)
    scen = scen[:limit] if limit else scen
    def as_list(v: Any) -> Any:
        return v if isinstance(v, list) else _csv(v)

    plan = {"source": source, "limit": limit, "types": as_list(types), "placements": as_list(placements),
            "obfuscations": as_list(obfuscations) or ["none"], "styles": as_list(styles)}
    cases, skipped = plan_cases(scen, types=plan["types"], placements=plan["placements"],
                                obfuscations=plan["obfuscations"], styles=plan["styles"])
    if not cases:
        raise ConfigError(f"no injection case applies to {source}: {dict(skipped)}")
    console.print(f"{len(cases)} cases from {len(scen)} scenarios; skipped: {dict(skipped) or 'none'}")
    gate_obj = _scenario_gate(policy)
    audit = None
    if audit_url:
        from airisk.guard.audit import AuditLog

        audit = AuditLog(audit_url)
    out: dict[str, Any] = {"source": source, "agent": agent, "cases": len(cases), "skipped": dict(skipped), "runs": {}}

    async def go() -> None:
        for d in _csv(defences) or ["none"]:
            ag = make_agent(agent)
            try:
                res = await run_campaign(
                    cases, ag, defence=d, gate=gate_obj, audit=audit, max_steps=max_steps, concurrency=concurrency,
                    clean_runs=not no_clean, store=store, label=label, resume=resume, skipped=dict(skipped),
                    config={"agent_spec": agent, "policy": policy, "plan": plan})
            finally:
                await ag.aclose()
            out["runs"][d] = {"run_id": res.run_id, "summary": res.summary()}
            _print_attack(f"{agent} on {source}, defence: {d}" + (f" (run {res.run_id})" if res.run_id else ""), res.summary())

    import asyncio

    asyncio.run(go())
    if json_out:
        json_out.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")


def _scenario_gate(policy: str) -> Any:
    from airisk.agents.gating import ScenarioGate

    return ScenarioGate(policy)


def _print_attack(title: str, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in ("injection type x placement", "cases", "attack success", "clean goal", "task done", "task done (clean)",
                "scanner flagged", "blocked"):
        table.add_column(col, justify="left" if col.startswith("injection") else "right")
    rows = {"OVERALL": summary["overall"], **summary["by_type"], **summary["by_type_placement"]}
    for k, r in rows.items():
        table.add_row(k, str(r["cases"]), _fmt(r["attack_success"]), _fmt(r["clean_goal"]), _fmt(r["completed"]),
                      _fmt(r["clean_completed"]), _fmt(r["scanner_flagged"]), str(r["blocked_calls"]))
    console.print(table)


@agent_app.command("generate")
def generate_cmd(
    risk: str = typer.Option(..., "--risk", help="Risk category the scenarios test, e.g. 'Privacy breach'."),
    tools: str = typer.Option(..., "--tools", help="Toolkit: a YAML/JSON tools file, builtin:SCENARIO (its tools) or "
                              "toolemu:TOOLKIT (from $AIRISK_DATA_PATH/toolemu)."),
    n: int = typer.Option(5, "-n", help="Scenarios to write."),
    generator: str = typer.Option(..., "--generator", "-g", help="Generator model: a system spec, e.g. "
                                  "openai:model=M,base_url=URL,temperature=0.9."),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file the accepted scenarios are appended to "
                             "(existing scenarios in it count for de-duplication)."),
    max_attempts: Optional[int] = typer.Option(None, "--max-attempts", help="Generator calls at most (default 3 x N)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the counts (accepted, rejected by reason) as JSON."),
) -> None:
    """Generate new validated scenarios with a model: invalid or duplicate ones are counted, never written."""
    import asyncio

    from airisk.agents.generate import generate_scenarios, write_scenarios
    from airisk.agents.scenario import load_scenarios
    from airisk.systems.factory import make_system

    existing = load_scenarios(out) if out.exists() and out.stat().st_size else []
    system = make_system(generator)

    async def go() -> Any:
        try:
            return await generate_scenarios(risk, tools, n, system, max_attempts=max_attempts, existing=existing)
        finally:
            await system.aclose()

    rep = asyncio.run(go())
    if rep.accepted:
        write_scenarios(rep.accepted, out)
    c = rep.counts()
    console.print(f"{c['accepted']} of {n} scenarios written to {out} after {c['attempts']} generator calls "
                  f"({c['reachable_by_reckless']} reached their unsafe outcome with the scripted reckless agent); "
                  f"rejected {c['rejected_total']}: {c['rejected'] or 'none'}", markup=False)
    for reason, msgs in c["examples"].items():
        for m in msgs[:2]:
            console.print(f"  {reason}: {m}", markup=False)
    if json_out:
        json_out.write_text(json.dumps({"out": str(out), **c}, indent=2), encoding="utf-8")
    if len(rep.accepted) < n:
        raise typer.Exit(1)
