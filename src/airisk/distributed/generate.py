"""Answering a run's items on Ray: shards of items, one global request limit, workers that write
through the store.

Why workers write, rather than streaming answers back to one writer: a shard task that dies takes
with it only what it had not yet written, and the store's unique key (run, item) makes a retried
shard skip what was stored and makes a second write of one answer impossible. "Nothing lost"
is then checked, not assumed: at the end the driver asks the store which items still have no
answer, and the run is ``completed`` only when none are left.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from typing import Any, Sequence

import ray

from airisk.distributed.coordinator import Coordinator
from airisk.types import Completion, Item

FLUSH_EVERY_S = 0.25  # a killed worker loses at most this much work beyond its requests in flight


# ------------------------------------------------------------------------------- worker side

_STORES: dict[str, Any] = {}


def worker_store(url: str):
    """One Store (one connection pool) per worker process, reused by every shard it runs."""
    from airisk.store import Store

    if url not in _STORES:
        _STORES[url] = Store(url)
    return _STORES[url]


def answered_ids(store, run_id: str, ids: Sequence[str]) -> set[str]:
    from sqlalchemy import select

    from airisk.store.schema import ResponseRow

    out: set[str] = set()
    with store.session() as s:
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            out.update(s.scalars(select(ResponseRow.item_id).where(ResponseRow.run_id == run_id,
                                                                 ResponseRow.item_id.in_(chunk))))
    return out


class PermitPool:
    """This worker's share of the global request limit: permits taken from the coordinator in bulk,
    kept while the shard has work, given back as soon as it has none.

    At most one request to the coordinator is outstanding per pool, and no lane blocks on it while
    a permit is idle here: a lane waits for *either* that request *or* a permit another lane puts
    back. (Waiting for the coordinator alone, behind a lock, deadlocked the cluster: after a node died,
    two slots each held idle permits while one lane of each waited for the coordinator, which had none
    left: every permit was idle in a pool whose lanes were queued behind the lock.)"""

    def __init__(self, coord, holder: str, want: int):
        self.coord, self.holder, self.want = coord, holder, want
        self.held = self.idle = 0
        self.cap = want  # the fair share, updated from the coordinator while the slot runs
        self.asking: asyncio.Task | None = None
        self.changed = asyncio.Condition()
        self.failure: str | None = None

    async def _ask(self) -> None:
        failure = None
        try:
            n = await self.coord.acquire_many.remote(self.holder, max(1, min(self.want, self.cap) - self.held))
        except Exception as e:  # the coordinator is gone: lanes must fail, not wait forever
            n, failure = 0, f"the run's coordinator failed: {type(e).__name__}: {e}"
        async with self.changed:
            self.asking = None
            if n == 0:
                self.failure = failure or f"{self.holder} was superseded by a retry of its shard"
            self.held += n
            self.idle += n
            self.changed.notify_all()

    async def get(self) -> None:
        async with self.changed:
            while self.idle == 0:
                if self.failure:
                    raise RuntimeError(self.failure)
                if self.asking is None:
                    self.asking = asyncio.create_task(self._ask())
                await self.changed.wait()
            self.idle -= 1

    async def put(self, keep: bool) -> None:
        async with self.changed:
            if keep and self.held <= self.cap:
                self.idle += 1
                self.changed.notify()
            else:
                self.held -= 1
                self.coord.release.remote(self.holder, 1)

    async def trim(self) -> None:
        """Give back the permits idle here (a lane with no more work left): another slot may need them."""
        async with self.changed:
            if self.idle:
                self.held -= self.idle
                self.coord.release.remote(self.holder, self.idle)
                self.idle = 0

    async def close(self) -> None:
        """Give back every permit (the slot's ``holder_done`` returns any granted later to a request
        still outstanding)."""
        if self.held:
            self.coord.release.remote(self.holder, self.held)
            self.held = self.idle = 0
        if self.asking is not None:
            self.asking.cancel()


class _GlobalLimiter:
    """Adapter so the engine's ``call_with_retries`` takes its per-attempt rps token from the coordinator."""

    def __init__(self, coord):
        self.coord = coord

    async def acquire(self) -> None:
        await self.coord.take_token.remote()


