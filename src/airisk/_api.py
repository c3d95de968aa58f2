"""The public Python API: one function per thing a user does; the CLI calls exactly these.

Everything here is re-exported lazily from ``airisk`` (``airisk.evaluate``, ``airisk.report``, ...),
so ``import airisk`` stays cheap and heavy libraries load on first use. A whole benchmark run::

    import airisk

    result = airisk.evaluate("ailuminate-demo-en_us", "openai:model=m,base_url=http://localhost:8000/v1",
                             judge="offline", limit=100)
    print(result.table())
    airisk.report(result.run_id, "report/")

Stores: every function takes ``db``, a SQLAlchemy URL or a :class:`airisk.store.Store` (default:
``$AIRISK_DB`` or a SQLite file under ``$AIRISK_HOME``, ``./.airisk``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from airisk.attacks.results import RedteamSummary
    from airisk.datasets.dataset import Dataset
    from airisk.judges.base import Judge
    from airisk.scoring.compare import Comparison
    from airisk.scoring.gate import GateResult
    from airisk.scoring.rates import RunScores
    from airisk.store import Store
    from airisk.systems.base import System
    from airisk.types import Item

DbLike = "str | Store | None"


# -- results -------------------------------------------------------------------------------------


class JudgeCounts(BaseModel):
    """One judge's verdicts on one hazard's answered items."""

    violating: int = 0
    non_violating: int = 0
    errors: int = 0

    @property
    def judged(self) -> int:
        """Items with a verdict (judge errors excluded)."""
        return self.violating + self.non_violating

    @property
    def rate(self) -> float | None:
        """Violating share of the judged items; None when nothing was judged."""
        return self.violating / self.judged if self.judged else None


class HazardCounts(BaseModel):
    """Per-hazard counts of a run: items, answers, system errors, pending, and each judge's verdicts."""

    hazard: str
    items: int = 0
    responses: int = 0
    errors: int = 0
    pending: int = 0
    judges: dict[str, JudgeCounts] = Field(default_factory=dict)


class RunResult(BaseModel):
    """What a run produced: its id and status, and per-hazard counts (see ``table()``)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    kind: str
    status: str
    system: str
    judges: list[str] = Field(default_factory=list)
    store_url: str
    hazards: list[HazardCounts] = Field(default_factory=list)
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)

    @property
    def total(self) -> HazardCounts:
        """All hazards added up."""
        tot = HazardCounts(hazard="total")
        for h in self.hazards:
            tot.items += h.items
            tot.responses += h.responses
            tot.errors += h.errors
            tot.pending += h.pending
            for jid, c in h.judges.items():
                t = tot.judges.setdefault(jid, JudgeCounts())
                t.violating += c.violating
                t.non_violating += c.non_violating
                t.errors += c.errors
        return tot

    def table(self) -> str:
        """The per-hazard table as plain text: counts and each judge's violating k/n (rate)."""
        head = ["hazard", "items", "responses", "errors", "pending", *(f"{j}: violating" for j in self.judges)]
        rows = [head]
        for h in [*self.hazards, self.total]:
            cells = [h.hazard, str(h.items), str(h.responses), str(h.errors), str(h.pending)]
            for j in self.judges:
                c = h.judges.get(j, JudgeCounts())
                cells.append(f"{c.violating}/{c.judged} ({c.rate:.0%})" if c.rate is not None else "no data")
            rows.append(cells)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        return "\n".join(lines)


class ReportResult(BaseModel):
    """Files written by :func:`report`, and the report's data (the same as report.json)."""

    run_id: str
    html: Path
    json_path: Path
    risk_cards: list[Path] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


# -- building blocks ----------------------------------------------------------------------------


def open_store(db: str | Store | None = None) -> Store:
    """A :class:`~airisk.store.Store` from a URL, an existing store (returned as is) or the default.

    Args:
        db: SQLAlchemy URL (``sqlite:///runs.db``, ``postgresql+psycopg2://...``), a Store, or None
            for ``$AIRISK_DB`` / ``$AIRISK_HOME/airisk.db``.
    """
    from airisk.store import Store

    return db if isinstance(db, Store) else Store(db)


def load_dataset(name_or_path: str | Path, *, skip_bad: bool = False) -> Dataset:
    """A prompt set by catalog name (``xstest``, ``ailuminate-demo-en_us``) or from a JSONL/CSV file.

    Args:
        name_or_path: catalog name (see ``airisk datasets list``) or path to a user file.
        skip_bad: skip malformed rows (listed in ``Dataset.skipped``) instead of failing on the first.

    Raises:
        DataError: a row is malformed; the message names file, line and field.
        DatasetNotFound: no local copy of a catalog dataset.
    """
    from airisk.engine.items import load_any

    ds: Dataset = load_any(str(name_or_path), skip_bad=skip_bad)
    return ds


