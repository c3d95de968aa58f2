"""CLI: ``airisk redteam`` (run a campaign) and ``airisk attacks list|show|preview`` (thin wrappers)."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer

from airisk.cli._common import DB_OPTION, LazyConsole, csv, group

console = LazyConsole(width=160)

attacks_app = group("Red-team attacks: list them, preview a mutation, show a campaign's results.")


def _pct(x: float | None) -> str:
    return "no data" if x is None else f"{100 * x:.0f}%"


def _ci(ci: Any) -> str:
    return "" if ci is None else f"[{100 * ci[0]:.0f}-{100 * ci[1]:.0f}]"


def print_summary(summary: Any, *, best_rows: int = 20) -> None:
    """The campaign tables: per attack (ASR, uplift, queries), per hazard x attack, best attack per seed."""
    from rich.markup import escape
    from rich.table import Table

    s = summary
    rates = {(r.attack, r.hazard): r for r in s.rates}
    ups = {u.attack: u for u in s.uplift if u.hazard == "all"}
    qs = {q.attack: q for q in s.queries}
    t = Table(title=escape(f"red team · run {s.run_id} · judge {s.judge_id} · {s.seeds} seeds · all hazards"))
    for col in ("attack", "ASR", "95% CI", "k/n", "errors", "uplift vs baseline", "uplift 95% CI (paired)",
                "p (McNemar)", "queries to success (mean / median)", "queries spent"):
        t.add_column(col, justify="left" if col == "attack" else "right")
    for a in s.attacks:
        r, u, q = rates[(a, "all")], ups.get(a), qs[a]
        t.add_row(
            escape(a), _pct(r.asr), _ci(r.ci), f"{r.k}/{r.n}", str(r.errors) if r.errors else "",
            "" if u is None else ("no data" if u.uplift is None else f"{100 * u.uplift:+.0f} pts"),
            "" if u is None or u.ci is None else f"[{100 * u.ci[0]:+.0f}, {100 * u.ci[1]:+.0f}]",
            "" if u is None or u.p_value is None else f"{u.p_value:.3g}",
            "" if q.mean is None else f"{q.mean:.2f} / {q.median:g}", str(q.total_queries),
        )
    console.print(t)
    h = Table(title="attack success rate per hazard (k/n, 95% Wilson interval)")
    h.add_column("hazard")
    for a in s.attacks:
        h.add_column(escape(a), justify="right")
    for hz in s.hazards:
        cells = []
        for a in s.attacks:
            r = rates[(a, hz)]
            cells.append("no data" if r.asr is None else escape(f"{_pct(r.asr)} {r.k}/{r.n}\n{_ci(r.ci)}"))
        h.add_row(hz, *cells)
    console.print(h)
    tally: dict[str, int] = {}
    for row in s.best.values():
        key = row["attack"] or "none (held)"
        tally[key] = tally.get(key, 0) + 1
    b = Table(title=escape("best attack per seed (fewest queries; ties: listed first) · tally: "
                           + ", ".join(f"{k} {v}" for k, v in sorted(tally.items(), key=lambda kv: -kv[1]))))
    for col in ("seed", "hazard", "best attack", "queries", "succeeded with"):
        b.add_column(col)
    for seed, row in list(s.best.items())[:best_rows]:
        b.add_row(escape(seed), escape(row["hazard"]), escape(row["attack"] or "none (held)"),
                  "" if row["queries"] is None else str(row["queries"]), escape(", ".join(row["succeeded"])))
    if best_rows > 0:
        console.print(b)
    if len(s.best) > best_rows:
        console.print(f"... {len(s.best) - best_rows} more seeds (airisk attacks show {s.run_id} --best-rows N)")
    errs = [p for p in s.pairs if p.errors]
    if errs:
        console.print(f"[yellow]{len(errs)} seed x attack pair(s) recorded errors, e.g. "
                      + escape(f"{errs[0].seed_id} / {errs[0].attack}: {errs[0].errors[0][:160]}"), highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("redteam")
    def redteam(
        system: str = typer.Option(..., "--system", "-s", help="Target system spec, e.g. openai:model=m,base_url=... or python:target=mod:fn"),
        dataset: str = typer.Option(..., "--dataset", "-d", help="Seed prompts: catalog name or JSONL/CSV path."),
        attacks: str = typer.Option(..., "--attacks", "-a", help="Comma-separated attacks; chain mutators with + (e.g. base64,roleplay+past_tense,crescendo)."),
        attacker: Optional[str] = typer.Option(None, "--attacker", help="Attacker model spec (for paraphrase/translate/launder_llm/crescendo/pair)."),
        judge: str = typer.Option("offline", "--judge", "-j", help="Judge spec deciding success."),
        budget: int = typer.Option(10, "--budget", help="Max target queries per seed per attack."),
        limit: Optional[int] = typer.Option(None, "--limit", help="Max seeds (taken round-robin across hazards)."),
        hazards: Optional[str] = typer.Option(None, "--hazards", help="Comma-separated hazard codes."),
        concurrency: int = typer.Option(8, "--concurrency", help="Seed x attack pairs in flight."),
        no_baseline: bool = typer.Option(False, "--no-baseline", help="Skip the un-mutated baseline (no uplift then)."),
        run_id: Optional[str] = typer.Option(None, "--run-id", help="Resume/extend this run id."),
        label: Optional[str] = typer.Option(None, "--label", help="A human label for the run."),
        judge_batch: int = typer.Option(1, "--judge-batch", help="Verdicts grouped per judge call (>1 is faster; see docs on reproducibility)."),
        best_rows: int = typer.Option(20, "--best-rows", help="Rows of the best-attack-per-seed table to print."),
        executor: str = typer.Option("local", "--executor", help="local (this process) or ray (seed x attack pairs spread over a Ray cluster, docs/distributed.md)."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --executor ray: 'auto' or ray://host:port joins a cluster; default starts a local Ray."),
        workers: Optional[int] = typer.Option(None, "--workers", help="With --executor ray: worker processes (default: the cluster's CPUs)."),
        db: Optional[str] = DB_OPTION,
    ) -> None:
        """Run a red-team campaign: baseline + attacks on every seed, judged, stored (kind=redteam)."""
        import airisk
        from airisk.distributed.options import ray_options

        opts = ray_options(executor, ray_address, workers)

        summary = airisk.redteam(system, dataset, attacks, attacker=attacker, judge=judge, budget=budget, limit=limit,
                                 hazards=csv(hazards), concurrency=concurrency, baseline=not no_baseline, run_id=run_id,
                                 label=label, judge_batch=judge_batch, progress=sys.stderr.isatty(), db=db,
                                 executor=executor, ray=opts)
        print_summary(summary, best_rows=best_rows)
        console.print(f"run id: [bold]{summary.run_id}[/bold] (kind=redteam, store: {airisk.open_store(db).safe_url}); "
                      f"report: airisk report {summary.run_id}")

    @attacks_app.command("list")
    def list_cmd() -> None:
        """Registered attacks and mutators (entry points airisk.attacks / airisk.mutators)."""
        from rich.markup import escape
        from rich.table import Table

        from airisk.attacks.registry import catalog

        t = Table(title=escape("attacks and mutators (chain mutators with +, parameters as name[key=value,...])"))
        for col in ("name", "kind", "needs attacker", "description"):
            t.add_column(col)
        for row in catalog():
            kind = row["kind"] + (" (multi-turn)" if row["multi_turn"] else "")
            t.add_row(row["name"], kind, "yes" if row["needs_attacker"] else "", escape(row["description"]))
        console.print(t)

    @attacks_app.command("show")
    def show(run_id: str = typer.Argument(..., help="Red-team run id (or unique prefix)."),
             best_rows: int = typer.Option(20, "--best-rows", help="Rows of the best-attack-per-seed table to print."),
             db: Optional[str] = DB_OPTION) -> None:
        """Print a stored campaign's tables again."""
        import airisk
        from airisk.attacks.results import summarize

        print_summary(summarize(airisk.open_store(db), run_id), best_rows=best_rows)

    @attacks_app.command("preview")
    def preview(spec: str = typer.Argument(..., help="Mutator chain, e.g. base64 or roleplay[variant=1]+past_tense."),
                text: str = typer.Option(..., "--text", help="A request to mutate.")) -> None:
        """Show what a deterministic mutator chain does to a request (no model, nothing stored)."""
        from rich.markup import escape

        from airisk.attacks.attack import ChainAttack
        from airisk.attacks.registry import make_attack
        from airisk.errors import ConfigError
        from airisk.types import Item

        a = make_attack(spec)
        if not isinstance(a, ChainAttack):
            raise ConfigError(f"'{spec}' is a multi-turn attack; preview works on mutator chains")
        for att in a.chain.apply(Item(id="preview", prompt=text)):
            console.rule(escape(" + ".join(f"{st.name}{'' if not v else f' (variant {v})'}" for st, v in zip(att.chain, att.variant))))
            if att.system:
                console.print(f"[system] {att.system}", markup=False)
            console.print(att.text, markup=False)

    app.add_typer(attacks_app, name="attacks")
