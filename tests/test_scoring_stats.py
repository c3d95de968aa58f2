"""Statistics against hand-computed values (formulas written out in the comments)."""

import math

import numpy as np
import pytest

from airisk.scoring.stats import (
    bootstrap_ci,
    newcombe_diff_interval,
    rogan_gladen,
    rogan_gladen_point,
    two_proportion_test,
    wilson_interval,
)

Z = 1.959963984540054


def wilson_by_hand(k, n):
    # centre = (p + z^2/2n) / (1 + z^2/n); half = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)
    p = k / n
    d = 1 + Z * Z / n
    c = (p + Z * Z / (2 * n)) / d
    h = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / d
    return c - h, c + h


@pytest.mark.parametrize("k,n", [(5, 100), (0, 10), (10, 10), (1, 3), (37, 412)])
def test_wilson_matches_formula(k, n):
    lo, hi = wilson_interval(k, n)
    elo, ehi = wilson_by_hand(k, n)
    assert lo == pytest.approx(max(0.0, elo), abs=1e-9)
    assert hi == pytest.approx(min(1.0, ehi), abs=1e-9)


def test_wilson_known_value():
    # 5/100: p=.05, centre=.0692073/1.0384146=.066647, half=.045103 -> [.02154, .11175]
    lo, hi = wilson_interval(5, 100)
    assert lo == pytest.approx(0.021544, abs=1e-5)
    assert hi == pytest.approx(0.111750, abs=1e-5)


def test_wilson_no_data_and_bad_input():
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_two_proportion_hand_computed():
    # pooled = 30/200 = .15; se = sqrt(.15*.85*(1/100+1/100)) = .0504975; z = .1/.0504975 = 1.98030
    z, p = two_proportion_test(10, 100, 20, 100)
    assert z == pytest.approx(1.98030, abs=1e-4)
    assert p == pytest.approx(0.04767, abs=1e-4)
    z2, p2 = two_proportion_test(20, 100, 10, 100)
    assert z2 == pytest.approx(-z) and p2 == pytest.approx(p)
    assert two_proportion_test(0, 50, 0, 50) == (0.0, 1.0)
    assert two_proportion_test(1, 0, 1, 5) == (0.0, 1.0)


def test_newcombe_matches_published_example():
    # Newcombe (1998), Table II example: 56/70 vs 48/80, difference .1833, method-10 CI (.0524, .3339).
    lo, hi = newcombe_diff_interval(48, 80, 56, 70)  # our interval is for p2 - p1
    assert lo == pytest.approx(0.0524, abs=1e-4)
    assert hi == pytest.approx(0.3339, abs=1e-4)
    assert newcombe_diff_interval(0, 0, 1, 2) is None


def test_bootstrap_is_deterministic_and_sane():
    x = [1] * 20 + [0] * 80
    a = bootstrap_ci(x, seed=7)
    b = bootstrap_ci(x, seed=7)
    c = bootstrap_ci(x, seed=8)
    assert a == b
    assert a != c
    assert a[0] < 0.2 < a[1]
    assert bootstrap_ci([], seed=0) is None
    assert bootstrap_ci(np.array([1.0, 2.0, 3.0]), statistic=lambda v: float(np.max(v))) is not None


def test_rogan_gladen_hand_computed():
    # p_obs = .2, sens = .9, spec = .95: (.2 + .95 - 1) / (.9 + .95 - 1) = .15/.85 = .176470...
    assert rogan_gladen_point(0.2, 0.9, 0.95) == pytest.approx(0.15 / 0.85)
    assert rogan_gladen_point(0.01, 0.9, 0.95) == 0.0  # clipped at 0
    assert rogan_gladen_point(0.99, 0.9, 0.95) == 1.0  # clipped at 1
    assert rogan_gladen_point(0.3, 0.5, 0.5) is None  # uninformative judge
    c = rogan_gladen(20, 100, tp=90, fn=10, tn=95, fp=5)
    assert c.rate == pytest.approx(0.15 / 0.85)
    lo, hi = c.interval
    w = wilson_interval(20, 100)
    assert lo <= c.rate <= hi
    # The card's own uncertainty widens the interval beyond the uncorrected Wilson width.
    assert hi - lo > w[1] - w[0]
    assert rogan_gladen(20, 100, tp=90, fn=10, tn=95, fp=5) == c  # fixed seed
    assert rogan_gladen(0, 0, tp=1, fn=1, tn=1, fp=1) is None
    assert rogan_gladen(5, 10, tp=5, fn=5, tn=5, fp=5).informative is False


def test_corrected_interval_does_not_collapse_below_the_false_unsafe_rate():
    # 0/25 observed with a judge whose false-unsafe rate is ~16%: the point is clipped to 0, but the
    # interval must still admit some violations (25 items cannot prove a zero rate).
    c = rogan_gladen(0, 25, tp=213, fn=24, tn=147, fp=28)
    assert c.rate == 0.0
    assert c.interval[0] == 0.0 and 0.05 < c.interval[1] < 0.5
