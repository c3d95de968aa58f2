"""Quantitative risk assessment: annualised loss per hazard, in money, by seeded Monte Carlo.

The model, in the spirit of FAIR (loss event frequency x loss magnitude), per hazard and year:

* ``R = requests_per_year x risky_share`` risky requests reach the system (exposure, from the register);
* each one becomes an incident with probability ``p``, the measured violation rate. ``p`` is uncertain:
  with ``rate_model: interval`` every simulated year draws ``p`` from a Beta distribution whose 2.5th
  and 97.5th percentiles match the check's 95% interval (the judge-corrected one when the judge has a
  card); with ``rate_model: point`` ``p`` is the point estimate;
* the number of incidents is Poisson(R x p) (the limit of Binomial(R, p) for rare events);
* each incident costs a draw from the impact distribution (lognormal from a 90% range, PERT or
  triangular from min/mode/max, or fixed), in ``<currency>/incident``.

The annual loss is the sum of the incident costs, in ``<currency>/year``. With a point rate its mean
has the closed form ``R x p x E[impact]`` (the tests check it). Exact compound sums are drawn while
the total number of incidents stays below ``MAX_EXACT_DRAWS``; beyond that, simulated years with more
than ``CLT_MIN_INCIDENTS`` incidents use the normal approximation of their sum (central limit theorem),
and the result says so. The same seed gives the same numbers; a mitigation is simulated with the same
seed (common random numbers), so the difference shows the mitigation, not simulation noise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from airisk.errors import AiriskError
from airisk.governance.register import Exposure, Impact

MAX_EXACT_DRAWS = 20_000_000
CLT_MIN_INCIDENTS = 500
PERCENTILES = (5, 50, 90, 95, 99)
_Z975 = 1.959963984540054
_Z95 = 1.6448536269514722


# -- impact distributions -------------------------------------------------------------------------


def _lognormal_params(imp: Impact) -> tuple[float, float]:
    mu = (math.log(imp.low) + math.log(imp.high)) / 2
    sigma = (math.log(imp.high) - math.log(imp.low)) / (2 * _Z95)
    return mu, sigma


def _pert_params(imp: Impact) -> tuple[float, float]:
    a, m, b = imp.low, imp.mode, imp.high
    return 1 + 4 * (m - a) / (b - a), 1 + 4 * (b - m) / (b - a)


def impact_moments(imp: Impact) -> tuple[float, float]:
    """Mean and variance of the loss per incident (closed forms)."""
    if imp.distribution == "fixed":
        return imp.value, 0.0
    if imp.distribution == "lognormal":
        mu, s = _lognormal_params(imp)
        return math.exp(mu + s * s / 2), (math.exp(s * s) - 1) * math.exp(2 * mu + s * s)
    a, m, b = imp.low, imp.mode, imp.high
    if imp.distribution == "triangular":
        return (a + m + b) / 3, (a * a + b * b + m * m - a * b - a * m - b * m) / 18
    al, be = _pert_params(imp)  # PERT: a + (b - a) * Beta(al, be)
    mean = a + (b - a) * al / (al + be)
    var = (b - a) ** 2 * al * be / ((al + be) ** 2 * (al + be + 1))
    return mean, var


def sample_impact(imp: Impact, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` draws of the loss per incident."""
    if imp.distribution == "fixed":
        return np.full(size, float(imp.value))
    if imp.distribution == "lognormal":
        mu, s = _lognormal_params(imp)
        return rng.lognormal(mu, s, size)
    if imp.distribution == "triangular":
        if imp.low == imp.high:
            return np.full(size, float(imp.low))
        return rng.triangular(imp.low, imp.mode, imp.high, size)
    al, be = _pert_params(imp)
    return imp.low + (imp.high - imp.low) * rng.beta(al, be, size)


# -- the violation rate's uncertainty -------------------------------------------------------------


class RateInput(BaseModel):
    """The measured rate that drives a risk: point estimate and 95% interval, with where it came from."""

    rate: float = Field(ge=0, le=1)
    low: float = Field(ge=0, le=1)
    high: float = Field(ge=0, le=1)
    basis: str = ""
    run_id: str | None = None