async def _work_slot(slot: int, attempt: int, run_id: str, url: str, system_spec: dict[str, Any],
                     policy: dict[str, Any], concurrency: int, rps: bool, use_cache: bool, coord) -> dict[str, Any]:
    from airisk.engine.retry import RetryPolicy, call_with_retries
    from airisk.engine.runner import response_cache_key
    from airisk.systems.factory import make_system

    store = worker_store(url)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    node = ray.get_runtime_context().get_node_id()[:12]
    holder = f"{slot}#{attempt}"
    system = make_system(dict(system_spec))  # one client (one connection pool) for every shard of the slot
    retry = RetryPolicy(**policy)
    limiter = _GlobalLimiter(coord) if rps else None
    cacheable = use_cache and system.cacheable
    counts: Counter[str] = Counter()
    queue: asyncio.Queue[tuple[int, Item, dict | None] | None] = asyncio.Queue()
    left: dict[int, int] = {}  # shard -> answers not yet stored
    results: list[tuple[int, str, Completion]] = []
    cache_out: dict[str, dict[str, Any]] = {}
    state = {"exhausted": False, "shards": 0}
    permits = PermitPool(coord, holder, concurrency)

    async def feeder() -> None:
        """Keep about one limit's worth of items queued, so lanes never wait between shards."""
        while True:
            while queue.qsize() >= concurrency:
                await asyncio.sleep(0.02)
            got = await coord.next_shard.remote(holder)
            if got is None:
                state["exhausted"] = True
                for _ in range(concurrency):
                    queue.put_nowait(None)
                return
            k, payload = got
            items = [Item.model_validate(d) for d in payload]
            done = await asyncio.to_thread(answered_ids, store, run_id, [it.id for it in items])
            todo = [it for it in items if it.id not in done]  # a retried shard skips what was stored
            state["shards"] += 1
            if not todo:
                coord.shard_done.remote(holder, k)
                continue
            keys = {it.id: response_cache_key(system, it) for it in todo} if cacheable else {}
            hits = (await asyncio.to_thread(store.cache_get_many, "response", list(keys.values()))) if cacheable else {}
            left[k] = len(todo)
            for it in todo:
                queue.put_nowait((k, it, hits.get(keys[it.id]) if cacheable else None))

    async def flush() -> None:
        batch, cbatch = results[:], dict(cache_out)
        results.clear()
        cache_out.clear()
        if not batch:
            return
        await asyncio.to_thread(store.save_responses, run_id, [(i, c) for _, i, c in batch])
        if cbatch:
            await asyncio.to_thread(store.cache_put_many, "response", cbatch)
        coord.report.remote(worker, node, len(batch), sum(1 for *_, c in batch if not c.ok),
                            sum(1 for *_, c in batch if c.cached))
        for k, _, _ in batch:  # a shard is done only once all its answers are durable
            left[k] -= 1
            if left[k] == 0:
                del left[k]
                coord.shard_done.remote(holder, k)

    async def lane() -> None:
        while (job := await queue.get()) is not None:
            k, it, hit = job
            if hit is not None:
                c = Completion.model_validate({**hit, "cached": True})
            else:
                await permits.get()
                try:
                    c = await call_with_retries(system, it.to_messages(), item=it, policy=retry, limiter=limiter)
                finally:
                    await permits.put(keep=not (state["exhausted"] and queue.empty()))
                if cacheable and c.ok:
                    cache_out[response_cache_key(system, it)] = c.model_dump(exclude={"cached", "attempts"},
                                                                             exclude_none=True)
            results.append((k, it.id, c))
            counts["cached" if c.cached else "answered"] += 1
            if not c.ok:
                counts["errors"] += 1
        await permits.trim()  # this lane is done and the slot has no more shards

    async def flusher(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), FLUSH_EVERY_S)
            except asyncio.TimeoutError:
                pass
            await flush()
            try:
                permits.cap = await coord.share.remote(holder)
            except Exception:  # the coordinator is gone: the lanes find out when they next ask
                pass
        await flush()  # answers that arrived while the previous flush was writing

    stop = asyncio.Event()
    flush_task = asyncio.create_task(flusher(stop))
    try:
        # As many lanes as the global limit: the coordinator, not the lane count, bounds what is in
        # flight, so a lone worker can use the whole limit and many workers share it.
        await asyncio.gather(feeder(), *(lane() for _ in range(concurrency)))
    finally:
        await permits.close()
        stop.set()
        await flush_task
        # Only now, with every answer stored: what the slot still holds or claimed goes back.
        coord.holder_done.remote(holder)
        await system.aclose()
    coord.report.remote(worker, node, 0, 0, 0, state["shards"])
    return {"worker": worker, "unmatched": system.unmatched()[:1000], **counts}


