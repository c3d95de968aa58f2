"""Red-team campaigns on Ray: ``airisk redteam ... --executor ray``.

The driver creates (or reopens, for ``--run-id``) the campaign's run exactly as a local campaign
does, holds its lease, and cuts the (seed, attack) pairs still to run into shards. Each Ray task
builds the target, judge and attacker from their specs (the judge is never built in the driver),
runs its pairs with the same per-pair code as a local campaign (:func:`airisk.attacks.campaign.run_pair`)
and writes each pair's attempts through the store as it finishes. The driver sums the tasks' counts
and writes the run's ``redteam`` stats once.

Sequence numbers: a pair's items get the fixed block ``pair_index * budget`` onwards, where
``pair_index`` is its place in the full seeds x attacks grid, so concurrent workers never share
numbers and a resumed pair (its rows dropped by ``complete_pairs``) reuses its own block. ``seq``
only orders a run's items; the store does not require it to be contiguous or unique.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict


class CampaignParts(BaseModel):
    """What a worker needs to run pairs (specs only: objects are not shipped)."""

    model_config = ConfigDict(extra="forbid")

    system: str | dict[str, Any]
    judge: str
    attacker: str | None = None
    attacks: str
    budget: int
    stop_on_success: bool = True
    judge_batch_size: int = 1


async def _run_shard(run_id: str, url: str, seeds: list[dict[str, Any]], pairs: list[tuple[int, str, int]],
                     parts: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """Run ``pairs`` (seed index, attack label, first seq) of the campaign; returns counts and the judge's identity."""
    from airisk.systems.factory import make_system
    from airisk.attacks.attack import BatchingJudge, RunContext
    from airisk.attacks.attacker import Attacker
    from airisk.attacks.campaign import run_pair, save_pair, tally
    from airisk.attacks.registry import baseline, make_attacks
    from airisk.distributed.generate import worker_store
    from airisk.judges.factory import make_judge
    from airisk.types import Item

    p = CampaignParts.model_validate(parts)
    store = worker_store(url)
    attacks = {a.label: a for a in [baseline(), *make_attacks(p.attacks)]}
    items = [Item.model_validate(s) for s in seeds]
    target, judge = make_system(p.system), make_judge(p.judge)
    attacker = Attacker.from_spec(p.attacker, store=store) if p.attacker else None
    # recorded as soon as it is built, so that even an interrupted campaign names the judge of its verdicts
    store.update_run(run_id, judges=[judge.describe()])
    bjudge = BatchingJudge(judge, batch_size=max(1, p.judge_batch_size))
    ctx = RunContext(target, bjudge, attacker=attacker, store=store, budget=p.budget, stop_on_success=p.stop_on_success)
    sem = asyncio.Semaphore(max(1, concurrency))
    counts: dict[str, int] = defaultdict(int)

    async def one(seed_i: int, label: str, start_seq: int) -> None:
        async with sem:
            results = await run_pair(items[seed_i], attacks[label], ctx)
            save_pair(store, run_id, results, start_seq)
            tally(counts, results)

    try:
        await asyncio.gather(*(one(*pair) for pair in pairs))
    finally:
        await target.aclose()
        await judge.aclose()
        if attacker is not None:
            await attacker.aclose()
    return {"counts": dict(counts), "judge_batches": bjudge.calls,
            "attacker_calls": getattr(attacker, "calls", 0)}


def _campaign_shard(run_id: str, url: str, seeds: list[dict[str, Any]], pairs: list[tuple[int, str, int]],
                    parts: dict[str, Any], concurrency: int) -> dict[str, Any]:
    return asyncio.run(_run_shard(run_id, url, seeds, pairs, parts, concurrency))


def _on_ray(store: Any, run_id: str, seeds: list[Any], todo: list[tuple[int, str, int]], parts: CampaignParts,
            opts: Any, concurrency: int) -> list[dict[str, Any]]:
    import ray

    from airisk.errors import AiriskError
    from airisk.distributed.cluster import alive_nodes, check_store_for_cluster, ray_session, submit_shards, worker_url

    url = worker_url(store.url)
    with ray_session(opts) as r:
        check_store_for_cluster(url, len(alive_nodes(r)))
        seed_rows = [s.model_dump(mode="json") for s in seeds]
        refs, _ = submit_shards(r, _campaign_shard, todo, opts, concurrency,
                             lambda shard, per: (run_id, url, seed_rows, shard, parts.model_dump(), per))
        try:
            return list(r.get(refs))
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, AiriskError):  # a bad spec met in a worker: the user's one-line error
                raise e.cause from None
            raise


def run_campaign_on_ray(store: Any, target: Any, seeds: list[Any], attacks: list[Any], parts: CampaignParts, *,
                        opts: Any, concurrency: int = 8, run_id: str | None = None, config: dict[str, Any] | None = None,
                        datasets: list[dict[str, Any]] | None = None, label: str | None = None,
                        include_baseline: bool = True, attacker_desc: Any = None) -> str:
    """Run the campaign on Ray (see the module's docstring) and return the run id.

    ``target`` is the driver's own system (for the run's identity and the preflight); ``attacks`` the
    parsed ``parts.attacks`` (for the run's config); workers rebuild both from ``parts``."""
    from airisk.attacks.campaign import open_campaign_run
    from airisk.attacks.registry import BASELINE, baseline
    from airisk.engine import new_run_id
    from airisk.engine.lease import HeldRun

    attacks = list(attacks)
    if include_baseline and not any(a.label == BASELINE for a in attacks):
        attacks.insert(0, baseline())
    run_id = run_id or new_run_id()
    cfg = {**(config or {}), "attacks": [a.describe() for a in attacks], "budget": parts.budget,
           "attacker": attacker_desc, "stop_on_success": parts.stop_on_success,
           "seeds": len(seeds), "judge_batch_size": parts.judge_batch_size, "executor": "ray"}
    held = HeldRun(store, store.acquire_lease(run_id, "generating"))
    status = "failed"
    try:
        existing = open_campaign_run(store, run_id, target, [], cfg, datasets, label)
        grid = [(si, a.label) for si in range(len(seeds)) for a in attacks]
        todo = [(si, lab, i * max(1, parts.budget)) for i, (si, lab) in enumerate(grid)
                if (seeds[si].id, lab) not in existing]
        t0 = time.perf_counter()
        shards = _on_ray(store, run_id, seeds, todo, parts, opts, concurrency) if todo else []
        counts: dict[str, int] = defaultdict(int)
        for sh in shards:
            for k, v in sh["counts"].items():
                counts[k] += v
        stats = {**counts, "pairs": len(todo), "elapsed_s": round(time.perf_counter() - t0, 3),
                 "judge_batches": sum(sh["judge_batches"] for sh in shards),
                 "attacker_calls": sum(sh["attacker_calls"] for sh in shards), "executor": "ray", "shards": len(shards)}
        status = "completed"
    finally:
        store.update_run(run_id, status=status, **({"stats": {"redteam": stats}} if status == "completed" else {}))
        held.release()
    return run_id