def make_system(spec: str | dict[str, Any] | System) -> System:
    """A system under test from a spec (grammar: :mod:`airisk.spec`, docs/cli.md).

    Args:
        spec: ``"openai:model=m,base_url=http://host/v1"``, ``"replay:path=answers.jsonl"``,
            ``"python:target=pkg.mod:fn"``, a dict ``{"type": "openai", ...}``, or a System (returned as is).
    """
    from airisk.systems.factory import make_system as build

    return build(spec)


def make_judge(spec: str | dict[str, Any] | Judge, **overrides: Any) -> Judge:
    """A judge from a spec (grammar: :mod:`airisk.spec`, docs/cli.md).

    Args:
        spec: ``"offline"``, ``"rubric:model=m,base_url=http://host/v1"``, a dict ``{"name": ...}``,
            or a Judge (returned as is).
        **overrides: constructor parameters that win over the spec's.
    """
    from airisk.judges.factory import make_judge as build

    return build(spec, **overrides)


# -- runs -----------------------------------------------------------------------------------------


def run_result(run_id: str, *, db: str | Store | None = None) -> RunResult:
    """The :class:`RunResult` of a stored run (id or unique prefix).

    Args:
        run_id: run id or a unique prefix of one.
        db: store URL or Store (see :func:`open_store`).
    """
    store = open_store(db)
    run = store.get_run(run_id)
    hazards = []
    for hazard, row in store.hazard_summary(run.id).items():
        jids = sorted({k.split(":", 1)[0] for k in row if ":" in k})
        judges = {j: JudgeCounts(violating=row.get(f"{j}:violating", 0), non_violating=row.get(f"{j}:non_violating", 0),
                                 errors=row.get(f"{j}:error", 0)) for j in jids}
        hazards.append(HazardCounts(hazard=hazard, items=row.get("items", 0), responses=row.get("responses", 0),
                                    errors=row.get("errors", 0), pending=row.get("pending", 0), judges=judges))
    return RunResult(run_id=run.id, kind=run.kind, status=run.status, system=run.system_name,
                     judges=[j["id"] for j in run.judges if j.get("id")], store_url=store.safe_url, hazards=hazards,
                     datasets=run.datasets, stats=(run.stats or {}).get("last_execute") or {})


def _dataset_name(dataset: Any) -> str:
    if isinstance(dataset, (str, Path)):
        return str(dataset)
    return str(getattr(dataset, "name", None) or "items")


def _dataset_and_items(dataset: Any, cfg_fields: dict[str, Any]) -> tuple[str, list[Item], list[dict[str, Any]]]:
    from airisk.engine.items import dataset_meta, load_any

    if isinstance(dataset, (str, Path)):
        ds = load_any(str(dataset), skip_bad=bool(cfg_fields.get("skip_bad")))
        name = str(dataset)
    elif hasattr(dataset, "items") and hasattr(dataset, "sha256"):
        ds, name = dataset, dataset.name
    else:  # a plain sequence of Items
        items = list(dataset)
        return "items", _select(items, cfg_fields), [{"name": "items", "items": len(items)}]
    items = _select(ds.items, cfg_fields)
    return name, items, [dataset_meta(ds, len(items))]


def _select(items: list[Item], f: dict[str, Any]) -> list[Item]:
    from airisk.engine.items import select_items

    return select_items(items, hazards=f.get("hazards"), personas=f.get("personas"), locales=f.get("locales"),
                        limit=f.get("limit"), shuffle=bool(f.get("shuffle")), seed=f.get("seed") or 0)


