"""Compare two scored runs hazard by hazard: the change in violation rate, its interval and significance.

Methods (named in every output): the difference interval is Newcombe's hybrid score interval
(method 10, built from the two Wilson intervals); the p-value is the pooled two-proportion z-test
(two-sided) where it is valid (every expected cell count >= 5) and Fisher's exact test otherwise, so
small samples and rates near 0 get an honest p-value (each row names its ``test``).
``delta = rate_B - rate_A``: positive means run B violates more.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from airisk.scoring.rates import RateStat, RunScores
from airisk.stats import NEWCOMBE, PROPORTIONS_TEST, compare_proportions, newcombe_diff_interval


class Delta(BaseModel):
    key: str
    name: str | None = None
    a_k: int
    a_n: int
    b_k: int
    b_n: int
    rate_a: float | None
    rate_b: float | None
    delta: float | None
    low: float | None
    high: float | None
    z: float | None  # None when the exact test was used
    p_value: float | None
    test: str | None = None  # the test that gave p_value

    @property
    def no_data(self) -> bool:
        return self.delta is None


class Comparison(BaseModel):
    """Run A (baseline) vs run B: per-hazard and overall deltas, and the methods used."""

    run_a: str
    run_b: str
    judge_a: str | None
    judge_b: str | None
    hazards: list[Delta]
    overall: Delta
    interval_method: str
    test_method: str
    warnings: list[str]


def delta(key: str, a: RateStat | None, b: RateStat | None, name: str | None = None) -> Delta:
    ak, an = (a.violating, a.judged) if a else (0, 0)
    bk, bn = (b.violating, b.judged) if b else (0, 0)
    if an == 0 or bn == 0:
        return Delta(key=key, name=name, a_k=ak, a_n=an, b_k=bk, b_n=bn, rate_a=ak / an if an else None,
                     rate_b=bk / bn if bn else None, delta=None, low=None, high=None, z=None, p_value=None)
    lo, hi = newcombe_diff_interval(ak, an, bk, bn)
    z, p, test = compare_proportions(ak, an, bk, bn)
    return Delta(key=key, name=name, a_k=ak, a_n=an, b_k=bk, b_n=bn, rate_a=ak / an, rate_b=bk / bn,
                 delta=bk / bn - ak / an, low=lo, high=hi, z=z, p_value=p, test=test)


def compare(a: RunScores, b: RunScores) -> dict[str, Any]:
    """Per-hazard and overall deltas between run A (baseline) and run B."""
    sa, sb = {h.key: h for h in a.by_hazard}, {h.key: h for h in b.by_hazard}
    rows = [delta(k, sa.get(k), sb.get(k), name=(sa.get(k) or sb.get(k)).name) for k in sorted(set(sa) | set(sb))]
    return {
        "run_a": a.run.id, "run_b": b.run.id, "judge_a": a.judge_id, "judge_b": b.judge_id,
        "hazards": rows, "overall": delta("overall", a.overall, b.overall, name="Overall"),
        "interval_method": NEWCOMBE, "test_method": PROPORTIONS_TEST,
        "warnings": ([f"runs were judged by different judges ({a.judge_id} vs {b.judge_id}); deltas mix system and judge changes"]
                     if a.judge_id != b.judge_id else []),
    }