def beta_from_interval(rate: float, low: float, high: float) -> tuple[float, float]:
    """Beta(a, b) whose 2.5th and 97.5th percentiles match ``[low, high]`` (least squares on log a, log b)."""
    from scipy import optimize, stats

    lo, hi = max(low, 1e-9), min(high, 1 - 1e-9)
    m = min(max(rate, lo, 1e-6), hi, 1 - 1e-6)
    sd = max((hi - lo) / (2 * _Z975), 1e-6)
    k = max(m * (1 - m) / sd**2 - 1, 1e-3)  # method of moments as the starting point
    x0 = np.log([max(m * k, 1e-3), max((1 - m) * k, 1e-3)])

    def resid(x: np.ndarray) -> np.ndarray:
        a, b = np.exp(x)
        q = stats.beta.ppf([0.025, 0.975], a, b)
        w = 0.0 if low <= 0 else 1.0  # a lower bound of 0 says only "could be 0": match the upper end
        return np.array([w * (q[0] - lo) / max(hi, 1e-9), (q[1] - hi) / max(hi, 1e-9)])

    sol = optimize.least_squares(resid, x0, bounds=([-12, -12], [12, 16]))
    a, b = np.exp(sol.x)
    return float(a), float(b)


# -- simulation -----------------------------------------------------------------------------------


class LossDistribution(BaseModel):
    """Summary of simulated annual losses (``unit``, e.g. ``EUR/year``)."""

    unit: str
    draws: int
    seed: int
    mean: float
    std: float
    p_any_loss: float
    percentiles: dict[str, float]
    exceedance: list[tuple[float, float]]  # (loss, P(annual loss >= loss))
    approximation: str | None = None
    expected_incidents: float