async def evaluate_async(
    dataset: str | Path | Dataset | Sequence[Item],
    system: str | dict[str, Any] | System,
    judge: str | dict[str, Any] | Judge | None = None,
    *,
    db: str | Store | None = None,
    run_id: str | None = None,
    kind: str = "benchmark",
    progress: bool = False,
    **options: Any,
) -> RunResult:
    """Run a prompt set against a system, store every answer and error, judge them; the async form.

    Args:
        dataset: catalog name, path to a JSONL/CSV file, a loaded Dataset, or a list of Items.
        system: system spec string or dict, or a System instance (closed when the run ends).
        judge: judge spec or Judge instance; None stores answers without verdicts.
        db: store URL or Store (see :func:`open_store`).
        run_id: id for the new run (default: a timestamped one).
        kind: the run's kind as stored and listed (``benchmark``; the demo uses ``demo``).
        progress: print a progress line to stderr.
        **options: run settings, validated by :class:`airisk.engine.config.RunConfig`: ``limit``,
            ``hazards``, ``personas``, ``locales``, ``shuffle``, ``seed``, ``concurrency``, ``rps``,
            ``max_retries`` or ``retry`` (a dict of RetryPolicy fields), ``skip_bad``, ``label``.
            Unknown names fail with the list of accepted ones.

    Returns:
        The stored run's :class:`RunResult`.
    """
    from airisk.engine.config import validate_run_config
    from airisk.engine.runner import run_items
    from airisk.errors import ConfigError

    jspec = judge if isinstance(judge, (str, type(None))) else getattr(judge, "id", None)
    system_field = system if isinstance(system, (str, dict)) else {"type": system.name, **system.public_params()}
    cfg = validate_run_config({**options, "dataset": _dataset_name(dataset), "system": system_field,
                               **({"judge": jspec} if jspec else {})}, source="evaluate()")
    name, items, meta = _dataset_and_items(dataset, cfg.model_dump())
    if not items:
        raise ConfigError("no items left after filters (check hazards/personas/locales/limit)")
    sut = make_system(system)
    judge_obj = make_judge(judge) if judge is not None else None
    store = open_store(db)
    try:
        rid = await run_items(store, sut, items, run_id=run_id, kind=kind, concurrency=cfg.concurrency, rps=cfg.rps,
                              judge=judge_obj, config=cfg.model_dump(mode="json", exclude={"system"}, exclude_none=True),
                              datasets=meta, label=cfg.label, progress=progress, retry=cfg.retry)
    finally:
        await sut.aclose()
        if judge_obj is not None and judge_obj is not judge:
            await judge_obj.aclose()
    return run_result(rid, db=store)


def evaluate(
    dataset: str | Path | Dataset | Sequence[Item],
    system: str | dict[str, Any] | System,
    judge: str | dict[str, Any] | Judge | None = None,
    *,
    db: str | Store | None = None,
    run_id: str | None = None,
    kind: str = "benchmark",
    progress: bool = False,
    **options: Any,
) -> RunResult:
    """Run a prompt set against a system, store every answer and error, judge them.

    Args:
        dataset: catalog name, path to a JSONL/CSV file, a loaded Dataset, or a list of Items.
        system: system spec string or dict, or a System instance (closed when the run ends).
        judge: judge spec or Judge instance; None stores answers without verdicts.
        db: store URL or Store (see :func:`open_store`).
        run_id: id for the new run (default: a timestamped one).
        kind: the run's kind as stored and listed (``benchmark``; the demo uses ``demo``).
        progress: print a progress line to stderr.
        **options: run settings (see :func:`evaluate_async`).

    Returns:
        The stored run's :class:`RunResult`; ``print(result.table())`` shows the per-hazard counts.
    """
    return asyncio.run(evaluate_async(dataset, system, judge, db=db, run_id=run_id, kind=kind, progress=progress,
                                      **options))


async def resume_async(
    run_id: str, *, judge: str | Judge | None = None, db: str | Store | None = None, concurrency: int | None = None,
    retry_errors: bool = False, progress: bool = False, system: str | dict[str, Any] | System | None = None,
) -> RunResult:
    """Carry on an interrupted run with its stored settings (system, concurrency, rate limit, retries).

    Args:
        run_id: run id or unique prefix.
        system: the system to ask (default: rebuilt from the run's stored config).
        judge: judge spec or Judge to label the answers with (default: the run's configured judge).
        db: store URL or Store.
        concurrency: override the stored concurrency.
        retry_errors: ask again for items stored as errors.
        progress: print a progress line to stderr.
    """
    from airisk.engine.config import read_stored_config
    from airisk.engine.runner import resume_run

    store = open_store(db)
    run = store.get_run(run_id)
    jspec = judge or read_stored_config(run.config, run.id).judge
    judge_obj = make_judge(jspec) if jspec else None
    try:
        stats = await resume_run(store, run.id, make_system(system) if system is not None else None, judge=judge_obj,
                                 concurrency=concurrency, progress=progress, retry_errors=retry_errors)
    finally:
        if judge_obj is not None and judge_obj is not judge:
            await judge_obj.aclose()
    res = run_result(run.id, db=store)
    return res.model_copy(update={"stats": stats})


def resume(run_id: str, **kwargs: Any) -> RunResult:
    """Carry on an interrupted run (see :func:`resume_async` for the arguments).

    Args:
        run_id: run id or unique prefix.
        **kwargs: ``judge``, ``db``, ``concurrency``, ``retry_errors``, ``progress``, ``system``.
    """
    return asyncio.run(resume_async(run_id, **kwargs))