@ray.remote(num_cpus=1)
def work_slot(slot: int, run_id: str, url: str, system_spec: dict[str, Any], policy: dict[str, Any],
              concurrency: int, rps: bool, use_cache: bool, coord) -> dict[str, Any]:
    """One worker slot: a Ray task answering shards from the coordinator's queue until none is left.
    Safe to run again after its worker died (Ray's retry): the shards it had claimed are queued again
    and items already stored are skipped."""
    attempt = ray.get(coord.slot_started.remote(slot, ray.get_runtime_context().get_node_id()))
    return asyncio.run(_work_slot(slot, attempt, run_id, url, system_spec, policy, concurrency, rps, use_cache, coord))


# ------------------------------------------------------------------------------- driver side

def execute_on_ray(store, run_id: str, system, *, opts, concurrency: int = 16, rps: float | None = None,
                   retry=None, progress: bool = True, use_cache: bool = True, preflight: bool = True) -> dict[str, Any]:
    """Answer the run's pending items on a Ray cluster; the distributed twin of ``engine.execute``.

    Safe to call again after any crash: it is the resume (it asks only for items with no stored
    response). Returns the run's stats, also stored under ``stats.last_execute``.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from airisk.distributed.cluster import (alive_nodes, check_store_for_cluster, cluster_cpus, head_node, ray_session,
                                            worker_url)
    from airisk.engine.progress import ProgressReporter
    from airisk.engine.retry import RetryPolicy

    url = worker_url(store.url)
    pending = store.pending_items(run_id)
    total = store.count_items(run_id)
    stats: dict[str, Any] = {"executor": "ray", "concurrency": concurrency, "rps": rps}
    if not pending:
        store.update_run(run_id, status="completed")
        return stats
    if preflight:
        from airisk.distributed.api import preflight_system

        preflight_system(system)
    system_spec = {"type": system.name, **system.public_params()}
    policy = (retry or RetryPolicy()).model_dump()
    t_start = time.perf_counter()
    with ray_session(opts) as r:
        check_store_for_cluster(url, len(alive_nodes(r)))
        workers = opts.workers or cluster_cpus(r)
        coord = ray.remote(Coordinator).options(
            num_cpus=0, max_concurrency=100_000,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=head_node(r), soft=False),
        ).remote(concurrency, rps)
        ready_s = time.perf_counter() - t_start
        store.update_run(run_id, status="running")
        shards = [pending[i : i + opts.shard_size] for i in range(0, len(pending), opts.shard_size)]
        reporter = ProgressReporter(len(pending), f"run {run_id} (ray, {workers} workers)", enabled=progress)
        errors: Counter[str] = Counter()
        results: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        seen = 0
        status = "interrupted"
        try:
            r.get(coord.add_shards.remote([[it.model_dump(mode="json") for it in sh] for sh in shards]))
            inflight: dict[Any, int] = {}
            launches = 0
            last_reap = time.perf_counter()

            def launch() -> None:
                nonlocal launches
                ref = work_slot.options(max_retries=opts.max_retries, retry_exceptions=False).remote(
                    launches, run_id, url, system_spec, policy, concurrency, bool(rps), use_cache, coord)
                inflight[ref] = launches
                launches += 1

            for _ in range(min(workers, len(shards))):
                launch()
            while inflight:
                ready, _ = r.wait(list(inflight), num_returns=1, timeout=0.5)
                for ref in ready:
                    k = inflight.pop(ref)
                    try:
                        results.append(r.get(ref))
                    except Exception as e:  # Ray's retries exhausted (or a bug): counted, shards re-queued
                        errors[f"worker_failed:{type(e).__name__}"] += 1
                        r.get(coord.slot_failed.remote(k))
                # Shards waiting but fewer slots than workers (a dead slot's shards came back after the
                # others ran dry, and Ray's retry of it may wait on a dead node): start another slot,
                # within the same bound as Ray's retries.
                if len(inflight) < workers and launches < workers + opts.max_retries and r.get(coord.queued.remote()):
                    launch()
                if time.perf_counter() - last_reap > 2:
                    last_reap = time.perf_counter()
                    coord.reap.remote([n["NodeID"] for n in alive_nodes(r)])
                snap = r.get(coord.snapshot.remote())
                reporter.note = f"workers {snap['active_slots']}/{workers}"
                if snap["done"] > seen:
                    reporter.errors = snap["errors"]
                    reporter.advance(snap["done"] - seen)
                    seen = snap["done"]
            status = "completed"
        finally:
            reporter.close()
            try:
                snap = r.get(coord.snapshot.remote(), timeout=10)
            except Exception:
                snap = {"workers": {}, "retries": 0, "max_in_flight": None}
            elapsed = time.perf_counter() - t0
            left = len(store.pending_items(run_id))
            if status == "completed" and left:
                status = "interrupted"  # a shard gave up: say so, and let --resume ask again
            _, stored_err = store.count_responses(run_id)
            if snap.get("retries"):
                errors["ray_retry"] += snap["retries"]
            done = len(pending) - left
            stats.update({
                "workers": workers, "shards": len(shards), "shard_size": opts.shard_size,
                "elapsed_s": round(elapsed, 3), "ray_ready_s": round(ready_s, 3),
                "items_done": done, "items_total": total, "items_pending": left,
                "items_per_s": round(done / elapsed, 2) if elapsed > 0 else None,
                # from the first answer stored to the last: the speed once workers run (no start-up)
                "answering_items_per_s": (round(snap["answered_after_first"] / snap["answering_s"], 2)
                                          if snap.get("answering_s") else None),
                "errors": {**_item_errors(store, run_id), **dict(errors)}, "stored_errors": stored_err,
                "ray_retries": snap.get("retries", 0), "max_in_flight": snap.get("max_in_flight"),
                "per_worker": snap.get("workers", {}),
                "unmatched": sorted({u for res in results for u in res.get("unmatched", [])})[:1000],
            })
            store.update_run(run_id, status=status, stats={"last_execute": stats})
            try:
                r.kill(coord)
            except Exception:
                pass
    return stats


def _item_errors(store, run_id: str) -> dict[str, int]:
    """Stored errors by kind (what ``runs show`` reports), from the store: the one source of truth."""
    from sqlalchemy import func, select

    from airisk.store.schema import ResponseRow

    with store.session() as s:
        rows = s.execute(select(ResponseRow.error_kind, func.count()).where(
            ResponseRow.run_id == run_id, ResponseRow.error.is_not(None)).group_by(ResponseRow.error_kind)).all()
    return {(k or "error"): n for k, n in rows}
