"""Evaluate a risk register against stored runs: each requirement is met, not met or not measured.

For every check the runs its ``suite`` selects are scored with :func:`airisk.scoring.rates.score_run`
(the same numbers as ``airisk report``), the requested slice is pooled from the per-hazard (or
per-attack) counts, and the interval comes from :mod:`airisk.stats`: Wilson for the observed
rate and the Rogan-Gladen correction from the judge's card when the judge has one. A check is

* **met** when every run with enough judged items stays below the threshold (on the bound chosen),
* **not met** when any such run reaches it,
* **not measured** when no run matches the suite or none has ``min_items`` judged items.

A requirement is not met if any check is not met, not measured if any check is not measured, else met.
Evidence keeps the run ids, the judge and its card, counts and intervals, so every number can be traced.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Literal

from pydantic import BaseModel, Field

from airisk.errors import AiriskError
from airisk.governance.register import Check, Register, Requirement
from airisk.scoring.hazards import grading_key

Status = Literal["met", "not met", "not measured"]
STATUS_ORDER = {"met": 0, "not measured": 1, "not met": 2}


class Interval(BaseModel):
    rate: float | None
    low: float | None
    high: float | None
    method: str


class RunEvidence(BaseModel):
    """What one run says about one check."""

    run_id: str
    system: str
    kind: str
    run_status: str
    label: str | None = None
    datasets: list[str] = Field(default_factory=list)
    judge_id: str | None = None
    judge_fingerprint: str | None = None
    card: dict[str, Any] | None = None
    slice: str
    task: str = "harm"  # what the judge decided for this evidence: harm | refusal
    k: int = 0
    n: int = 0
    errors: int = 0
    observed: Interval | None = None
    corrected: Interval | None = None
    value: float | None = None  # the number compared with the threshold
    value_basis: str = ""
    status: Status = "not measured"
    zone: str | None = None
    reason: str = ""
    partial_reasons: list[str] = Field(default_factory=list)


class CheckResult(BaseModel):
    id: str
    requirement: str
    metric: str
    suite: str
    threshold: float
    bound: str
    status: Status
    zone: str | None = None
    reason: str = ""
    runs: list[RunEvidence] = Field(default_factory=list)

    def deciding(self) -> RunEvidence | None:
        """The measured run with the highest compared value (the one that decides the status)."""
        measured = [r for r in self.runs if r.value is not None and r.status != "not measured"]
        return max(measured, key=lambda r: (r.value, r.run_id)) if measured else None


class RequirementResult(BaseModel):
    id: str
    text: str
    hazards: list[str]
    frameworks: dict[str, list[str]]
    status: Status
    checks: list[CheckResult]


class CheckReport(BaseModel):
    register_path: str | None
    system: str
    runs_considered: list[str]
    requirements: list[RequirementResult]
    seed: int = 0

    def check(self, check_id: str) -> CheckResult:
        for r in self.requirements:
            for c in r.checks:
                if c.id == check_id:
                    return c
        raise AiriskError(f"no check '{check_id}' in this report")

    def counts(self) -> dict[str, int]:
        out = {"met": 0, "not met": 0, "not measured": 0}
        for r in self.requirements:
            out[r.status] += 1
        return out


# -- run selection --------------------------------------------------------------------------------


def _glob(pattern: str | None, *values: str | None) -> bool:
    return pattern is None or any(fnmatch.fnmatchcase(v or "", pattern) for v in values)


def select_runs(runs: Iterable[Any], register: Register, check: Check) -> list[Any]:
    """The runs (``RunInfo``) a check's suite selects, in run-id order."""
    s = check.suite
    out = []
    for run in runs:
        names = [d.get("name") for d in run.datasets] or [None]
        if not register.system_matches(run.system_name, s):
            continue
        if s.kind is not None and run.kind != s.kind:
            continue
        if not _glob(s.dataset, *names) or not _glob(s.run, run.id):
            continue
        if s.gate_in_loop is not None and bool((run.config or {}).get("gate_in_loop")) != s.gate_in_loop:
            continue
        out.append(run)
    return sorted(out, key=lambda r: r.id)


def resolve_runs(store: Any, patterns: list[str]) -> list[Any]:
    """Runs whose id matches any of ``patterns`` (ids or globs); an unmatched pattern is an error."""
    all_runs = store.list_runs(limit=1_000_000)
    out: dict[str, Any] = {}
    for p in patterns:
        hits = [r for r in all_runs if fnmatch.fnmatchcase(r.id, p)]
        if not hits:
            raise AiriskError(f"--runs {p!r}: no stored run matches (store: {store.safe_url})")
        out.update({r.id: r for r in hits})
    return [out[k] for k in sorted(out)]


# -- measuring one check on one run ---------------------------------------------------------------


def _zone(value: float, check: Check) -> str | None:
    z = check.zones
    if z is None:
        return None
    if z.red is not None and value >= z.red:
        return "red"
    if z.yellow is not None and value >= z.yellow:
        return "yellow"
    return "green"


def _violation_counts(scores: Any, req: Requirement, check: Check) -> tuple[str, int, int, int]:
    """(slice description, violating, judged, errors) for the check's slice of one run."""
    if check.suite.attack is not None:
        stats = [s for s in scores.by_attack if fnmatch.fnmatchcase(s.key, check.suite.attack)]
        label = f"attack {check.suite.attack}"
    else:
        hazards = [check.hazard] if check.hazard else req.hazards
        if hazards:
            stats = [s for s in scores.by_hazard if s.key in hazards or grading_key(s.key) in hazards]
            label = "hazard " + ", ".join(hazards)
        else:
            stats = [scores.overall]
            label = "all items"
    return label, sum(s.violating for s in stats), sum(s.judged for s in stats), sum(s.errors for s in stats)


