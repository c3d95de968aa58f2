"""Retries with exponential backoff and jitter, and a requests-per-second limiter.

``call_with_retries`` is the one place where a system's transient failures (429, 5xx, timeouts,
connection errors, malformed bodies) are retried. After the last retry the failure is returned as
a ``Completion`` with ``error`` set: it is recorded as an error, never as a response.
"""

from __future__ import annotations

import asyncio
import random
import time

from pydantic import BaseModel, ConfigDict

from airisk.systems.base import PermanentError, System, TransientError
from airisk.types import Completion, Item, Message


# Indirection so tests can observe backoff delays without patching asyncio for everyone.
_sleep = asyncio.sleep


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt setting must not silently become a default

    max_retries: int = 5
    base_delay: float = 0.5  # seconds before the first retry
    max_delay: float = 30.0
    jitter: float = 0.5  # +/- this fraction of the delay, so clients do not retry in lockstep
    max_retry_after: float = 120.0  # cap on a server's Retry-After hint
    timeout: float | None = None  # overall per-attempt guard for systems without their own timeout

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        r = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, delay * (1 + r))


class RateLimiter:
    """Token bucket: at most ``rps`` acquisitions per second on average, bursts up to ``burst``."""

    def __init__(self, rps: float, burst: int | None = None, *, clock=time.monotonic, sleep=None):
        if rps <= 0:
            raise ValueError("rps must be positive")
        self.rps = rps
        self.capacity = float(burst or max(1, int(rps)))
        self.tokens = self.capacity
        self._clock = clock
        self._sleep = sleep or asyncio.sleep
        self.updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rps)
                self.updated = now
                if self.tokens >= 1 - 1e-9:  # tolerance: float dust must not cause a spin of tiny sleeps
                    self.tokens = max(0.0, self.tokens - 1)
                    return
                await self._sleep((1 - self.tokens) / self.rps)


async def call_with_retries(
    system: System, messages: list[Message], *, item: Item | None = None, policy: RetryPolicy | None = None,
    limiter: RateLimiter | None = None,
) -> Completion:
    """Ask ``system`` once, retrying transient failures; never raises for a failed request."""
    policy = policy or RetryPolicy()
    attempt = 0
    while True:
        attempt += 1
        if limiter is not None:
            await limiter.acquire()
        try:
            if policy.timeout:
                try:
                    completion = await asyncio.wait_for(system.generate(messages, item=item), policy.timeout)
                except asyncio.TimeoutError:
                    raise TransientError(f"no answer within {policy.timeout:g}s", kind="timeout") from None
            else:
                completion = await system.generate(messages, item=item)
        except TransientError as e:
            if attempt > policy.max_retries:
                return Completion(error=f"{e} (after {attempt} attempts)", error_kind=e.kind, attempts=attempt)
            if e.retry_after is not None:
                delay = min(e.retry_after, policy.max_retry_after)
            else:
                delay = policy.backoff(attempt)
            await _sleep(delay)
            continue
        except PermanentError as e:
            return Completion(error=str(e), error_kind=e.kind, attempts=attempt)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in a plugin must not kill a 10,000-item run
            return Completion(error=f"{type(e).__name__}: {e}", error_kind="exception", attempts=attempt)
        if completion.attempts != attempt:
            completion = completion.model_copy(update={"attempts": attempt})
        return completion
