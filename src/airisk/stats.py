"""The statistics every airisk number is reported with: one module, used by judges, scoring, red team and agents.

Plain functions over counts, and one result type (:class:`Estimate`: value, 95% interval, method):

* ``wilson_interval`` / ``proportion``  - Wilson score interval for a binomial proportion (SciPy's).
* ``compare_proportions`` - two independent proportions: the pooled two-proportion z-test where it is
  valid (every expected cell count >= 5), Fisher's exact test otherwise (small samples, rates near 0).
* ``newcombe_diff_interval`` - Newcombe's hybrid score interval (method 10) for p2 - p1, independent samples.
* ``mcnemar_exact`` / ``paired_diff_interval`` - paired proportions on the same seeds (red-team uplift):
  the exact (conditional binomial) McNemar test and Newcombe's paired score interval (method 10).
* ``roc_auc`` - area under the ROC curve of scores against binary labels (Mann-Whitney, ties
  count half): how well a judge *ranks* items, whatever threshold it uses. Two judges with equal AUC
  and different accuracy differ in operating point, not in discrimination.
* ``auc_difference_ci`` - paired percentile-bootstrap interval of AUC(b) - AUC(a) on the same items.
* ``bootstrap_ci`` - percentile bootstrap interval with a fixed seed (deterministic).
* ``corrected_rate`` - judge-error-corrected prevalence (Rogan-Gladen point) with an interval that
  propagates the judge card's sensitivity/specificity uncertainty; the judge card and the reports
  both call it, so they give the same number for the same counts.

``n == 0`` never produces a number: the interval functions return ``None`` ("no data").
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
from pydantic import BaseModel
from scipy import stats as _scipy_stats

_st: Any = _scipy_stats  # SciPy ships no type information

WILSON = "Wilson score interval"
TWO_PROPORTION = "two-proportion z-test (pooled, two-sided)"
FISHER = "Fisher's exact test (two-sided)"
PROPORTIONS_TEST = (f"{TWO_PROPORTION} where every expected cell count is >= 5, otherwise {FISHER}")
MCNEMAR = "exact McNemar test (two-sided, conditional binomial on discordant pairs)"
NEWCOMBE_PAIRED = "Newcombe paired score interval (method 10) for a difference of paired proportions"
NEWCOMBE = "Newcombe hybrid score interval (method 10) for a difference of proportions"
BOOTSTRAP = "percentile bootstrap over items"
ROGAN_GLADEN = ("Rogan-Gladen correction; 95% interval from the posterior of the true rate (uniform prior, binomial "
                "likelihood) with sensitivity and specificity drawn from Beta posteriors of the judge card's counts")
UNCORRECTABLE = "uncorrectable (judge card has sensitivity + specificity <= 1 or no positives/negatives)"


class Estimate(BaseModel):
    """A point estimate with its 95% interval: the one type for "a rate with its interval".

    ``method`` names how the interval was computed (``wilson``, ``bootstrap``, ``rogan_gladen``, ...),
    or ``none`` when undefined (``value``/``low``/``high`` are then ``None``, e.g. precision with no
    positive predictions). ``k``/``n`` are the counts behind a proportion.
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    method: str = "none"
    k: int | None = None  # numerator, for proportions
    n: int | None = None  # denominator, for proportions

    def fmt(self, pct: bool = True) -> str:
        """``12.5% [8.1%, 18.2%]`` (or ``0.412 [...]`` with ``pct=False``); ``n/a`` when undefined."""
        if self.value is None:
            return "n/a"
        def f(x: float) -> str:
            return f"{100 * x:.1f}%" if pct else f"{x:.3f}"

        if self.low is None or self.high is None:
            return f(self.value)
        return f"{f(self.value)} [{f(self.low)}, {f(self.high)}]"


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for ``k`` successes in ``n`` trials; ``None`` when ``n == 0`` (no data)."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return None
    ci = _st.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