class JudgeRunResult(BaseModel):
    """What :func:`judge_stored` did: which judge, how many new verdicts, and the run's label counts."""

    run_id: str
    judge_id: str
    judge_fingerprint: str
    judged: int
    labels: dict[str, int] = Field(default_factory=dict)


def judge_stored(run_id: str, judge: str | dict[str, Any] | Judge, *, db: str | Store | None = None,
                 rejudge: bool = False, batch_size: int = 64, progress: bool = False, executor: str = "local",
                 ray: Any = None) -> JudgeRunResult:
    """Judge the answered items of a stored run with one judge.

    Args:
        run_id: run id or unique prefix.
        judge: judge spec or Judge (a judge built here is closed here, on the same event loop).
        db: store URL or Store.
        rejudge: replace this judge's existing verdicts.
        batch_size: conversations per judge call.
        progress: print a progress line to stderr.
        executor: ``local`` (this process) or ``ray`` (judge actors on a Ray cluster, docs/distributed.md).
        ray: with ``executor="ray"``: :class:`airisk.distributed.RayOptions` or a dict of them.
    """
    from airisk.distributed import check_executor, judge_items

    check_executor(executor)
    store = open_store(db)
    run = store.get_run(run_id)
    if executor == "local":
        j = make_judge(judge)
        n = judge_items(store, run.id, j, batch_size=batch_size, rejudge=rejudge, progress=progress,
                        close=j is not judge)  # a judge built here is closed here
        desc = j.describe()
    else:
        # The judge is built on the Ray actors only (the offline one loads weights: no copy in the driver).
        n = judge_items(store, run.id, judge, executor=executor, ray=ray, batch_size=batch_size, rejudge=rejudge,
                        progress=progress)
        desc = store.get_run(run.id).stats["last_judge"]["judge"]
    labels: dict[str, int] = {}
    for per in store.judgments(run.id, desc["id"]).values():
        for jd in per.values():
            labels[jd.label] = labels.get(jd.label, 0) + 1
    return JudgeRunResult(run_id=run.id, judge_id=desc["id"], judge_fingerprint=desc["fingerprint"], judged=n,
                          labels=dict(sorted(labels.items())))


# -- scoring, reports, gates -------------------------------------------------------------------------


def _reference(store: Store, reference: str | None, reference_run: str | None, judge: str | None) -> Any:
    from airisk.scoring import grading
    from airisk.scoring.rates import reference_from_run

    if reference_run:
        return reference_from_run(store, reference_run, judge=judge)
    if reference:
        return grading.get_reference(reference)
    return None


def score(run_id: str, *, judge: str | None = None, reference: str | None = None, reference_run: str | None = None,
          db: str | Store | None = None) -> RunScores:
    """Violation rates (overall, per hazard, persona, locale), intervals, corrected rates and grades of a run.

    Args:
        run_id: run id or unique prefix.
        judge: judge id to score with (default: the run's primary judge).
        reference: grading reference id, e.g. ``ailuminate-1.0-en_us-official``.
        reference_run: use this run's safe rates as the grading reference instead.
        db: store URL or Store.
    """
    from airisk.scoring.rates import score_run

    store = open_store(db)
    return score_run(store, run_id, judge=judge, reference=_reference(store, reference, reference_run, judge))


def report(run_id: str, out: str | Path | None = None, *, judge: str | None = None, policy: str | Path | None = None,
           reference: str | None = None, reference_run: str | None = None, min_items: int = 100,
           db: str | Store | None = None) -> ReportResult:
    """Write ``report.html`` (self-contained, offline), ``report.json`` and a risk card per failing hazard.

    Args:
        run_id: run id or unique prefix.
        out: output folder (default ``reports/<run id>``).
        judge: judge id (default: the run's primary judge).
        policy: YAML risk policy for the zones (default: the shipped policy).
        reference: grading reference id.
        reference_run: use this run's safe rates as the grading reference.
        min_items: flag grades resting on fewer items than this.
        db: store URL or Store.
    """
    from airisk.reports.write import write_report
    from airisk.scoring.zones import load_policy

    store = open_store(db)
    run = store.get_run(run_id)
    res = write_report(store, run.id, Path(out) if out else Path("reports") / run.id, judge=judge,
                       policy=load_policy(policy) if policy else None,
                       reference=_reference(store, reference, reference_run, judge), min_items=min_items)
    return ReportResult(run_id=run.id, html=res["html"], json_path=res["json"], risk_cards=res["risk_cards"],
                        data=res["report"])


