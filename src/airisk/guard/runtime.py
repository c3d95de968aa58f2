"""Bounded checks for the HTTP service: every CPU-bound decision runs off the event loop, on a
small dedicated thread pool, under a real deadline; a check that misses it fails closed.

Why threads and not processes: the action gate keeps per-session state (rate windows, spend,
taint) that every decision must see, and the content model is loaded once per process. A thread
that overruns cannot be killed, but it no longer holds up anything else: the request gets a
fail-closed verdict at the deadline, ``/healthz`` and other requests are served by the event loop
meanwhile, and the pool's size bounds how many runaway checks can burn CPU at once (further checks
queue and meet their own deadline). The gate and content guard keep their own internal size limits
(string folding, decoded payloads, text windows) so that a runaway is the exception.

Readiness: ``warm_up()`` loads and exercises the models once, in the background, at start-up;
``/readyz`` answers 503 until it has finished, and checks that arrive earlier wait for it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airisk.guard.actions import Action, Decision
from airisk.guard.content import ContentDecision, ContentGuard
from airisk.guard.safe_completion import safe_completion


def audited(fut):
    """Await an audit future without ever cancelling it: a client that disconnects cancels the
    request's task, and a cancelled future would leave the audit writer unable to resolve it."""
    return asyncio.shield(asyncio.wrap_future(fut))


class Checks:
    def __init__(self, gate: Any, content: ContentGuard, *, workers: int = 4, gate_deadline_s: float = 2.0,
                 content_deadline_s: float = 30.0, trial: Any = None):
        self.gate, self.content, self.trial = gate, content, trial  # trial: isolation.GateTrial or None
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="airisk-check")
        self.gate_deadline_s, self.content_deadline_s = gate_deadline_s, content_deadline_s
        self.ready = threading.Event()
        self.warm_error: str | None = None
        self.warm_s: float | None = None

    # -- readiness --
    def warm_up(self) -> None:
        """Load and run every model once (blocking); sets ``ready`` on success."""
        t0 = time.perf_counter()
        try:
            d = self.content.check_input_texts(["warm-up: what is the capital of France?"])
            if "content.error" in d.rule_ids:
                raise RuntimeError(d.reasons[0] if d.reasons else "content scorer failed")
            d = self.content.check_output_texts("warm-up", ["Paris is the capital of France."])
            if "content.error" in d.rule_ids:
                raise RuntimeError(d.reasons[0] if d.reasons else "content scorer failed")
            self.gate.decide(Action(tool="__warm_up__", arguments={}))
            if self.trial is not None and (err := self.trial.prestart()):
                raise RuntimeError(err)
        except Exception as e:  # not ready; checks still fail closed on their own
            self.warm_error = f"{type(e).__name__}: {str(e)[:300]}"
            return
        self.warm_s = time.perf_counter() - t0
        self.ready.set()

    def start_warm_up(self) -> threading.Thread:
        t = threading.Thread(target=self.warm_up, name="airisk-warm-up", daemon=True)
        t.start()
        return t

    async def _await_ready(self, budget_s: float) -> None:
        if not self.ready.is_set() and self.warm_error is None:
            await asyncio.get_running_loop().run_in_executor(None, self.ready.wait, budget_s)

    # -- bounded checks --
    async def _run(self, deadline_s: float, fn, *args):
        fut = asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        return await asyncio.wait_for(fut, deadline_s)

    async def decide(self, action: Action) -> Decision:
        if self.trial is not None:
            ok, why = await self.trial.trial(action, self.gate_deadline_s)
            if not ok:
                verdict = getattr(self.gate, "on_error", "BLOCK")
                return Decision(verdict, ["gate.deadline"], [f"fail closed: {why}"], tool=action.tool)
        try:
            return await self._run(self.gate_deadline_s, self.gate.decide, action)
        except TimeoutError:
            verdict = getattr(self.gate, "on_error", "BLOCK")
            return Decision(verdict, ["gate.deadline"], [f"fail closed: the decision took longer than "
                                                          f"{self.gate_deadline_s:g}s and was abandoned"],
                            latency_us=self.gate_deadline_s * 1e6, tool=action.tool)

    async def check_input(self, texts: list[str], labels: list[str] | None = None) -> ContentDecision:
        t0 = time.perf_counter()
        await self._await_ready(self.content_deadline_s)
        left = max(0.01, self.content_deadline_s - (time.perf_counter() - t0))
        try:
            d = await self._run(left, self.content.check_input_texts, texts, labels)
        except TimeoutError:
            return self._late("input")
        if self.content._should_escalate(d, list(d.scores.values())):
            from airisk.types import Conversation

            await self.content._escalate(d, Conversation(prompt="\n\n".join(texts), response=""))
        return d

    async def check_output(self, prompt: str, texts: list[str], labels: list[str] | None = None) -> ContentDecision:
        t0 = time.perf_counter()
        await self._await_ready(self.content_deadline_s)
        left = max(0.01, self.content_deadline_s - (time.perf_counter() - t0))
        try:
            d = await self._run(left, self.content.check_output_texts, prompt, texts, labels)
        except TimeoutError:
            return self._late("output")
        vals = list(d.scores.values()) + ([d.harm] if d.harm is not None else [])
        if self.content._should_escalate(d, vals):
            from airisk.types import Conversation

            await self.content._escalate(d, Conversation(prompt=prompt, response="\n\n".join(texts)))
        return d

    def _late(self, stage: str) -> ContentDecision:
        pol = self.content.policy
        return ContentDecision(pol.on_error, stage, rule_ids=["content.deadline"],  # type: ignore[arg-type]
                               reasons=[f"fail closed: the content check took longer than {self.content_deadline_s:g}s"],
                               safe_completion=safe_completion([], pol.safe_completions),
                               latency_ms=self.content_deadline_s * 1e3)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.trial is not None:
            self.trial.close()
