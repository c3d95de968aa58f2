"""A red-team campaign: every seed x (baseline + each attack), judged, stored as one run (kind='redteam').

Each attempt is stored as an item of the run (id derived from seed id + attack chain, lineage in
``metadata['lineage']``), its answer as a response and the judge's verdict as a judgment, so the
generic tools (``gate``, ``compare``, reports) read a red-team run like any other. Seeds x attacks
run concurrently (bounded); each (seed, attack) pair's items, answers and verdicts are written in
one transaction as it finishes, so a kill leaves a pair either complete or absent. Re-running with
the same run id skips the pairs already stored and repairs incomplete ones (an item without an answer,
or an answer without a verdict, left by an older version or by hand): their rows are
dropped and the pair runs again.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from typing import Any, Sequence

from airisk.attacks.attack import Attack, AttemptResult, BatchingJudge, RunContext, error_result
from airisk.attacks.registry import BASELINE, baseline
from airisk.engine.lease import HeldRun
from airisk.store import RunNotFound
from airisk.types import Item


def select_seeds(items: Sequence[Item], *, hazards: Sequence[str] | None = None, limit: int | None = None) -> list[Item]:
    """Harmful seeds (expected != 'comply'), optionally filtered by hazard; ``limit`` takes them
    round-robin across hazards so a small campaign still covers every hazard."""
    pool = [it for it in items if it.expected != "comply" and (not hazards or it.hazard in hazards)]
    if limit is None or limit >= len(pool):
        return pool
    by_h: dict[str, list[Item]] = defaultdict(list)
    for it in pool:
        by_h[it.hazard or ""].append(it)
    out: list[Item] = []
    queues = [list(v) for v in by_h.values()]
    while len(out) < limit:
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def complete_pairs(store: Any, run_id: str) -> set[tuple[str | None, str | None]]:
    """The (seed, attack) pairs of a stored campaign that are complete; rows of incomplete pairs are
    deleted so that the pair runs again (a pair is complete when every item has an answer and every
    successful answer has a verdict)."""
    pairs: dict[tuple[str | None, str | None], list[Any]] = defaultdict(list)
    for rec in store.records(run_id):
        pairs[(rec.item.metadata.get("seed_id"), rec.item.metadata.get("attack"))].append(rec)
    broken = {key for key, recs in pairs.items()
              if any(r.completion is None or (r.completion.ok and not r.judgments) for r in recs)}
    if broken:
        store.delete_items(run_id, [r.item.id for key in broken for r in pairs[key]])
    return set(pairs) - broken


async def run_campaign(
    store: Any, target: Any, seeds: Sequence[Item], attacks: Sequence[Attack], judge: Any, *,
    attacker: Any = None, budget: int = 10, concurrency: int = 8, run_id: str | None = None,
    config: dict[str, Any] | None = None, datasets: list[dict[str, Any]] | None = None, label: str | None = None,
    include_baseline: bool = True, stop_on_success: bool = True, policy: Any = None, progress: bool = False,
    preflight: bool = True, judge_batch_size: int = 1,
) -> str:
    """Run the campaign and return the run id.

    The target is preflighted (an unreachable target fails the whole run with one message); the
    attacker is not: its failures are recorded per attempt, as for any attack that cannot apply.
    ``judge_batch_size`` > 1 groups concurrent verdicts into one judge call: faster, but which
    conversations share a batch depends on timing, so a judge whose scores depend on the rest of its batch
    is then not reproducible run to run; 1 is the safe default.
    """
    from airisk.engine import new_run_id

    if preflight:
        await target.preflight()

    attacks = list(attacks)
    if include_baseline and not any(a.label == BASELINE for a in attacks):
        attacks.insert(0, baseline())
    run_id = run_id or new_run_id()
    cfg = {**(config or {}), "attacks": [a.describe() for a in attacks], "budget": budget,
           "attacker": attacker.describe() if attacker is not None else None, "stop_on_success": stop_on_success,
           "seeds": len(seeds), "judge_batch_size": judge_batch_size}
    # The run's lease (see airisk.engine.lease): a kill shows as "interrupted", and a second process
    # resuming the same campaign is refused instead of running the same pairs twice.
    held = HeldRun(store, store.acquire_lease(run_id, "generating"))
    try:
        return await _run(store, run_id, target, seeds, attacks, judge, attacker=attacker, budget=budget,
                          concurrency=concurrency, cfg=cfg, datasets=datasets, label=label,
                          stop_on_success=stop_on_success, policy=policy, progress=progress,
                          judge_batch_size=judge_batch_size)
    finally:
        held.release()


def open_campaign_run(store: Any, run_id: str, target: Any, judges: list[dict[str, Any]], cfg: dict[str, Any],
                      datasets: list[dict[str, Any]] | None, label: str | None) -> set[tuple[str | None, str | None]]:
    """Create the campaign's run, or reopen a stored one: returns the (seed, attack) pairs already complete
    (incomplete ones are dropped by :func:`complete_pairs` so that they run again)."""
    try:
        store.get_run(run_id)
        existing = complete_pairs(store, run_id)
        store.update_run(run_id, status="running")
    except RunNotFound:
        existing = set()
        store.create_run(run_id, kind="redteam", system_name=target.describe(), system_fingerprint=target.fingerprint(),
                         config=cfg, datasets=datasets or [], judges=judges, label=label)
    return existing


async def run_pair(seed: Item, attack: Attack, ctx: RunContext) -> list[AttemptResult]:
    """One seed x attack pair's attempts; an attack bug is this seed's failure, not the campaign's."""
    try:
        return await attack.run(seed, ctx)
    except Exception as e:
        return [error_result(seed, attack.label, [attack.describe()], e)]


