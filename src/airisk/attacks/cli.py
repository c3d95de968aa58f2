"""CLI: ``airisk redteam`` (run a campaign) and ``airisk attacks list|show|preview`` (thin wrappers)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(width=160)

attacks_app = typer.Typer(help="Red-team attacks: list them, preview a mutation, show a campaign's results.",
                          no_args_is_help=True)


def _csv(value: Optional[str]) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _pct(x: float | None) -> str:
    return "no data" if x is None else f"{100 * x:.0f}%"


def _ci(ci) -> str:
    return "" if ci is None else f"[{100 * ci[0]:.0f}-{100 * ci[1]:.0f}]"


def print_summary(summary, *, best_rows: int = 20) -> None:
    """The campaign tables: per attack (ASR, uplift, queries), per hazard x attack, best attack per seed."""
    s = summary
    rates = {(r.attack, r.hazard): r for r in s.rates}
    ups = {u.attack: u for u in s.uplift if u.hazard == "all"}
    qs = {q.attack: q for q in s.queries}
    t = Table(title=escape(f"red team · run {s.run_id} · judge {s.judge_id} · {s.seeds} seeds · all hazards"))
    for col in ("attack", "ASR", "95% CI", "k/n", "errors", "uplift vs baseline", "uplift 95% CI",
                "queries to success (mean / median)", "queries spent"):
        t.add_column(col, justify="left" if col == "attack" else "right")
    for a in s.attacks:
        r, u, q = rates[(a, "all")], ups.get(a), qs[a]
        t.add_row(
            escape(a), _pct(r.asr), _ci(r.ci), f"{r.k}/{r.n}", str(r.errors) if r.errors else "",
            "" if u is None else ("no data" if u.uplift is None else f"{100 * u.uplift:+.0f} pts"),
            "" if u is None or u.ci is None else f"[{100 * u.ci[0]:+.0f}, {100 * u.ci[1]:+.0f}]",
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
        label: Optional[str] = typer.Option(None, "--label"),
        judge_batch: int = typer.Option(1, "--judge-batch", help="Verdicts grouped per judge call (>1 is faster; see docs on reproducibility)."),
        best_rows: int = typer.Option(20, "--best-rows", help="Rows of the best-attack-per-seed table to print."),
        db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB", help="SQLAlchemy URL (default SQLite under .airisk/)."),
    ) -> None:
        """Run a red-team campaign: baseline + attacks on every seed, judged, stored (kind=redteam)."""
        from airisk.attacks.attacker import Attacker
        from airisk.attacks.campaign import run_campaign, select_seeds
        from airisk.attacks.registry import make_attacks
        from airisk.attacks.results import summarize
        from airisk.errors import ConfigError
        from airisk.judges.factory import make_judge
        from airisk.store import Store
        from airisk.systems.factory import make_system

        atk = make_attacks(attacks)  # fail on unknown names before touching anything else
        need = [a.label for a in atk if a.needs_attacker]
        if need and not attacker:
            raise ConfigError(f"attacks {', '.join(need)} need an attacker model: add --attacker SPEC")
        if budget < 1:
            raise ConfigError("--budget must be at least 1")
        items, ds_meta = _load(dataset)
        hz = _csv(hazards)
        if hz:
            from airisk.taxonomy import get_hazard

            for h in hz:
                get_hazard(h)
        seeds = select_seeds(items, hazards=hz or None, limit=limit)
        if not seeds:
            raise ConfigError(f"no harmful seeds in '{dataset}' after filters (hazards={hz or 'all'})")
        store = Store(db)
        target = make_system(system)
        j = make_judge(judge)
        att = Attacker.from_spec(attacker, store=store) if attacker else None
        config = {"system": target.describe(), "dataset": dataset, "judge": judge, "limit": limit, "hazards": hz,
                  "attack_spec": attacks}

        async def go() -> str:
            try:
                return await run_campaign(store, target, seeds, atk, j, attacker=att, budget=budget,
                                          concurrency=concurrency, run_id=run_id, config=config, datasets=ds_meta,
                                          label=label, include_baseline=not no_baseline, progress=sys.stderr.isatty(),
                                          judge_batch_size=judge_batch)
            finally:
                await target.aclose()
                if att is not None:
                    await att.aclose()
                await j.aclose()

        rid = asyncio.run(go())
        print_summary(summarize(store, rid), best_rows=best_rows)
        console.print(f"run id: [bold]{rid}[/bold] (kind=redteam, store: {store.safe_url}); "
                      f"report: airisk report {rid}")

    @attacks_app.command("list")
    def list_cmd() -> None:
        """Registered attacks and mutators (entry points airisk.attacks / airisk.mutators)."""
        from airisk.attacks.registry import catalog

        t = Table(title=escape("attacks and mutators (chain mutators with +, parameters as name[key=value,...])"))
        for col in ("name", "kind", "needs attacker", "description"):
            t.add_column(col)
        for row in catalog():
            kind = row["kind"] + (" (multi-turn)" if row["multi_turn"] else "")
            t.add_row(row["name"], kind, "yes" if row["needs_attacker"] else "", escape(row["description"]))
        console.print(t)

    @attacks_app.command("show")
    def show(run_id: str, best_rows: int = typer.Option(20, "--best-rows"),
             db: Optional[str] = typer.Option(None, "--db", envvar="AIRISK_DB")) -> None:
        """Print a stored campaign's tables again."""
        from airisk.attacks.results import summarize
        from airisk.store import Store

        print_summary(summarize(Store(db), run_id), best_rows=best_rows)

    @attacks_app.command("preview")
    def preview(spec: str, text: str = typer.Option(..., "--text", help="A request to mutate.")) -> None:
        """Show what a deterministic mutator chain does to a request (no model, nothing stored)."""
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


def _load(dataset: str):
    from airisk import datasets

    path = Path(dataset)
    ds = datasets.load_file(path) if path.suffix.lower() in (".csv", ".jsonl", ".json", ".tsv") or path.exists() \
        else datasets.load_dataset(dataset)
    meta = [{"name": ds.name, "version": ds.version, "sha256": ds.sha256, "path": str(getattr(ds, "path", "") or ""),
             "items": len(ds.items)}]
    return ds.items, meta
