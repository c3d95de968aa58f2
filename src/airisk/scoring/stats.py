"""Interval estimates and tests for proportions: the statistics every airisk number is reported with.

Plain functions over counts, so the red-teaming, agents and judges code can reuse them:

* ``wilson_interval``  - Wilson score interval for a binomial proportion (scipy's implementation).
* ``two_proportion_test`` - pooled two-proportion z-test (two-sided).
* ``newcombe_diff_interval`` - Newcombe's hybrid score interval (method 10) for p2 - p1.
* ``bootstrap_ci``     - percentile bootstrap interval with a fixed seed (deterministic).
* ``rogan_gladen``     - judge-error-corrected prevalence (Rogan-Gladen point) with an interval that
  propagates the judge's measured sensitivity/specificity uncertainty (Beta posteriors).

``n == 0`` never produces a number: the interval functions return ``None`` ("no data").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats as _st

WILSON = "Wilson score interval"
TWO_PROPORTION = "two-proportion z-test (pooled, two-sided)"
NEWCOMBE = "Newcombe hybrid score interval (method 10) for a difference of proportions"
BOOTSTRAP = "percentile bootstrap over items"
ROGAN_GLADEN = ("Rogan-Gladen correction; 95% interval from the posterior of the true rate (uniform prior, binomial "
                "likelihood) with sensitivity and specificity drawn from Beta posteriors of the judge card's counts")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for ``k`` successes in ``n`` trials; ``None`` when ``n == 0`` (no data)."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return None
    ci = _st.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


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


@dataclass(frozen=True)
class Corrected:
    """A judge-error-corrected rate: point estimate, interval and the method used."""

    rate: float
    interval: tuple[float, float]
    method: str = ROGAN_GLADEN
    informative: bool = True  # False when sens + spec <= 1: the judge carries no information


def rogan_gladen_point(p_obs: float, sensitivity: float, specificity: float) -> float | None:
    """(p_obs + spec - 1) / (sens + spec - 1), clipped to [0, 1]; ``None`` if sens + spec <= 1."""
    j = sensitivity + specificity - 1
    if j <= 0:
        return None
    return float(min(1.0, max(0.0, (p_obs + specificity - 1) / j)))


def rogan_gladen(
    k: int, n: int, *, tp: int, fn: int, tn: int, fp: int,
    confidence: float = 0.95, n_samples: int = 2000, seed: int = 0, grid: int = 201,
) -> Corrected | None:
    """Correct an observed violation rate ``k/n`` for the judge's measured error rates.

    ``tp, fn`` (truly violating items judged violating / safe) give sensitivity; ``tn, fp`` give
    specificity. Point estimate: Rogan-Gladen ``(p_obs + spec - 1) / (sens + spec - 1)`` clipped to
    [0, 1]. Interval: sensitivity and specificity are drawn from their Beta(1 + k, 1 + n - k)
    posteriors (the card's raw counts); for each draw the true rate gets a uniform prior on [0, 1]
    and the binomial likelihood of ``k`` of ``n`` with ``P(judged violating) = rate * sens +
    (1 - rate) * (1 - spec)``; one true rate is sampled from that posterior (on a grid), and the
    percentiles of all samples form the interval. This propagates the card's uncertainty and, unlike
    clipping resampled Rogan-Gladen values, never collapses to [0, 0] when the observed rate is below
    the judge's false-unsafe rate. Returns ``None`` when ``n == 0`` or the card has no positives or
    negatives.
    """
    if n == 0 or tp + fn == 0 or tn + fp == 0:
        return None
    sens, spec = tp / (tp + fn), tn / (tn + fp)
    point = rogan_gladen_point(k / n, sens, spec)
    if point is None:
        # The judge is no better than chance: the corrected rate can be anything.
        return Corrected(rate=float("nan"), interval=(0.0, 1.0), informative=False)
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
    return Corrected(rate=point, interval=(float(min(lo, point)), float(max(hi, point))))