def save_pair(store: Any, run_id: str, results: list[AttemptResult], start_seq: int) -> None:
    """A pair's items, answers and verdicts in one transaction (a kill leaves the pair complete or absent)."""
    store.save_attempts(run_id, [r.item for r in results], [(r.item.id, r.completion) for r in results],
                        [(r.item.id, r.judgment) for r in results if r.judgment is not None], start_seq=start_seq)


def tally(counts: dict[str, int], results: list[AttemptResult]) -> None:
    """Add a pair's attempts, queries and errors to the campaign's counts."""
    counts["queries"] += max((r.queries for r in results), default=0)
    for r in results:
        counts["attempts"] += 1
        if r.item.metadata.get("attack_error"):
            counts["attack_errors"] += 1
        elif r.completion.error:
            counts["target_errors"] += 1
    counts["done"] += 1


async def _run(store: Any, run_id: str, target: Any, seeds: Sequence[Item], attacks: list[Attack], judge: Any, *,
               attacker: Any, budget: int, concurrency: int, cfg: dict[str, Any], datasets: list[dict[str, Any]] | None,
               label: str | None, stop_on_success: bool, policy: Any, progress: bool, judge_batch_size: int) -> str:
    existing = open_campaign_run(store, run_id, target, [judge.describe()], cfg, datasets, label)
    bjudge = BatchingJudge(judge, batch_size=max(1, judge_batch_size))
    ctx = RunContext(target, bjudge, attacker=attacker, store=store, budget=budget, stop_on_success=stop_on_success,
                     policy=policy)
    sem = asyncio.Semaphore(max(1, concurrency))
    seq = [store.count_items(run_id)]
    counts: dict[str, int] = defaultdict(int)
    t0 = time.perf_counter()
    todo = [(s, a) for s in seeds for a in attacks if (s.id, a.label) not in existing]

    async def one(seed: Item, attack: Attack) -> None:
        async with sem:
            results = await run_pair(seed, attack, ctx)
            save_pair(store, run_id, results, seq[0])
            seq[0] += len(results)
            tally(counts, results)
            if progress:
                print(f"\r{counts['done']}/{len(todo)} seed x attack pairs", end="", file=sys.stderr, flush=True)

    status = "failed"
    try:
        await asyncio.gather(*(one(s, a) for s, a in todo))
        status = "completed"
    finally:
        if progress:
            print(file=sys.stderr)
        store.update_run(run_id, status=status, stats={"redteam": {
            **counts, "pairs": len(todo), "elapsed_s": round(time.perf_counter() - t0, 3),
            "judge_batches": bjudge.calls, "attacker_calls": getattr(attacker, "calls", 0)}})
    return run_id
