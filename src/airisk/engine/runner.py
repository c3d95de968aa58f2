"""The run engine: send every item of a run to a system, store every answer, resume after a crash.

Work is done by a fixed pool of ``concurrency`` workers pulling from a queue, so the number of
requests in flight is bounded without creating a task per item. Answers are written by a single
writer with group commit, and a worker takes its next item only once its answer is stored: a run
killed at any moment loses at most one answer per worker, and a resume asks only for items with no
stored response (the store's unique keys make double writes impossible).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from airisk.engine.lease import HeldRun, hold_run
from airisk.engine.progress import ProgressReporter
from airisk.errors import DataError
from airisk.engine.retry import RateLimiter, RetryPolicy, call_with_retries
from airisk.judges.base import Judge
from airisk.store import Store
from airisk.systems.base import System
from airisk.types import Completion, Conversation, Item, Judgment, stable_hash



def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def response_cache_key(system: System, item: Item) -> str:
    return stable_hash({"system": system.fingerprint(),
                        "messages": [m.model_dump(exclude_none=True) for m in item.to_messages()]}, n=40)


async def run_items(
    store: Store, system: System, items: Sequence[Item], *, run_id: str | None = None, kind: str = "benchmark",
    concurrency: int = 16, rps: float | None = None, judge: Judge | None = None, config: dict[str, Any] | None = None,
    datasets: list[dict[str, Any]] | None = None, label: str | None = None, progress: bool = True,
    retry: RetryPolicy | None = None, use_cache: bool = True, preflight: bool = True,
) -> str:
    """Create a run for ``items``, answer them all with ``system`` and (optionally) judge them.

    Returns the run id. The run's status ends as ``completed``; an interruption leaves it
    ``interrupted`` and ``resume_run`` carries on.
    """
    run_id = run_id or new_run_id()
    if preflight and items:
        await system.preflight()  # fail before anything is stored: no half-created runs from a typo
    # The lease first: from the moment the run exists, a kill shows as "interrupted", not "running".
    with hold_run(store, run_id, "generating") as held:
        store.create_run(run_id, kind=kind, system_name=system.name, system_fingerprint=system.fingerprint(),
                         config={**(config or {}), "system": {"type": system.name, **system.public_params()}},
                         datasets=datasets or [], label=label)
        try:
            store.add_items(run_id, list(items))
        except Exception as e:  # nothing was asked yet: leave no empty run behind, "running" forever
            store.delete_run(run_id)
            if isinstance(e, (UnicodeError, ValueError)):
                raise DataError(f"items could not be stored ({type(e).__name__}: {str(e)[:200]}); nothing was run") from None
            raise
        await execute(store, run_id, system, concurrency=concurrency, rps=rps, progress=progress, retry=retry,
                      use_cache=use_cache, preflight=False, held=held)
        if judge is not None:
            await judge_run(store, run_id, judge, progress=progress, held=held)
    return run_id


async def execute(
    store: Store, run_id: str, system: System, *, concurrency: int = 16, rps: float | None = None,
    progress: bool = True, retry: RetryPolicy | None = None, use_cache: bool = True, preflight: bool = True,
    held: HeldRun | None = None,
) -> dict[str, Any]:
    """Answer the run's pending items. Safe to call again after any crash: it is the resume.

    Holds the run's lease meanwhile (``held``: the caller already holds it); a run another live process
    is working on raises RunBusy before anything is asked."""
    with hold_run(store, run_id, "generating", held):
        return await _execute(store, run_id, system, concurrency=concurrency, rps=rps, progress=progress,
                              retry=retry, use_cache=use_cache, preflight=preflight)


async def _execute(
    store: Store, run_id: str, system: System, *, concurrency: int, rps: float | None, progress: bool,
    retry: RetryPolicy | None, use_cache: bool, preflight: bool,
) -> dict[str, Any]:
    pending = store.pending_items(run_id)
    total = store.count_items(run_id)
    stats: dict[str, Any] = {"concurrency": concurrency, "rps": rps}
    if not pending:
        store.update_run(run_id, status="completed")
        return stats
    if preflight:
        await system.preflight()
    store.update_run(run_id, status="running")
    policy = retry or RetryPolicy()
    limiter = RateLimiter(rps) if rps else None
    cacheable = use_cache and system.cacheable

    # One batched cache read up front instead of a query per item.
    keys = {it.id: response_cache_key(system, it) for it in pending} if cacheable else {}
    cached = store.cache_get_many("response", list(keys.values())) if cacheable else {}

    reporter = ProgressReporter(len(pending), f"run {run_id}", enabled=progress)
    queue: asyncio.Queue[Item | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    # Group commit: workers hand answers to one writer and wait until they are durable before
    # taking another item, so a kill at any instant loses at most one answer per worker and a
    # resume re-asks at most `concurrency` requests. The writer takes whatever has accumulated
    # while the previous write ran, so writes stay batched at any rate.
    buffer: list[tuple[str, Completion, asyncio.Future]] = []
    cache_buffer: dict[str, dict[str, Any]] = {}
    wake = asyncio.Event()
    workers_done = False
    errors: Counter[str] = Counter()
    counts = Counter()
    t0 = time.perf_counter()
    cpu0 = time.process_time()

    async def writer() -> None:
        while True:
            await wake.wait()
            wake.clear()
            if not buffer:
                if workers_done:
                    return
                continue
            batch, cbatch = buffer[:], dict(cache_buffer)
            buffer.clear()
            cache_buffer.clear()
            try:
                # Off the event loop: a slow disk must not stall requests in flight.
                await asyncio.to_thread(_write, store, run_id, [(i, c) for i, c, _ in batch], cbatch)
            except BaseException as e:
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                raise
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    async def worker() -> None:
        while True:
            it = await queue.get()
            if it is None:
                return
            hit = cached.get(keys[it.id]) if cacheable else None
            if hit is not None:
                c = Completion.model_validate({**hit, "cached": True})
            else:
                c = await call_with_retries(system, it.to_messages(), item=it, policy=policy, limiter=limiter)
                if cacheable and c.ok:
                    cache_buffer[keys[it.id]] = c.model_dump(exclude={"cached", "attempts"}, exclude_none=True)
            stored = loop.create_future()
            buffer.append((it.id, c, stored))
            wake.set()
            await stored
            counts["cached" if c.cached else "answered"] += 1
            if not c.ok:
                errors[c.error_kind or "error"] += 1
            reporter.advance(1, errors=0 if c.ok else 1)

    for it in pending:
        queue.put_nowait(it)
    n_workers = max(1, min(concurrency, len(pending)))
    for _ in range(n_workers):
        queue.put_nowait(None)
    writer_task = asyncio.create_task(writer())
    status = "interrupted"
    try:
        await asyncio.gather(*(worker() for _ in range(n_workers)))
        status = "completed"
    finally:
        workers_done = True
        wake.set()
        if status == "completed":
            await writer_task
        else:
            writer_task.cancel()
            if buffer:  # interrupted (Ctrl-C): keep what was answered
                await asyncio.shield(asyncio.to_thread(_write, store, run_id, [(i, c) for i, c, _ in buffer],
                                                       dict(cache_buffer)))
        reporter.close()
        elapsed = time.perf_counter() - t0
        done = sum(counts.values())
        stats.update({
            "elapsed_s": round(elapsed, 3), "items_done": done, "items_total": total,
            "items_per_s": round(done / elapsed, 2) if elapsed > 0 else None,
            "cpu_s": round(time.process_time() - cpu0, 3), "errors": dict(errors), "cached": counts["cached"],
            "unmatched": system.unmatched()[:1000],
        })
        store.update_run(run_id, status=status, stats={"last_execute": stats})
    return stats


def _write(store: Store, run_id: str, batch: list[tuple[str, Completion]], cache: dict[str, dict[str, Any]]) -> None:
    store.save_responses(run_id, batch)
    if cache:
        store.cache_put_many("response", cache)


async def resume_run(store: Store, run_id: str, system: System | None = None, *, judge: Judge | None = None,
                     concurrency: int | None = None, progress: bool = True, retry_errors: bool = False) -> dict[str, Any]:
    """Carry on an interrupted run; the system is rebuilt from the run's stored config if not given.

    Concurrency, rate limit and retry policy come from the stored config (old and new versions).
    """
    from airisk.engine.config import read_stored_config
    from airisk.systems.factory import make_system

    run = store.get_run(run_id)
    cfg = read_stored_config(run.config, run.id)
    if system is None:
        system = make_system(dict(cfg.system))
    try:
        # One lease for the whole resume: a second resume of the same run fails here, before it
        # computes its own list of pending items (two resumes used to ask the same items twice).
        with hold_run(store, run.id, "generating") as held:
            if retry_errors:
                store.delete_responses(run.id, errors_only=True)
            stats = await execute(store, run.id, system, concurrency=concurrency or cfg.concurrency,
                                  rps=cfg.rps, progress=progress, retry=cfg.retry, held=held)
            if judge is not None:
                await judge_run(store, run.id, judge, progress=progress, held=held)
    finally:
        await system.aclose()
    return stats


async def judge_run(store: Store, run_id: str, judge: Judge, *, batch_size: int = 64, progress: bool = True,
                    rejudge: bool = False, held: HeldRun | None = None) -> int:
    """Judge every answered item of the run that ``judge`` has not judged yet; returns how many.

    System errors are not judged (scoring shows them as errors). A judge that raises on a whole
    batch has each item recorded as a judge error with the reason: never as safe. While judging, a
    finished run is stored as ``judging`` (under the run's lease), so a kill now shows as
    ``interrupted`` with its unjudged answers counted, never as ``completed``.
    """
    with judging(store, run_id, held) as run:
        return await _judge(store, run.id, judge, batch_size=batch_size, progress=progress, rejudge=rejudge)


@contextlib.contextmanager
def judging(store: Store, run_id: str, held: HeldRun | None = None) -> Iterator[Any]:
    """The run's lease (phase ``judging``) and status while a judge works on it, on any executor: a
    finished run reads ``judging`` meanwhile and ``completed`` again only once judging has finished."""
    run = store.get_run(run_id)
    with hold_run(store, run.id, "judging", held):
        was_completed = run.stored_status == "completed" or run.status == "completed"
        if was_completed:
            store.update_run(run.id, status="judging")
        yield run
        if was_completed:
            store.update_run(run.id, status="completed")


def conversation(record: Any, system_prompt: str | None) -> Conversation:
    """What a judge sees of one answered item (the same on every executor)."""
    r = record
    return Conversation(prompt=_last_user(r.item), response=r.completion.text or "", intent=r.item.intent,
                        system_prompt=system_prompt, hazard=r.item.hazard, locale=r.item.locale, item_id=r.item.id,
                        messages=r.item.messages)


async def _judge(store: Store, run_id: str, judge: Judge, *, batch_size: int, progress: bool, rejudge: bool) -> int:
    run = store.get_run(run_id)
    todo = store.unjudged_item_ids(run.id, judge.id) if not rejudge else None
    records = [r for r in store.records(run.id)
               if r.completion is not None and r.completion.ok and (todo is None or r.item.id in todo)]
    store.update_run(run.id, judges=[judge.describe()])
    if not records:
        return 0
    system_prompt = (run.config.get("system") or {}).get("system_prompt")
    reporter = ProgressReporter(len(records), f"judge {judge.id}", enabled=progress)
    n = 0
    try:
        for i in range(0, len(records), batch_size):
            chunk = records[i : i + batch_size]
            convs = [conversation(r, system_prompt) for r in chunk]
            try:
                verdicts = await judge.judge_batch(convs)
                if len(verdicts) != len(convs):
                    raise RuntimeError(f"judge returned {len(verdicts)} verdicts for {len(convs)} inputs")
            except Exception as e:
                verdicts = [Judgment(label="error", error=f"{type(e).__name__}: {e}") for _ in convs]
            verdicts = [v.model_copy(update={"judge_id": judge.id, "judge_fingerprint": judge.fingerprint})
                        for v in verdicts]
            n += store.save_judgments(run.id, [(r.item.id, v) for r, v in zip(chunk, verdicts)], replace=rejudge)
            reporter.advance(len(chunk), errors=sum(v.label == "error" for v in verdicts))
    finally:
        reporter.close()
    return n


def _last_user(item: Item) -> str:
    if item.messages:
        for m in reversed(item.messages):
            if m.role == "user":
                return m.content or ""
    return item.prompt


def default_concurrency() -> int:
    return int(os.environ.get("AIRISK_CONCURRENCY", "16"))
