"""A deterministic content scorer with the offline judge's interface, for tests and benchmarks.

``MarkerScorer`` flags a text for a hazard when it contains one of that hazard's marker phrases
(case-insensitive), and scores a response as violating when it contains a harmful marker. It lets
tests of the guard's plumbing (which texts reach the classifier, what happens on a block) run
without loading a model; the real model is tested separately (tests/test_guard_models.py).
"""

from __future__ import annotations

import time
from typing import Iterable

import numpy as np


class MarkerScorer:
    threshold = 0.5

    def __init__(self, hazards: dict[str, Iterable[str]] | None = None, harmful: Iterable[str] = ("synthesis route",),
                 delay_s: float = 0.0):
        self.hazards = {h: tuple(m.lower() for m in ms) for h, ms in (hazards or {"iwp": ("nerve agent",)}).items()}
        self.harmful = tuple(m.lower() for m in harmful)
        self.delay_s = delay_s  # per call, to stand in for model latency
        self.seen: list[str] = []  # every text classified (tests assert what reached the classifier)

    def _wait(self) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)

    def hazard_scores(self, texts: list[str]) -> list[dict[str, float]]:
        self._wait()
        self.seen += texts
        return [{h: 0.97 if any(m in t.lower() for m in ms) else 0.01 for h, ms in self.hazards.items()} for t in texts]

    def score(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        self._wait()
        self.seen += responses
        return np.array([0.98 if any(m in r.lower() for m in self.harmful) else 0.03 for r in responses])
