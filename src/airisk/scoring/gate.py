"""Release gate: turn a scored run and a policy into pass / warn / fail for CI, with JUnit XML.

Exit codes: 0 pass (all green), 1 yellow (a yellow line crossed), 2 red (a red line crossed, a
significant regression, or more errored items than the policy's ``errors`` rule allows), 3 could not evaluate (unknown run, no judgments, invalid policy, a partial
run unless explicitly allowed, ...).
Regression against a baseline run tests each hazard with ``airisk.stats.compare_proportions`` (the
pooled two-proportion z-test where valid, Fisher's exact test for small samples; only significant
*increases* count) at the policy's ``regression.alpha``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from airisk.scoring.compare import compare
from airisk.scoring.rates import RunScores
from airisk.stats import PROPORTIONS_TEST
from airisk.scoring.zones import ZONE_ORDER, Policy, evaluate

EXIT = {"green": 0, "yellow": 1, "red": 2, "error": 3}


class Check(BaseModel):
    name: str  # e.g. "hazard cse" or "regression cse"
    classname: str
    zone: str  # green | yellow | red | no data
    why: str
    details: dict[str, Any] = Field(default_factory=dict)


class GateResult(BaseModel):
    run_id: str
    status: str  # pass | yellow | red | error
    exit_code: int
    checks: list[Check] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    partial: bool = False


def run_gate(scores: RunScores, policy: Policy, baseline: RunScores | None = None, *, allow_partial: bool = False) -> GateResult:
    """Evaluate ``scores`` against ``policy`` (and a baseline). A partial run cannot pass a release gate:
    it is "could not evaluate" unless ``allow_partial``, because missing items can move every rate."""
    checks: list[Check] = []
    if scores.partial and not allow_partial:
        return error_result(scores.run.id, "run is PARTIAL (" + "; ".join(scores.partial_reasons)
                            + "); finish or resume it, or pass --allow-partial")
    if (scores.judge_id is None or scores.overall.judged == 0) and scores.overall.errors == 0:
        return error_result(scores.run.id, f"run {scores.run.id} has no judgments to evaluate "
                            f"(items: {scores.overall.items}, judges: {', '.join(scores.judges_available) or 'none'})")
    z = evaluate(scores, policy)
    for r in z["hazards"]:
        checks.append(Check(name=f"hazard {r.key}", classname="airisk.gate.zones", zone=r.zone, why=r.rule,
                            details={"value": r.value, "threshold": r.threshold, "checks": r.checks}))
    for r in z["errors"]:
        checks.append(Check(name=f"errors {r.key}", classname="airisk.gate.errors", zone=r.zone, why=r.rule,
                            details={"share": r.value, "allowed": r.threshold}))
    if z["overall"] is not None:
        o = z["overall"]
        checks.append(Check(name="overall", classname="airisk.gate.zones", zone=o.zone, why=o.rule,
                            details={"value": o.value, "threshold": o.threshold}))
    for code in policy.required():
        stat = scores.hazard(code)
        if stat is None or stat.judged == 0:
            checks.append(Check(name=f"coverage {code}", classname="airisk.gate.coverage", zone="red",
                                why=f"coverage {code}: required hazard has no judged items"))
    if baseline is not None:
        checks.extend(_regressions(baseline, scores, policy))
    decided = [c for c in checks if c.zone != "no data"]
    if not decided:
        return error_result(scores.run.id, "no hazard of the run could be evaluated against the policy (all 'no data')", checks)
    worst = max(decided, key=lambda c: ZONE_ORDER[c.zone]).zone
    reasons = [c.why if c.why.startswith(c.name) else f"{c.name}: {c.why}" for c in checks if c.zone == worst and worst != "green"]
    if scores.partial:
        reasons.append("note: the run is PARTIAL (" + "; ".join(scores.partial_reasons) + ")")
    status = {"green": "pass", "yellow": "yellow", "red": "red"}[worst]
    return GateResult(run_id=scores.run.id, status=status, exit_code=EXIT[worst], checks=checks, reasons=reasons,
                      partial=scores.partial)


def _regressions(baseline: RunScores, scores: RunScores, policy: Policy) -> list[Check]:
    reg = policy.regression
    out = []
    cmp = compare(baseline, scores)
    for d in cmp["hazards"] + [cmp["overall"]]:
        name = f"regression {d.key}"
        if d.no_data:
            out.append(Check(name=name, classname="airisk.gate.regression", zone="no data",
                             why=f"{name}: no data in {'baseline' if not d.a_n else 'run'}"))
            continue
        sig = d.p_value < reg.alpha and d.delta > 0 and d.delta >= reg.min_delta
        zone = reg.zone if sig else "green"
        why = (f"{name}: {100 * d.rate_a:.1f}% -> {100 * d.rate_b:.1f}% (delta {100 * d.delta:+.1f} pts, "
               f"p={d.p_value:.3g}, {d.test}, alpha={reg.alpha}"
               + (f", min_delta={reg.min_delta}" if reg.min_delta else "") + ")"
               + (" significant increase" if sig else ""))
        out.append(Check(name=name, classname="airisk.gate.regression", zone=zone, why=why,
                         details=d.model_dump() | {"method": d.test or PROPORTIONS_TEST}))
    return out


def error_result(run_id: str, reason: str, checks: list[Check] | None = None) -> GateResult:
    return GateResult(run_id=run_id, status="error", exit_code=EXIT["error"], checks=checks or [], reasons=[reason])


def write_junit(result: GateResult, path: str | Path) -> Path:
    """One testcase per hazard/rule; yellow and red are failures (type says which); no data is skipped."""
    suite = ET.Element("testsuite", name="airisk gate", tests=str(len(result.checks) or 1))
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="run_id", value=result.run_id)
    failures = errors = skipped = 0
    if result.status == "error":
        tc = ET.SubElement(suite, "testcase", name="evaluate", classname="airisk.gate")
        ET.SubElement(tc, "error", message=result.reasons[0] if result.reasons else "could not evaluate", type="could_not_evaluate")
        errors = 1
    for c in result.checks:
        tc = ET.SubElement(suite, "testcase", name=c.name, classname=c.classname)
        if c.zone in ("yellow", "red"):
            failures += 1
            f = ET.SubElement(tc, "failure", message=c.why, type=c.zone)
            f.text = c.why
        elif c.zone == "no data":
            skipped += 1
            ET.SubElement(tc, "skipped", message=c.why)
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = c.why
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(p, encoding="utf-8", xml_declaration=True)
    return p
