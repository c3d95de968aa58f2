"""The run's coordinator: one small async Ray actor that every shard talks to.

It holds what must be global across the cluster:

- the **request limit**: at most ``concurrency`` requests in flight to the system under test,
  counted over all workers on all nodes (a per-worker limit would multiply with the cluster size);
- the optional **requests-per-second** token bucket, also global;
- the **shard queue**: worker slots pull shards one after another (a fast worker takes more), and
  the shards a slot had claimed go back to the queue when the slot dies;
- **slot attempts**: a slot task that starts again was retried by Ray after its worker died; the
  retry is counted (so it shows in the run's error counts) and the permits the dead attempt held
  are given back, so a killed worker cannot shrink the limit for the rest of the run;
- **per-worker counts** for the live progress bar and the end-of-run summary.

It is placed on the driver's node, so losing a worker node never loses the coordinator.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict, deque
from typing import Any


class Coordinator:
    def __init__(self, concurrency: int, rps: float | None = None):
        from airisk.engine.retry import RateLimiter

        self.limit = concurrency
        self.free = concurrency
        self.waiters: list[tuple[str, asyncio.Future]] = []
        self.held: Counter[str] = Counter()  # holder ("shard#attempt") -> permits held
        self.dead: set[str] = set()  # holders whose worker died: anything granted to them is returned at once
        self.max_in_flight = 0
        self.bucket = RateLimiter(rps) if rps else None
        self.attempts: Counter[int] = Counter()
        self.shard_items: dict[int, list[dict[str, Any]]] = {}
        self.queue: deque[int] = deque()
        self.claimed: dict[str, set[int]] = defaultdict(set)
        self.finished: set[int] = set()
        self.holder_node: dict[str, str] = {}
        self.workers: dict[str, dict[str, Any]] = defaultdict(lambda: {"answered": 0, "errors": 0, "cached": 0,
                                                                     "shards": 0, "node": ""})
        self.t0 = time.monotonic()
        # first and last answers stored (and how many came with the first): the rate once workers run
        self.t_first = self.t_last = 0.0
        self.n_first = 0

    # -- global request limit ----------------------------------------------------------
    async def acquire(self, holder: str) -> bool:
        """Wait for a permit; False when ``holder`` was declared dead meanwhile (nothing is held then)."""
        if holder in self.dead:
            return False
        if self.free > 0 and not self.waiters:
            self.free -= 1
        else:
            fut = asyncio.get_running_loop().create_future()
            self.waiters.append((holder, fut))
            await fut  # the permit is handed over by release(), already counted
        if holder in self.dead:
            self._give_back(1)
            return False
        self.held[holder] += 1
        self.max_in_flight = max(self.max_in_flight, self.limit - self.free)
        return True

    async def acquire_many(self, holder: str, want: int) -> int:
        """Wait for at least one permit, take up to ``want`` that are free; returns how many (0: holder dead).

        Workers keep permits while they have work and give them back when they run dry, so the
        coordinator is asked a few times per shard instead of twice per request."""
        if not await self.acquire(holder):
            return 0
        extra = min(max(0, want - 1), self.free) if not self.waiters else 0
        self.free -= extra
        self.held[holder] += extra
        self.max_in_flight = max(self.max_in_flight, self.limit - self.free)
        return 1 + extra

    def share(self, holder: str) -> int:
        """A fair share of the limit for ``holder``: the limit over the slots that have work (a shard
        claimed, or a permit asked for). Workers give back what they hold above it as requests finish,
        so a slot that started first cannot keep the whole limit while another waits."""
        busy = {h for h, v in self.claimed.items() if v} | {h for h, f in self.waiters if not f.done()}
        busy -= self.dead
        return max(1, -(-self.limit // max(1, len(busy))))

    def release(self, holder: str, n: int = 1) -> None:
        n = min(n, self.held[holder])
        if n > 0:
            self.held[holder] -= n
            self._give_back(n)

    def _give_back(self, n: int) -> None:
        for _ in range(n):
            while self.waiters:
                h, fut = self.waiters.pop(0)
                if not fut.done():
                    fut.set_result(None)  # hand the permit straight over: `free` stays as it is
                    break
            else:
                self.free += 1

    def holder_done(self, holder: str) -> None:
        """A slot attempt ended (normally or not): what it held, or is granted later for a request it
        left outstanding, comes back to the pool; shards it claimed but did not finish are queued again."""
        self._kill_holder(holder)

    def _kill_holder(self, holder: str) -> None:
        self.dead.add(holder)
        n = self.held.pop(holder, 0)
        if n:
            self._give_back(n)
        lost = sorted(self.claimed.pop(holder, set()))
        self.queue.extendleft(reversed(lost))  # a dead slot's unfinished shards are answered first

    async def take_token(self) -> None:
        if self.bucket is not None:
            await self.bucket.acquire()

    # -- shards ------------------------------------------------------------------------
    def add_shards(self, shards: list[list[dict[str, Any]]]) -> int:
        for items in shards:
            k = len(self.shard_items)
            self.shard_items[k] = items
            self.queue.append(k)
        return len(self.queue)

    def next_shard(self, holder: str) -> tuple[int, list[dict[str, Any]]] | None:
        """The next shard for a worker slot to answer, or None when none is left (or the holder is dead)."""
        if holder in self.dead:
            return None
        while self.queue:
            k = self.queue.popleft()
            if k not in self.finished:  # a slot declared dead may still have finished it (its answers are stored)
                self.claimed[holder].add(k)
                return k, self.shard_items[k]
        return None

    def shard_done(self, holder: str, k: int) -> None:
        """Every answer of shard ``k`` is stored."""
        self.claimed[holder].discard(k)
        self.finished.add(k)
        self.shard_items.pop(k, None)

    def reap(self, alive_nodes: list[str]) -> int:
        """Declare dead every slot attempt whose node is gone. Ray retries such a slot only once a CPU is
        free, and the surviving slots might be waiting for the permits the dead one held: returning
        them (and its shards) now is what keeps a node failure from stalling the run."""
        alive = set(alive_nodes)
        gone = [h for h, node in self.holder_node.items() if node not in alive and h not in self.dead]
        for h in gone:
            self._kill_holder(h)
        return len(gone)

    def slot_started(self, slot: int, node: str = "") -> int:
        """Record an attempt of worker slot ``slot``; returns its number (0 = first). Earlier attempts
        are dead (Ray only runs a task again after its worker or node died): their permits come back and
        their unfinished shards go back to the front of the queue."""
        attempt = self.attempts[slot]
        self.attempts[slot] += 1
        self.holder_node[f"{slot}#{attempt}"] = node
        for a in range(attempt):
            self._kill_holder(f"{slot}#{a}")
        return attempt

    def slot_failed(self, slot: int) -> None:
        """The driver gave up on ``slot`` (Ray's retries exhausted): same clean-up as a retry."""
        for a in range(self.attempts[slot]):
            self._kill_holder(f"{slot}#{a}")

    def queued(self) -> int:
        """Shards waiting for a slot (e.g. given back by a reaped slot after the others ran dry)."""
        return len(self.queue)

    def remaining(self) -> int:
        """Shards not finished: queued or claimed by a live slot."""
        return len(self.queue) + sum(len(v) for v in self.claimed.values())

    # -- counts ------------------------------------------------------------------------
    def report(self, worker: str, node: str, answered: int, errors: int, cached: int, shards: int = 0) -> None:
        if answered + cached:
            now = time.monotonic()
            if not self.t_first:
                self.t_first, self.n_first = now, answered + cached
            self.t_last = now
        w = self.workers[worker]
        w["node"] = node
        w["answered"] += answered
        w["errors"] += errors
        w["cached"] += cached
        w["shards"] += shards

    def snapshot(self) -> dict[str, Any]:
        return {
            "done": sum(w["answered"] for w in self.workers.values()),
            "errors": sum(w["errors"] for w in self.workers.values()),
            "workers": {k: dict(v) for k, v in self.workers.items()},
            "retries": sum(max(0, n - 1) for n in self.attempts.values()),
            "max_in_flight": self.max_in_flight,
            "in_flight": self.limit - self.free,
            "active_slots": sum(1 for h, v in self.claimed.items() if v and h not in self.dead),
            "answering_s": self.t_last - self.t_first,
            "answered_after_first": sum(w["answered"] + w["cached"] for w in self.workers.values()) - self.n_first,
        }