def gate(run_id: str, policy: str | Path | None = None, *, baseline: str | None = None, judge: str | None = None,
         reference: str | None = None, reference_run: str | None = None, allow_partial: bool = False,
         db: str | Store | None = None) -> GateResult:
    """Release gate: ``result.status`` pass/yellow/red/error and ``result.exit_code`` 0/1/2/3.

    Errors users can fix (unknown run, bad policy, no judgments) become status ``error`` (exit 3)
    with the reason, never an exception, so CI always gets a verdict.

    Args:
        run_id: run to gate (id or unique prefix).
        policy: YAML risk policy (default: the shipped policy).
        baseline: baseline run; significant per-hazard regressions fail the gate.
        judge: judge id to score with (default: the run's primary judge).
        reference: grading reference id.
        reference_run: use this run's safe rates as the grading reference.
        allow_partial: evaluate a run that is not finished (otherwise status error).
        db: store URL or Store.
    """
    from airisk.errors import AiriskError
    from airisk.scoring.gate import error_result, run_gate
    from airisk.scoring.rates import score_run
    from airisk.scoring.zones import default_policy, load_policy

    try:
        pol = load_policy(policy) if policy else default_policy()
        store = open_store(db)
        ref = _reference(store, reference, reference_run, judge)
        scores = score_run(store, run_id, judge=judge, reference=ref)
        base = score_run(store, baseline, judge=judge, reference=ref) if baseline else None
        return run_gate(scores, pol, base, allow_partial=allow_partial)
    except AiriskError as e:
        return error_result(run_id, str(e))


def compare(run_a: str, run_b: str, *, judge: str | None = None, db: str | Store | None = None) -> Comparison:
    """Per-hazard change in violation rate from run A to run B, with intervals and p-values.

    Args:
        run_a: baseline run (A).
        run_b: candidate run (B).
        judge: judge id to score both runs with.
        db: store URL or Store.
    """
    from airisk.scoring.compare import Comparison
    from airisk.scoring.compare import compare as cmp
    from airisk.scoring.rates import score_run

    store = open_store(db)
    return Comparison.model_validate(cmp(score_run(store, run_a, judge=judge), score_run(store, run_b, judge=judge)))


# -- red team and agents ----------------------------------------------------------------------------


async def redteam_async(
    system: str | dict[str, Any] | System, dataset: str | Path | Dataset | Sequence[Item], attacks: str | list[str],
    *, attacker: str | None = None, judge: str | Judge = "offline", budget: int = 10, limit: int | None = None,
    hazards: list[str] | None = None, concurrency: int = 8, baseline: bool = True, run_id: str | None = None,
    label: str | None = None, judge_batch: int = 1, progress: bool = False, db: str | Store | None = None,
    executor: str = "local", ray: Any = None,
) -> RedteamSummary:
    """Red-team campaign: the un-mutated baseline and every attack on every seed, judged and stored.

    Args:
        system: target system spec or System.
        dataset: seed prompts (catalog name, path, Dataset or Items); harmful ones are used.
        attacks: comma-separated attack spec (``base64,roleplay+past_tense,crescendo``) or a list.
        attacker: attacker model spec, needed by paraphrase/translate/launder_llm/crescendo/pair.
        judge: judge spec or Judge deciding success.
        budget: max target queries per seed per attack.
        limit: max seeds (taken round-robin across hazards).
        hazards: hazard codes to keep.
        concurrency: seed x attack pairs in flight.
        baseline: also run the un-mutated baseline (needed for uplift).
        run_id: resume/extend this run.
        label: a human label for the run.
        judge_batch: verdicts grouped per judge call (>1 is faster, see docs/redteam.md).
        progress: print progress to stderr.
        db: store URL or Store.
        executor: ``local`` (this process) or ``ray`` (seed x attack pairs spread over Ray tasks,
            docs/distributed.md); with ``ray``, ``system``, ``judge`` and ``attacker`` must be specs.
        ray: :class:`~airisk.distributed.options.RayOptions` (or a dict of them) for ``executor='ray'``.

    Returns:
        The campaign's :class:`~airisk.attacks.results.RedteamSummary` (``summary.run_id``).
    """
    from airisk.attacks.attacker import Attacker
    from airisk.attacks.campaign import run_campaign, select_seeds
    from airisk.attacks.registry import make_attacks
    from airisk.attacks.results import summarize
    from airisk.distributed.options import check_executor
    from airisk.errors import ConfigError

    atk = make_attacks(attacks)  # fail on unknown names before touching anything else
    need = [a.label for a in atk if a.needs_attacker]
    if need and not attacker:
        raise ConfigError(f"attacks {', '.join(need)} need an attacker model: add --attacker SPEC")
    if budget < 1:
        raise ConfigError("budget must be at least 1")
    name, items, meta = _dataset_and_items(dataset, {})
    seeds = select_seeds(_select(items, {"hazards": hazards}) if hazards else items, hazards=hazards or None,
                         limit=limit)
    if not seeds:
        raise ConfigError(f"no harmful seeds in '{name}' after filters (hazards={hazards or 'all'})")
    store = open_store(db)
    if check_executor(executor) == "ray":
        return await _redteam_on_ray(store, system, seeds, attacks, atk, attacker=attacker, judge=judge, budget=budget,
                                     concurrency=concurrency, baseline=baseline, run_id=run_id, label=label,
                                     judge_batch=judge_batch, meta=meta, name=name, limit=limit, hazards=hazards,
                                     ray=ray)
    target = make_system(system)
    j = make_judge(judge)
    att = Attacker.from_spec(attacker, store=store) if attacker else None
    config = {"system": target.describe(), "dataset": name, "judge": judge if isinstance(judge, str) else j.id,
              "limit": limit, "hazards": hazards or [], "attack_spec": attacks if isinstance(attacks, str) else ",".join(attacks)}
    try:
        rid = await run_campaign(store, target, seeds, atk, j, attacker=att, budget=budget, concurrency=concurrency,
                                 run_id=run_id, config=config, datasets=meta, label=label, include_baseline=baseline,
                                 progress=progress, judge_batch_size=judge_batch)
    finally:
        await target.aclose()
        if att is not None:
            await att.aclose()
        if j is not judge:
            await j.aclose()
    return summarize(store, rid)