def proportion(k: int, n: int) -> Estimate:
    """``k/n`` with its Wilson interval; value ``None`` when ``n == 0``."""
    w = wilson_interval(k, n)
    if w is None:
        return Estimate(value=None, method="none", k=k, n=n)
    return Estimate(value=k / n, low=w[0], high=w[1], method="wilson", k=k, n=n)


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of H0: p1 == p2. Returns ``(z, two-sided p-value)``.

    ``z`` is positive when the second proportion is higher. With no data on either side, or no
    variance at all (both 0% or both 100%), returns ``(0.0, 1.0)``: nothing is detectable.
    """
    if n1 <= 0 or n2 <= 0:
        return (0.0, 1.0)
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return (0.0, 1.0)
    z = (p2 - p1) / se
    return (z, float(2 * _st.norm.sf(abs(z))))


def z_test_valid(k1: int, n1: int, k2: int, n2: int, min_expected: float = 5.0) -> bool:
    """Cochran's rule: the normal approximation holds when every expected cell count is >= 5."""
    n = n1 + n2
    if n1 <= 0 or n2 <= 0:
        return False
    succ, fail = k1 + k2, n - k1 - k2
    return min(n1 * succ, n1 * fail, n2 * succ, n2 * fail) / n >= min_expected


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test for ``k1/n1`` vs ``k2/n2`` (SciPy)."""
    return float(_st.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="two-sided").pvalue)


def compare_proportions(k1: int, n1: int, k2: int, n2: int) -> tuple[float | None, float, str]:
    """Test H0: p1 == p2 for independent samples; returns ``(z or None, two-sided p, method)``.

    The z-test where it is valid (:func:`z_test_valid`); Fisher's exact test otherwise, so 0/200 vs
    1/2 gives p = 0.0099, not the z-test's 1e-23. No data on either side gives ``(None, 1.0, ...)``.
    """
    if n1 <= 0 or n2 <= 0:
        return (None, 1.0, "no data")
    if z_test_valid(k1, n1, k2, n2):
        z, p = two_proportion_test(k1, n1, k2, n2)
        return (z, p, TWO_PROPORTION)
    return (None, fisher_exact(k1, n1, k2, n2), FISHER)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pairs: ``b`` (only the first succeeds) and
    ``c`` (only the second). Conditional on ``b + c``, ``b`` is Binomial(b + c, 1/2) under H0."""
    if b + c == 0:
        return 1.0
    return float(_st.binomtest(int(b), int(b + c), 0.5).pvalue)


