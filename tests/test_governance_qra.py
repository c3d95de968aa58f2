"""QRA: Monte Carlo annual loss against closed forms and a hand-computed example; seeded; mitigation."""

import math

import numpy as np
import pytest
from scipy import stats

from airisk.governance.qra import (RateInput, annual_loss, beta_from_interval, closed_form_mean, impact_moments,
                                   sample_impact)
from airisk.governance.register import Exposure, Impact

EUR = "EUR/incident"


def test_hand_computed_example():
    """10,000 requests/yr, 1% risky -> 100 risky requests; 5% of them violate -> 5 incidents/yr on average;
    each costs 2,000 EUR. By hand: mean loss 5 x 2,000 = 10,000 EUR/yr; P(no loss) = e^-5 = 0.67%;
    the loss is 2,000 x Poisson(5), so its median is 2,000 x 5 = 10,000 and its 95th percentile
    2,000 x 9 = 18,000 (P(K <= 8) = 0.932 < 0.95 <= P(K <= 9) = 0.968)."""
    exp = Exposure(requests_per_year=10_000, risky_share=0.01)
    imp = Impact(distribution="fixed", value=2000, unit=EUR)
    rate = RateInput(rate=0.05, low=0.05, high=0.05)
    d, losses = annual_loss(exp, imp, rate, rate_model="point", draws=100_000, seed=7)
    assert closed_form_mean(exp, imp, 0.05) == pytest.approx(10_000)
    assert d.mean == pytest.approx(10_000, rel=0.01)  # SE of the mean is 0.14%
    assert 1 - d.p_any_loss == pytest.approx(math.exp(-5), abs=0.002)
    assert d.percentiles["p50"] == 10_000 and d.percentiles["p95"] == 18_000
    assert d.unit == "EUR/year" and d.expected_incidents == pytest.approx(5)
    # the exceedance curve is a survival function: P(L >= 2,000) = P(K >= 1)
    assert set(np.unique(losses) % 2000) == {0}


@pytest.mark.parametrize("imp", [
    Impact(distribution="lognormal", low=1_000, high=100_000, unit=EUR),
    Impact(distribution="pert", low=1_000, mode=5_000, high=50_000, unit=EUR),
    Impact(distribution="triangular", low=1_000, mode=5_000, high=50_000, unit=EUR),
])
def test_closed_form_mean_and_zero_loss_probability(imp):
    exp = Exposure(requests_per_year=1_000_000, risky_share="0.1%")  # 1,000 risky requests
    rate = RateInput(rate=0.004, low=0.004, high=0.004)  # lambda = 4
    d, _ = annual_loss(exp, imp, rate, rate_model="point", draws=100_000, seed=1)
    mean_i, var_i = impact_moments(imp)
    lam = 4.0
    # compound Poisson: E[L] = lambda E[I], Var[L] = lambda E[I^2]; allow 5 standard errors
    se = math.sqrt(lam * (var_i + mean_i**2) / 100_000)
    assert abs(d.mean - lam * mean_i) < 5 * se
    assert d.mean == pytest.approx(closed_form_mean(exp, imp, 0.004), rel=0.03)
    assert 1 - d.p_any_loss == pytest.approx(math.exp(-lam), abs=0.003)


def test_impact_samplers_match_their_closed_forms():
    rng = np.random.default_rng(0)
    ln = Impact(distribution="lognormal", low=100, high=10_000, unit=EUR)
    x = sample_impact(ln, rng, 200_000)
    assert np.quantile(x, 0.05) == pytest.approx(100, rel=0.03) and np.quantile(x, 0.95) == pytest.approx(10_000, rel=0.03)
    for imp in (Impact(distribution="pert", low=0, mode=2, high=10, unit=EUR),
                Impact(distribution="triangular", low=0, mode=2, high=10, unit=EUR)):
        x = sample_impact(imp, rng, 200_000)
        m, v = impact_moments(imp)
        assert x.mean() == pytest.approx(m, rel=0.01) and x.var() == pytest.approx(v, rel=0.03)
        assert x.min() >= 0 and x.max() <= 10
    assert impact_moments(Impact(distribution="pert", low=0, mode=2, high=10, unit=EUR))[0] == pytest.approx((0 + 8 + 10) / 6)


def test_rate_uncertainty_is_propagated_and_seeded():
    a, b = beta_from_interval(0.1, 0.06, 0.15)
    assert stats.beta.ppf(0.025, a, b) == pytest.approx(0.06, abs=0.003)
    assert stats.beta.ppf(0.975, a, b) == pytest.approx(0.15, abs=0.003)
    exp = Exposure(requests_per_year=100_000, risky_share=0.01)
    imp = Impact(distribution="fixed", value=100, unit=EUR)
    wide = RateInput(rate=0.1, low=0.06, high=0.15)
    d1, l1 = annual_loss(exp, imp, wide, draws=50_000, seed=3)
    d2, l2 = annual_loss(exp, imp, wide, draws=50_000, seed=3)
    assert np.array_equal(l1, l2) and d1 == d2  # same seed, same numbers
    point, _ = annual_loss(exp, imp, wide, rate_model="point", draws=50_000, seed=3)
    assert d1.std > 1.5 * point.std  # an uncertain rate widens the loss distribution
    assert d1.mean == pytest.approx(point.mean, rel=0.05)


def test_mitigation_lowers_the_whole_curve():
    exp = Exposure(requests_per_year=100_000, risky_share=0.01)
    imp = Impact(distribution="lognormal", low=100, high=10_000, unit=EUR)
    before, _ = annual_loss(exp, imp, RateInput(rate=0.5, low=0.43, high=0.57), draws=20_000, seed=0)
    after, _ = annual_loss(exp, imp, RateInput(rate=0.1, low=0.06, high=0.15), draws=20_000, seed=0)
    assert after.mean < before.mean / 3
    assert all(after.percentiles[k] < before.percentiles[k] for k in before.percentiles)


def test_large_counts_use_a_stated_approximation(monkeypatch):
    from airisk.governance import qra

    monkeypatch.setattr(qra, "MAX_EXACT_DRAWS", 1000)
    exp = Exposure(requests_per_year=1e7, risky_share=0.01)
    imp = Impact(distribution="triangular", low=10, mode=20, high=60, unit=EUR)
    d, _ = annual_loss(exp, imp, RateInput(rate=0.01, low=0.01, high=0.01), rate_model="point", draws=2000, seed=0)
    assert d.approximation and "normal approximation" in d.approximation
    assert d.mean == pytest.approx(closed_form_mean(exp, imp, 0.01), rel=0.01)