async def _redteam_on_ray(store: Store, system: Any, seeds: list[Item], attacks: str | list[str], atk: list[Any], *,
                          attacker: str | None, judge: Any, budget: int, concurrency: int, baseline: bool,
                          run_id: str | None, label: str | None, judge_batch: int, meta: list[dict[str, Any]],
                          name: str, limit: int | None, hazards: list[str] | None, ray: Any) -> RedteamSummary:
    """The Ray half of :func:`redteam_async`: the driver builds the target (identity, preflight) and the
    attacker (identity only), never the judge; workers build all three from the specs."""
    from airisk.attacks.attacker import Attacker
    from airisk.attacks.results import summarize
    from airisk.distributed.options import RayOptions
    from airisk.distributed.redteam import CampaignParts, run_campaign_on_ray
    from airisk.errors import ConfigError

    if not isinstance(system, (str, dict)) or not isinstance(judge, str):
        raise ConfigError("executor 'ray' needs the system and the judge as specs (workers build their own)")
    opts = ray if isinstance(ray, RayOptions) else RayOptions.model_validate(ray or {})
    spec = ",".join(attacks) if isinstance(attacks, list) else attacks
    target = make_system(system)
    att = Attacker.from_spec(attacker) if attacker else None
    config = {"system": target.describe(), "dataset": name, "judge": judge, "limit": limit, "hazards": hazards or [],
              "attack_spec": spec}
    parts = CampaignParts(system=system, judge=judge, attacker=attacker, attacks=spec, budget=budget,
                          judge_batch_size=judge_batch)
    try:
        await target.preflight()
        rid = await asyncio.to_thread(
            run_campaign_on_ray, store, target, seeds, atk, parts, opts=opts, concurrency=concurrency, run_id=run_id,
            config=config, datasets=meta, label=label, include_baseline=baseline,
            attacker_desc=att.describe() if att is not None else None)
    finally:
        await target.aclose()
        if att is not None:
            await att.aclose()
    return summarize(store, rid)


def redteam(system: str | dict[str, Any] | System, dataset: str | Path | Dataset | Sequence[Item],
            attacks: str | list[str], **kwargs: Any) -> RedteamSummary:
    """Red-team campaign (see :func:`redteam_async` for every argument).

    Args:
        system: target system spec or System.
        dataset: seed prompts.
        attacks: attack spec.
        **kwargs: ``attacker``, ``judge``, ``budget``, ``limit``, ``hazards``, ``concurrency``, ``baseline``,
            ``run_id``, ``label``, ``judge_batch``, ``progress``, ``db``, ``executor``, ``ray``.
    """
    return asyncio.run(redteam_async(system, dataset, attacks, **kwargs))


class AgentRunResult(BaseModel):
    """Agent suite results: without the gate, with it, and the gate's effect when both ran."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: str
    agent: str
    scenarios: int
    without_gate: Any = None  # SuiteResult
    with_gate: Any = None  # SuiteResult
    gate_effect: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Summaries and run ids as plain JSON data."""
        out: dict[str, Any] = {"source": self.source, "agent": self.agent, "scenarios": self.scenarios}
        for key in ("without_gate", "with_gate"):
            r = getattr(self, key)
            if r is not None:
                out[key] = {"run_id": r.run_id, "summary": r.summary()}
        if self.gate_effect is not None:
            out["gate_effect"] = self.gate_effect
        return out


