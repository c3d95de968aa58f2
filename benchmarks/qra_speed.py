"""Run time of the QRA Monte Carlo (airisk.governance.qra) for 100,000 simulated years.

Prints, side by side, the vectorised simulation for a few exposure sizes and impact distributions and a
naive per-year Python loop (the obvious first implementation) on the same inputs, with the mean loss of
each so the two can be compared. Usage: ``python benchmarks/qra_speed.py [--draws 100000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from airisk.governance.qra import RateInput, annual_loss, beta_from_interval, sample_impact
from airisk.governance.register import Exposure, Impact

CASES = [
    ("5 incidents/yr, lognormal, rate interval", Exposure(requests_per_year=2e6, risky_share=0.002),
     Impact(distribution="lognormal", low=200, high=50_000, unit="EUR/incident"), RateInput(rate=0.00125, low=0.0005, high=0.003)),
    ("50 incidents/yr, PERT, rate interval", Exposure(requests_per_year=1e5, risky_share=0.001),
     Impact(distribution="pert", low=100, mode=2000, high=40_000, unit="EUR/incident"), RateInput(rate=0.5, low=0.43, high=0.57)),
    ("500 incidents/yr, triangular, point rate", Exposure(requests_per_year=1e6, risky_share=0.01),
     Impact(distribution="triangular", low=10, mode=50, high=500, unit="EUR/incident"), RateInput(rate=0.05, low=0.05, high=0.05)),
]


def naive(exp: Exposure, imp: Impact, rate: RateInput, draws: int, seed: int, point: bool) -> np.ndarray:
    """One simulated year at a time (reference implementation)."""
    rng = np.random.default_rng(seed)
    a_b = None if point else beta_from_interval(rate.rate, rate.low, rate.high)
    out = np.empty(draws)
    for i in range(draws):
        p = rate.rate if point else rng.beta(*a_b)
        k = rng.poisson(exp.requests_per_year * exp.risky_share * p)
        out[i] = sample_impact(imp, rng, k).sum() if k else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive-draws", type=int, default=None, help="draws for the naive loop (default: --draws)")
    args = ap.parse_args()
    nd = args.naive_draws or args.draws
    print(f"QRA Monte Carlo, {args.draws} simulated years (best of {args.repeat}); naive loop: {nd} years, 1 run")
    print(f"{'case':44} {'vectorised s':>12} {'mean loss':>14} {'naive loop s':>13} {'naive mean':>14} {'speed-up':>9}")
    for name, exp, imp, rate in CASES:
        point = rate.low == rate.high
        model = "point" if point else "interval"
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            d, _ = annual_loss(exp, imp, rate, rate_model=model, draws=args.draws, seed=0)
            best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        ref = naive(exp, imp, rate, nd, 0, point)
        tn = time.perf_counter() - t
        speed = (tn * args.draws / nd) / best
        print(f"{name:44} {best:12.3f} {d.mean:14,.0f} {tn:13.2f} {ref.mean():14,.0f} {speed:8.0f}x")


if __name__ == "__main__":
    main()