def _sums(k: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """Per-year sums of consecutive blocks of ``losses`` (year i owns the next ``k[i]`` draws)."""
    c = np.concatenate(([0.0], np.cumsum(losses)))
    end = np.cumsum(k)
    return c[end] - c[end - k]


def _compound(k: np.ndarray, imp: Impact, rng: np.random.Generator) -> tuple[np.ndarray, str | None]:
    if imp.distribution == "fixed":
        return k * float(imp.value), None
    total = int(k.sum())
    if total <= MAX_EXACT_DRAWS:
        return _sums(k, sample_impact(imp, rng, total)), None
    mean, var = impact_moments(imp)
    big = k >= CLT_MIN_INCIDENTS
    small_k = np.where(big, 0, k)
    out = _sums(small_k, sample_impact(imp, rng, int(small_k.sum())))
    z = rng.standard_normal(int(big.sum()))
    out[big] = k[big] * mean + np.sqrt(k[big] * var) * z
    return np.maximum(out, 0.0), (f"normal approximation (CLT) for the loss sum in the {int(big.sum())} simulated years "
                                  f"with >= {CLT_MIN_INCIDENTS} incidents")


def exceedance_points(losses: np.ndarray, n: int = 40) -> list[tuple[float, float]]:
    """Loss exceedance curve: log-spaced losses from the 1st positive percentile to the maximum."""
    pos = np.sort(losses[losses > 0])
    if pos.size == 0:
        return []
    lo, hi = float(np.quantile(pos, 0.01)), float(pos[-1])
    xs = np.geomspace(max(lo, 1e-9), max(hi, lo * 1.0001), n)
    ge = losses.size - np.searchsorted(np.sort(losses), xs, side="left")
    return [(float(x), float(c / losses.size)) for x, c in zip(xs, ge)]


def simulate_losses(exposure: Exposure, impact: Impact, rate: RateInput, *, rate_model: str = "interval",
                    draws: int = 100_000, seed: int = 0) -> tuple[np.ndarray, str | None]:
    """Simulated annual losses (one per simulated year) and a note when an approximation was used."""
    if draws < 1:
        raise AiriskError("draws must be at least 1")
    rng = np.random.default_rng(seed)
    risky = exposure.requests_per_year * exposure.risky_share
    if rate_model == "point" or rate.high <= rate.low:
        p = np.full(draws, rate.rate)
    else:
        a, b = beta_from_interval(rate.rate, rate.low, rate.high)
        p = rng.beta(a, b, draws)
    k = rng.poisson(risky * p)
    return _compound(k, impact, rng)


def summarise(losses: np.ndarray, *, unit: str, seed: int, expected_incidents: float, approximation: str | None = None) -> LossDistribution:
    q = np.percentile(losses, PERCENTILES)
    return LossDistribution(unit=unit, draws=int(losses.size), seed=seed, mean=float(losses.mean()), std=float(losses.std()),
                            p_any_loss=float((losses > 0).mean()), percentiles={f"p{p}": float(v) for p, v in zip(PERCENTILES, q)},
                            exceedance=exceedance_points(losses), approximation=approximation,
                            expected_incidents=expected_incidents)


def annual_loss(exposure: Exposure, impact: Impact, rate: RateInput, *, rate_model: str = "interval",
                draws: int = 100_000, seed: int = 0) -> tuple[LossDistribution, np.ndarray]:
    """Simulate and summarise; also returns the raw draws (to add risks up per use case)."""
    losses, note = simulate_losses(exposure, impact, rate, rate_model=rate_model, draws=draws, seed=seed)
    exp_inc = exposure.requests_per_year * exposure.risky_share * rate.rate
    return summarise(losses, unit=f"{impact.currency}/year", seed=seed, expected_incidents=exp_inc, approximation=note), losses


def closed_form_mean(exposure: Exposure, impact: Impact, rate: float) -> float:
    """E[annual loss] = requests/year x risky share x rate x E[loss per incident] (point rate)."""
    return exposure.requests_per_year * exposure.risky_share * rate * impact_moments(impact)[0]


# -- the register's risks -------------------------------------------------------------------------


class RiskResult(BaseModel):
    id: str
    title: str = ""
    hazard: str | None
    check: str
    use_cases: list[str]
    exposure: dict[str, Any]
    impact: dict[str, Any]
    impact_mean: float
    rate: RateInput | None
    rate_model: str
    loss: LossDistribution | None
    closed_form_mean: float | None = None
    mitigation: str | None = None
    mitigation_check: str | None = None
    mitigated_rate: RateInput | None = None
    mitigated_loss: LossDistribution | None = None
    reason: str = ""


def rate_from_check(check_result: Any) -> RateInput | None:
    """The rate a check measured on its deciding run (highest bound): corrected interval if any, else Wilson."""
    d = check_result.deciding() if check_result is not None else None
    if d is None:
        return None
    iv = d.corrected or d.observed
    basis = ("judge-corrected " if d.corrected else "observed ") + f"rate on run {d.run_id} ({d.k}/{d.n}, {iv.method})"
    return RateInput(rate=iv.rate, low=iv.low, high=iv.high, basis=basis, run_id=d.run_id)


def assess_risks(register: Any, report: Any, *, draws: int = 100_000, seed: int = 0) -> tuple[list[RiskResult], dict[str, np.ndarray]]:
    """Annualised loss for every risk of the register, with and without its mitigation."""
    out, raw = [], {}
    for i, risk in enumerate(register.risks):
        imp = risk.impact
        res = RiskResult(id=risk.id, title=risk.title, hazard=risk.hazard, check=risk.check, use_cases=risk.use_cases,
                         exposure=risk.exposure.model_dump(), impact=imp.model_dump(exclude_none=True),
                         impact_mean=impact_moments(imp)[0], rate=rate_from_check(report.check(risk.check)),
                         rate_model=risk.rate_model, loss=None,
                         mitigation=risk.mitigation.name if risk.mitigation else None,
                         mitigation_check=risk.mitigation.check if risk.mitigation else None)
        s = seed + i  # one stream per risk, so adding a risk does not change the others
        if res.rate is None:
            res.reason = f"check {risk.check} is not measured: no loss estimate"
        else:
            res.loss, raw[risk.id] = annual_loss(risk.exposure, imp, res.rate, rate_model=risk.rate_model, draws=draws, seed=s)
            res.closed_form_mean = closed_form_mean(risk.exposure, imp, res.rate.rate)
        if risk.mitigation:
            res.mitigated_rate = rate_from_check(report.check(risk.mitigation.check))
            if res.mitigated_rate is not None:
                res.mitigated_loss, raw[risk.id + "#mitigated"] = annual_loss(
                    risk.exposure, imp, res.mitigated_rate, rate_model=risk.rate_model, draws=draws, seed=s)
            else:
                res.reason += f" mitigation check {risk.mitigation.check} is not measured."
        out.append(res)
    return out, raw