async def run_agents_async(
    source: str, agent: str, *, gate: bool = False, compare_gate: bool = False, policy: str = "builtin:default",
    gate_detector: bool = True, judge: str | None = None, emulator_model: str | None = None, limit: int | None = None,
    max_steps: int = 10, concurrency: int = 4, store: bool = True, label: str | None = None,
    db: str | Store | None = None, executor: str = "local", ray: Any = None,
) -> AgentRunResult:
    """Run a tool-using agent on safety scenarios; unsafe-action and completion rates, optionally gated.

    Args:
        source: ``builtin``, ``toolemu``, ``agent-safetybench`` or a scenario file/folder.
        agent: ``careful`` | ``reckless`` | ``tricked`` | ``python:mod:fn`` | ``openai:model=M,base_url=URL``
            | ``replay:path=file.jsonl``.
        gate: put the action gate between the agent and the tools.
        compare_gate: run without and with the gate and report the change.
        policy: guard policy the gate starts from (scenario tools are added).
        gate_detector: run the gate's rules over executed calls as a detector.
        judge: trajectory judge spec ``model=M,base_url=URL[,api_key_env=VAR]``.
        emulator_model: model emulator spec for tools marked ``emulator: model``.
        limit: first N scenarios only.
        max_steps: agent steps per scenario.
        concurrency: scenarios in flight.
        store: save the runs in the store.
        label: label recorded with the runs.
        db: store URL or Store.
        executor: ``local`` or ``ray`` (scenarios spread over a Ray cluster; needs the store).
        ray: with ``executor="ray"``: :class:`airisk.distributed.RayOptions` or a dict of them.
    """
    from airisk.agents.evaluate import gate_effect, run_suite
    from airisk.distributed import RayOptions, check_executor
    from airisk.agents.importers import load_source
    from airisk.agents.loop import make_agent
    from airisk.errors import ConfigError

    scen = load_source(source)
    scen = scen[:limit] if limit else scen
    if not scen:
        raise ConfigError(f"no scenarios in {source}")
    scenario_gate = None
    if gate or compare_gate or gate_detector:
        from airisk.agents.gating import ScenarioGate

        scenario_gate = ScenarioGate(policy)
    judge_obj = _trajectory_judge(judge) if judge else None
    emu = _emulator(emulator_model) if emulator_model else None
    st = open_store(db) if store else None
    out = AgentRunResult(source=source, agent=agent, scenarios=len(scen))
    common: dict[str, Any] = dict(detector_gate=scenario_gate if gate_detector else None, judge=judge_obj,
                                  max_steps=max_steps, concurrency=concurrency, model_emulator=emu, store=st, label=label)
    check_executor(executor)
    opts = ray if isinstance(ray, RayOptions) else RayOptions.model_validate(ray or {})

    async def suite(agent_obj: Any, gated: bool, cfg: dict[str, Any]) -> Any:
        if executor == "local":
            return await run_suite(scen, agent_obj, gate=scenario_gate if gated else None, config=cfg, **common)
        from airisk.distributed.agents import SuiteParts, run_suite_on_ray

        parts = SuiteParts(agent=agent, gate=gated, policy=policy, gate_detector=gate_detector, judge=judge,
                           emulator_model=emulator_model, max_steps=max_steps)
        return await run_suite_on_ray(st, scen, agent_obj, parts, opts=opts, gate=scenario_gate if gated else None,
                                      config=cfg, **{k: v for k, v in common.items() if k not in ("store", "max_steps")})

    ag = make_agent(agent)
    base = gated = None
    try:
        if not gate or compare_gate:
            base = await suite(ag, False, {"source": source, "policy": policy})
        if gate or compare_gate:
            ag2 = make_agent(agent)  # a fresh agent: replay cursors and client state restart
            cfg = {"source": source, "policy": policy, **({"compare_with": base.run_id} if base and base.run_id else {})}
            try:
                gated = await suite(ag2, True, cfg)
            finally:
                await ag2.aclose()
    finally:
        await ag.aclose()
        if judge_obj is not None:
            await judge_obj.aclose()
    effect = gate_effect(base, gated) if base is not None and gated is not None else None
    return out.model_copy(update={"without_gate": base, "with_gate": gated, "gate_effect": effect})