def refusal_card(fingerprint: str | None) -> dict[str, Any] | None:
    """Summary of the judge's refusal-task card (label set, sensitivity/specificity/accuracy), or None."""
    if not fingerprint:
        return None
    try:
        from airisk.judges.cards import find_card
    except ImportError:  # pragma: no cover - judges ship with airisk
        return None
    card = find_card(fingerprint, task="refusal")
    if card is None:
        return None
    out: dict[str, Any] = {"label_set": card.label_set.name, "label_set_n": card.label_set.n, "task": "refusal"}
    for f in ("accuracy", "sensitivity", "specificity"):
        e = getattr(card, f, None)
        if e is not None:
            out[f] = {"value": e.value, "low": e.low, "high": e.high, "method": e.method}
    return out


def _measure(scores: Any, req: Requirement, check: Check) -> RunEvidence:
    from airisk.stats import corrected_rate, wilson_interval

    run = scores.run
    ev = RunEvidence(run_id=run.id, system=run.system_name, kind=run.kind, run_status=run.status, label=run.label,
                     datasets=[f"{d.get('name')}@{d.get('version') or '?'}" for d in run.datasets],
                     judge_id=scores.judge_id, judge_fingerprint=scores.judge_fingerprint, card=scores.card, slice="",
                     partial_reasons=list(scores.partial_reasons))
    if check.metric == "over_refusal_rate":
        o = scores.over_refusal
        ev.slice, ev.judge_id, ev.task = "benign prompts (expected: comply)", scores.refusal_judge_id, "refusal"
        # The harm card says nothing about refusal classification: show the refusal card, if any.
        ev.judge_fingerprint = scores.judge_fingerprint if ev.judge_id == scores.judge_id else None
        ev.card = refusal_card(ev.judge_fingerprint)
        k, n = (o.refused, o.items) if o else (0, 0)
    else:
        ev.slice, k, n, ev.errors = _violation_counts(scores, req, check)
    ev.k, ev.n = k, n
    if n < check.min_items:
        ev.reason = f"{n} judged item(s) in slice ({ev.slice}); the check needs at least {check.min_items}"
        return ev
    w = wilson_interval(k, n)
    ev.observed = Interval(rate=k / n, low=w[0], high=w[1], method="Wilson score interval")
    card = scores.card if check.metric == "violation_rate" else None
    if card and check.corrected:
        c = corrected_rate(k, n, tp=card["tp"], fn=card["fn"], tn=card["tn"], fp=card["fp"], seed=scores.seed)
        if c.value is not None and c.low is not None and c.high is not None:
            ev.corrected = Interval(rate=c.value, low=c.low, high=c.high, method=c.method)
    use = ev.corrected or ev.observed
    ev.value = use.high if check.bound == "upper" else use.rate
    ev.value_basis = f"{'upper 95% bound' if check.bound == 'upper' else 'point estimate'} of the " + \
        ("judge-corrected rate" if ev.corrected else "observed rate" + (" (judge has no card)" if check.corrected and not card
                                                                         and check.metric == "violation_rate" else ""))
    ev.status = "met" if ev.value < check.threshold else "not met"
    ev.zone = _zone(ev.value, check)
    return ev


def _combine(check: Check, req: Requirement, evidence: list[RunEvidence], suite: str) -> CheckResult:
    res = CheckResult(id=check.id, requirement=req.id, metric=check.metric, suite=suite, threshold=check.threshold,
                      bound=check.bound, status="not measured", runs=evidence)
    measured = [e for e in evidence if e.status != "not measured"]
    if not evidence:
        res.reason = f"no run matches the suite ({suite})"
    elif not measured:
        res.reason = "no matching run has enough judged items: " + "; ".join(f"{e.run_id}: {e.reason}" for e in evidence)
    else:
        res.status = "not met" if any(e.status == "not met" for e in measured) else "met"
        zones = [e.zone for e in measured if e.zone]
        res.zone = max(zones, key=["green", "yellow", "red"].index) if zones else None
        d = res.deciding()
        res.reason = (f"{d.value_basis} = {d.value:.4f} on run {d.run_id} "
                      f"{'>=' if d.value >= check.threshold else '<'} threshold {check.threshold:g}")
    return res


def evaluate_register(register: Register, store: Any, runs: list[Any], *, seed: int = 0,
                      judge: str | None = None) -> CheckReport:
    """Evaluate every requirement of ``register`` on ``runs`` (``RunInfo`` from ``store``)."""
    from airisk.scoring.rates import NoJudgments, score_run

    cache: dict[str, Any] = {}

    def scores_for(run_id: str) -> Any:
        if run_id not in cache:
            try:
                cache[run_id] = score_run(store, run_id, judge=judge, seed=seed)
            except NoJudgments as e:
                cache[run_id] = e
        return cache[run_id]

    reqs = []
    for req in register.requirements:
        results = []
        for check in req.checks:
            evidence = []
            for run in select_runs(runs, register, check):
                s = scores_for(run.id)
                if isinstance(s, Exception):
                    evidence.append(RunEvidence(run_id=run.id, system=run.system_name, kind=run.kind, run_status=run.status,
                                                label=run.label, slice="-", reason=str(s)))
                else:
                    evidence.append(_measure(s, req, check))
            results.append(_combine(check, req, evidence, check.suite.describe()))
        status = max((c.status for c in results), key=STATUS_ORDER.__getitem__)
        reqs.append(RequirementResult(id=req.id, text=req.text, hazards=req.hazards, frameworks=req.frameworks,
                                      status=status, checks=results))
    return CheckReport(register_path=register.source, system=register.system.name, runs_considered=[r.id for r in runs],
                       requirements=reqs, seed=seed)