def roc_auc(labels: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float | None:
    """Area under the ROC curve: the chance that a random positive scores above a random negative,
    ties counting half (the Mann-Whitney U statistic over n_pos * n_neg). ``None`` when either class
    is absent: with one class there is no ranking to judge."""
    y = np.asarray(labels, dtype=bool)
    if len(y) != len(scores):
        raise ValueError(f"labels and scores differ in length ({len(y)} vs {len(scores)})")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return None
    ranks = _st.rankdata(np.asarray(scores, dtype=float))  # average ranks: ties count half
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_difference_ci(labels: Sequence[bool] | np.ndarray, scores_a: Sequence[float] | np.ndarray,
                      scores_b: Sequence[float] | np.ndarray, *,
                      n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float] | None:
    """Paired percentile-bootstrap interval of ``roc_auc(labels, scores_b) - roc_auc(labels, scores_a)``:
    items are resampled together, so both judges are scored on the same draw (a difference far smaller
    than two separate intervals can show). Draws missing a class are skipped; ``None`` without both
    classes. Same seed, same interval."""
    y = np.asarray(labels, dtype=bool)
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if not (len(y) == len(a) == len(b)):
        raise ValueError(f"labels and scores differ in length ({len(y)}, {len(a)}, {len(b)})")
    if roc_auc(y, a) is None:
        return None
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_resamples):
        i = rng.integers(0, len(y), len(y))
        da, db = roc_auc(y[i], a[i]), roc_auc(y[i], b[i])
        if da is not None and db is not None:
            diffs.append(db - da)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(diffs, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def paired_diff_interval(a: int, b: int, c: int, d: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Newcombe (1998b) method-10 score interval for ``p1 - p2`` of paired proportions.

    The 2x2 table of pairs: ``a`` both succeed, ``b`` only the first, ``c`` only the second, ``d``
    neither; ``p1 = (a + b)/n``, ``p2 = (a + c)/n``. Built from the two Wilson intervals and the
    phi correlation of the pairs (phi = 0 gives back the independent-samples interval).
    """
    n = a + b + c + d
    if n == 0:
        return None
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = wilson_interval(a + b, n, confidence), wilson_interval(a + c, n, confidence)  # type: ignore[misc]
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(denom) if denom > 0 else 0.0
    diff = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    eps = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (max(-1.0, diff - delta), min(1.0, diff + eps))


def newcombe_diff_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Newcombe (1998) method-10 interval for ``p2 - p1`` built from the two Wilson intervals."""
    w1, w2 = wilson_interval(k1, n1, confidence), wilson_interval(k2, n2, confidence)
    if w1 is None or w2 is None:
        return None
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = w1, w2
    d = p2 - p1
    low = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return (max(-1.0, low), min(1.0, high))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``statistic`` over ``values``; same seed, same interval.

    ``statistic`` must accept a 2-D array (resamples x items) along ``axis=1`` if it is ``np.mean``
    or another numpy reduction; any other callable is applied per resample.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    samples = x[idx]
    if statistic in (np.mean, np.median, np.sum):
        stat = statistic(samples, axis=1)
    else:
        stat = np.array([statistic(row) for row in samples])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stat, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def rogan_gladen_point(p_obs: float, sensitivity: float, specificity: float) -> float | None:
    """(p_obs + spec - 1) / (sens + spec - 1), clipped to [0, 1]; ``None`` if sens + spec <= 1."""
    j = sensitivity + specificity - 1
    if j <= 0:
        return None
    return float(min(1.0, max(0.0, (p_obs + specificity - 1) / j)))


def corrected_rate(
    k: int, n: int, *, tp: int, fn: int, tn: int, fp: int,
    confidence: float = 0.95, n_samples: int = 2000, seed: int = 0, grid: int = 201,
) -> Estimate:
    """Correct an observed violation rate ``k/n`` for the judge's measured error rates.

    ``tp, fn`` (truly violating items judged violating / safe) give sensitivity; ``tn, fp`` give
    specificity. Point estimate: Rogan-Gladen ``(p_obs + spec - 1) / (sens + spec - 1)`` clipped to
    [0, 1]. Interval: sensitivity and specificity are drawn from their Beta(1 + k, 1 + n - k)
    posteriors (the card's raw counts); for each draw the true rate gets a uniform prior on [0, 1]
    and the binomial likelihood of ``k`` of ``n`` with ``P(judged violating) = rate * sens +
    (1 - rate) * (1 - spec)``; one true rate is sampled from that posterior (on a grid), and the
    percentiles of all samples form the interval. This propagates the card's uncertainty and, unlike
    clipping resampled Rogan-Gladen values, never collapses to [0, 0] when the observed rate is below
    the judge's false-unsafe rate. Value ``None`` (method ``none``) when ``n == 0``; method
    ``uncorrectable`` (value ``None``) when the card has no positives or negatives or the judge is no
    better than chance (sensitivity + specificity <= 1).
    """
    if n <= 0:
        return Estimate(value=None, method="none", k=k, n=n)
    if tp + fn == 0 or tn + fp == 0:
        return Estimate(value=None, method=UNCORRECTABLE, k=k, n=n)
    sens, spec = tp / (tp + fn), tn / (tn + fp)
    point = rogan_gladen_point(k / n, sens, spec)
    if point is None:
        # The judge is no better than chance: the corrected rate can be anything.
        return Estimate(value=None, method=UNCORRECTABLE, k=k, n=n)
    rng = np.random.default_rng(seed)
    se = rng.beta(1 + tp, 1 + fn, n_samples)[:, None]
    sp = rng.beta(1 + tn, 1 + fp, n_samples)[:, None]
    pi = np.linspace(0.0, 1.0, grid)[None, :]
    q = np.clip(pi * se + (1 - pi) * (1 - sp), 1e-12, 1 - 1e-12)
    loglik = k * np.log(q) + (n - k) * np.log1p(-q)
    w = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((n_samples, 1))
    draws = pi[0, np.minimum((cdf < u).sum(axis=1), grid - 1)]
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return Estimate(value=point, low=float(min(lo, point)), high=float(max(hi, point)), method=ROGAN_GLADEN, k=k, n=n)