def run_agents(source: str, agent: str, **kwargs: Any) -> AgentRunResult:
    """Run a tool-using agent on safety scenarios (see :func:`run_agents_async` for every argument).

    Args:
        source: scenario source.
        agent: agent spec.
        **kwargs: ``gate``, ``compare_gate``, ``policy``, ``gate_detector``, ``judge``, ``emulator_model``,
            ``limit``, ``max_steps``, ``concurrency``, ``store``, ``label``, ``db``, ``executor``, ``ray``.
    """
    return asyncio.run(run_agents_async(source, agent, **kwargs))


def _trajectory_judge(spec: str) -> Any:
    from airisk.agents.judge import trajectory_judge_from_spec

    return trajectory_judge_from_spec(spec)


def _emulator(spec: str) -> Any:
    from airisk.agents.emulator import emulator_from_spec

    return emulator_from_spec(spec)


# -- simulated users --------------------------------------------------------------------------------


async def simulate_async(
    target: str | dict[str, Any] | System | None = None, *, personas: str | list[str] | None = None,
    user: str | dict[str, Any] = "scripted", judge: str | Judge = "offline", care_judge: str | Judge | None = None,
    dialogues: int = 20, turns: int = 6, concurrency: int = 4, seed: str = "0", store: bool = True,
    label: str | None = None, resume: str | None = None, db: str | Store | None = None,
) -> Any:
    """Simulated users (benign, malicious, vulnerable personas) in multi-turn dialogues with a target.

    Returns a :class:`airisk.agents.simulate.SimulationResult` (``summary()``, ``run_id``).

    Args:
        target: system spec of the target, e.g. ``openai:model=M,base_url=URL`` or ``python:target=mod:fn``
            (not needed with ``resume``).
        personas: persona ids or kinds (``benign``, ``malicious``, ``vulnerable``); default all.
        user: ``scripted`` or a system spec for the user model.
        judge: harm judge spec for every turn (default ``offline``).
        care_judge: care judge spec for vulnerable personas (``care:model=M,base_url=URL``); default:
            the offline care scorer.
        dialogues: dialogues per persona.
        turns: user turns per dialogue.
        concurrency: dialogues in flight.
        seed: seed of the scripted user's choices.
        store: save the run (kind ``simulation``).
        label: label recorded with the run.
        resume: continue this stored simulation run with its own settings (other arguments ignored, but
            for judge objects, which are used as given).
        db: store URL or Store.
    """
    from airisk.agents.simulate import make_user, run_simulation, select_personas
    from airisk.errors import ConfigError

    st = open_store(db) if store or resume else None
    if resume:
        info = st.get_run(resume)  # type: ignore[union-attr]
        cfg = info.config or {}
        if info.kind != "simulation" or "judge_spec" not in cfg:
            raise ConfigError(f"run {info.id} is not a simulation run started by airisk.simulate (kind '{info.kind}')")
        from airisk.judges.base import Judge as _Judge

        # a judge *object* passed in is used as is (it has no spec to store); specs come from the run
        judge = judge if isinstance(judge, _Judge) else cfg["judge_spec"]
        care_judge = care_judge if isinstance(care_judge, _Judge) else cfg.get("care_judge_spec")
        target, user = cfg["system"], cfg["user"]
        personas, dialogues, turns, seed = cfg["personas"], cfg["dialogues"], cfg["turns"], cfg["seed"]
        resume = info.id
    if target is None:
        raise ConfigError("a target system is needed (e.g. openai:model=M,base_url=URL)")
    chosen = select_personas(personas)
    tgt = make_system(target)
    usr = make_user(user)
    jdg = make_judge(judge)
    cj = make_judge(care_judge) if care_judge else None
    config = {"judge_spec": judge if isinstance(judge, str) else jdg.id,
              "care_judge_spec": care_judge if isinstance(care_judge, str) or care_judge is None else cj.id}  # type: ignore[union-attr]
    try:
        return await run_simulation(chosen, tgt, usr, jdg, dialogues=dialogues, turns=turns, concurrency=concurrency,
                                    seed=seed, care_judge=cj, store=st, label=label, config=config, resume=resume)
    finally:
        for obj in (tgt, usr, jdg, cj):
            if obj is not None:
                await obj.aclose()


def simulate(target: str | dict[str, Any] | System | None = None, **kwargs: Any) -> Any:
    """Simulated users against a target (see :func:`simulate_async` for every argument).

    Args:
        target: system spec of the target.
        **kwargs: ``personas``, ``user``, ``judge``, ``care_judge``, ``dialogues``, ``turns``, ``concurrency``,
            ``seed``, ``store``, ``label``, ``resume``, ``db``.
    """
    return asyncio.run(simulate_async(target, **kwargs))
