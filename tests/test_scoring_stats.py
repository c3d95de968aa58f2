"""Statistics against hand-computed values (formulas written out in the comments)."""

import math

import numpy as np
import pytest

from airisk.stats import (
    bootstrap_ci,
    corrected_rate,
    newcombe_diff_interval,
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
    c = corrected_rate(20, 100, tp=90, fn=10, tn=95, fp=5)
    assert c.value == pytest.approx(0.15 / 0.85)
    lo, hi = c.low, c.high
    w = wilson_interval(20, 100)
    assert lo <= c.value <= hi
    # The card's own uncertainty widens the interval beyond the uncorrected Wilson width.
    assert hi - lo > w[1] - w[0]
    assert corrected_rate(20, 100, tp=90, fn=10, tn=95, fp=5) == c  # fixed seed
    assert corrected_rate(0, 0, tp=1, fn=1, tn=1, fp=1).value is None
    assert corrected_rate(5, 10, tp=5, fn=5, tn=5, fp=5).method.startswith("uncorrectable")


def test_corrected_interval_does_not_collapse_below_the_false_unsafe_rate():
    # 0/25 observed with a judge whose false-unsafe rate is ~16%: the point is clipped to 0, but the
    # interval must still admit some violations (25 items cannot prove a zero rate).
    c = corrected_rate(0, 25, tp=213, fn=24, tn=147, fp=28)
    assert c.value == 0.0
    assert c.low == 0.0 and 0.05 < c.high < 0.5


# -- one statistics module: published examples and SciPy ------------------------------------------------

from scipy import stats as sps  # noqa: E402

from airisk.stats import (  # noqa: E402
    FISHER,
    TWO_PROPORTION,
    compare_proportions,
    fisher_exact,
    mcnemar_exact,
    paired_diff_interval,
    proportion,
    z_test_valid,
)


@pytest.mark.parametrize("k,n,low,high", [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3 (Wilson)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
])
def test_wilson_published_examples(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_matches_scipy_and_proportion_wraps_it():
    for k, n in [(85, 100), (0, 20), (20, 20), (3, 7), (412, 412)]:
        ci = sps.binomtest(k, n).proportion_ci(method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
        e = proportion(k, n)
        assert (e.value, e.low, e.high, e.k, e.n, e.method) == (k / n, *wilson_interval(k, n), k, n, "wilson")
    assert proportion(0, 0).value is None


def test_fisher_published_example_and_scipy():
    # Fisher's lady tasting tea: [[3, 1], [1, 3]], two-sided p = 0.4857 (Agresti, Categorical Data Analysis, 3.5.1)
    assert fisher_exact(3, 4, 1, 4) == pytest.approx(0.4857, abs=1e-4)
    for k1, n1, k2, n2 in [(0, 200, 1, 2), (2, 30, 9, 31), (0, 10, 0, 12)]:
        ref = sps.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
        assert fisher_exact(k1, n1, k2, n2) == pytest.approx(ref, rel=1e-12)


def test_small_samples_use_the_exact_test():
    # The example: 0/200 vs 1/2. z-test: p = 1.2e-23 (absurd); Fisher: 2/202 = 0.0099.
    assert two_proportion_test(0, 200, 1, 2)[1] < 1e-20
    z, p, method = compare_proportions(0, 200, 1, 2)
    assert z is None and method == FISHER and p == pytest.approx(2 / 202)
    # Large samples with every expected count >= 5 keep the z-test (valid there, and it matches above).
    assert z_test_valid(10, 100, 20, 100)
    z, p, method = compare_proportions(10, 100, 20, 100)
    assert method == TWO_PROPORTION and p == pytest.approx(two_proportion_test(10, 100, 20, 100)[1])
    assert not z_test_valid(1, 1000, 4, 1000)  # rare events: exact even with large n
    assert compare_proportions(1, 0, 1, 5)[1] == 1.0


def test_mcnemar_exact_published_example_and_scipy():
    # Fagerland, Lydersen & Laake (2013), BMC Med Res Methodol 13:91, airway hyper-responsiveness example:
    # discordant pairs b = 1, c = 7 -> exact conditional McNemar p = 0.070.
    assert round(mcnemar_exact(1, 7), 3) == 0.070
    assert mcnemar_exact(1, 7) == pytest.approx(2 * (1 + 8) / 2 ** 8)
    for b, c in [(4, 0), (10, 3), (25, 25)]:
        assert mcnemar_exact(b, c) == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue)
    assert mcnemar_exact(0, 0) == 1.0


def test_paired_interval_properties():
    # Uncorrelated pairs (phi = 0) give back the independent-samples Newcombe interval ...
    assert paired_diff_interval(0, 4, 0, 4) == pytest.approx(newcombe_diff_interval(0, 8, 4, 8))
    # ... positively correlated pairs give a narrower one than treating the samples as independent.
    lo, hi = paired_diff_interval(30, 12, 2, 56)
    ilo, ihi = newcombe_diff_interval(32, 100, 42, 100)
    assert lo <= 0.10 <= hi and hi - lo < ihi - ilo
    # antisymmetric in the two members of the pair
    assert paired_diff_interval(5, 7, 2, 9) == pytest.approx(tuple(-x for x in reversed(paired_diff_interval(5, 2, 7, 9))))
    assert paired_diff_interval(0, 0, 0, 0) is None


def test_card_and_report_give_the_same_corrected_rate():
    from airisk.judges.cards import JudgeCard, LabelSetInfo
    from airisk.judges.cards import corrected_rate as card_corrected
    from airisk.scoring.rates import _corrected

    card = JudgeCard.model_construct(tp=213, fn=24, tn=147, fp=28, label_set=LabelSetInfo.model_construct(name="x"))
    for k, n in [(30, 100), (0, 25), (7, 12)]:
        a = card_corrected(k, n, 213, 24, 147, 28)
        b = _corrected(k, n, card, seed=0)
        assert (a.value, a.low, a.high) == (b.rate, b.low, b.high)
    # docs/judges.md quotes these: 30/100 -> 18.95% [6.0%, 32.0%]; 0/25 no longer collapses to [0, 0]
    a = card_corrected(30, 100, 213, 24, 147, 28)
    assert (round(a.value, 4), round(a.low, 3), round(a.high, 3)) == (0.1895, 0.06, 0.32)
    z = card_corrected(0, 25, 213, 24, 147, 28)
    assert z.value == 0.0 and z.low == 0.0 and z.high > 0.1


def test_rates_use_the_seeded_bootstrap(tmp_path):
    from airisk.scoring.rates import score_records
    from airisk.scoring.synthetic import build_run
    from airisk.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    rows = [{"hazard": "vcr", "outcome": "violating" if i < 30 else "safe"} for i in range(100)]
    build_run(store, "r", rows)
    s = score_records(store.get_run("r"), store.records("r"), seed=5)
    vals = [1.0] * 30 + [0.0] * 70
    assert (s.overall_bootstrap["low"], s.overall_bootstrap["high"]) == pytest.approx(bootstrap_ci(vals, seed=5))


def test_compare_and_gate_regression_use_the_exact_test_on_small_samples(tmp_path):
    import airisk
    from airisk.scoring.synthetic import build_run
    from airisk.store import Store

    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    build_run(store, "base", [{"hazard": "vcr", "outcome": "safe"}] * 200)
    build_run(store, "cand", [{"hazard": "vcr", "outcome": "violating"}, {"hazard": "vcr", "outcome": "safe"}])
    row = airisk.compare("base", "cand", db=db).hazards[0]
    assert (row.a_k, row.a_n, row.b_k, row.b_n) == (0, 200, 1, 2)
    assert row.test == FISHER and row.p_value == pytest.approx(0.0099, abs=1e-4)  # was 1.19e-23 (z-test)
    g = airisk.gate("cand", baseline="base", db=db, allow_partial=True)
    reg = next(c for c in g.checks if c.name == "regression vcr")
    assert "p=0.0099" in reg.why and "Fisher" in reg.why


def test_roc_auc_matches_scikit_learn_with_ties_and_needs_both_classes():
    from sklearn.metrics import roc_auc_score

    from airisk.stats import roc_auc

    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    s = np.round(rng.random(300) + 0.3 * y, 1)  # rounded: many ties
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert roc_auc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == 1.0
    assert roc_auc([0, 1], [0.9, 0.1]) == 0.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts half
    assert roc_auc([1, 1], [0.2, 0.3]) is None and roc_auc([], []) is None
    with pytest.raises(ValueError, match="length"):
        roc_auc([0, 1], [0.5])


def test_auc_difference_interval_is_paired_seeded_and_covers_zero_for_equal_rankings():
    from airisk.stats import auc_difference_ci

    rng = np.random.default_rng(2)
    y = rng.random(400) < 0.4
    a = rng.random(400) + 0.5 * y
    # same ranking, other scale: the difference is exactly 0 on every draw
    assert auc_difference_ci(y, a, a ** 3) == (0.0, 0.0)
    # a clearly better ranking: the whole interval is above 0; the same seed gives the same interval
    b = a + 1.0 * y
    ci = auc_difference_ci(y, a, b)
    assert ci is not None and 0 < ci[0] < ci[1] and ci == auc_difference_ci(y, a, b)
    # a little noise on the same scores: the interval straddles 0
    lo, hi = auc_difference_ci(y, a, a + rng.normal(0, 0.01, 400)) or (1.0, 1.0)
    assert lo < 0 < hi
    assert auc_difference_ci([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]) is None
    with pytest.raises(ValueError, match="length"):
        auc_difference_ci([0, 1], [0.1, 0.2], [0.3])
