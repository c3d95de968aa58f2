"""Agent suites on Ray: ``airisk agent run ... --executor ray``.

The driver creates the run (every scenario a pending item), cuts the scenarios still pending into
shards, and Ray worker tasks run them: each builds the agent, gate, judge and emulator from their
specs once, runs its scenarios with the engine's own ``run_suite`` and writes each scenario's result
through the run store as it finishes (``resume`` of the same run, so nothing is stored twice). Then
the driver runs ``run_suite`` over the whole suite once more against the store: everything stored is
read back, anything a worker could not finish (its retries spent) is run here, and the summary covers
all scenarios, exactly as a local run's does.

``concurrency`` stays the number of scenarios in flight over the whole cluster: each of ``workers``
tasks runs ``ceil(concurrency / workers)`` at a time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict


class SuiteParts(BaseModel):
    """What a worker needs to build the suite's pieces (specs only: objects are not shipped)."""

    model_config = ConfigDict(extra="forbid")

    agent: str
    gate: bool = False
    policy: str = "builtin:default"
    gate_detector: bool = True
    judge: str | None = None
    emulator_model: str | None = None
    scan: bool = False
    max_steps: int = 10


async def _run_shard(run_id: str, url: str, scenarios: list[dict[str, Any]], parts: dict[str, Any],
                     concurrency: int) -> int:
    from airisk.agents.emulator import emulator_from_spec
    from airisk.agents.evaluate import run_suite
    from airisk.agents.judge import trajectory_judge_from_spec
    from airisk.agents.loop import make_agent
    from airisk.agents.scenario import Scenario
    from airisk.distributed.generate import worker_store

    p = SuiteParts.model_validate(parts)
    scen = [Scenario.model_validate(d) for d in scenarios]
    gate = None
    if p.gate or p.gate_detector:
        from airisk.agents.gating import ScenarioGate

        gate = ScenarioGate(p.policy)
    judge = trajectory_judge_from_spec(p.judge) if p.judge else None
    scanner = None
    if p.scan:
        from airisk.guard.injection import InjectionScanner

        scanner = InjectionScanner()
    agent = make_agent(p.agent)
    try:
        await run_suite(scen, agent, gate=gate if p.gate else None, detector_gate=gate if p.gate_detector else None,
                        judge=judge, max_steps=p.max_steps, concurrency=concurrency,
                        model_emulator=emulator_from_spec(p.emulator_model) if p.emulator_model else None,
                        store=worker_store(url), resume=run_id, scanner=scanner, finish=False)
    finally:
        await agent.aclose()
        if judge is not None:
            await judge.aclose()
    return len(scen)


def _suite_shard(run_id: str, url: str, scenarios: list[dict[str, Any]], parts: dict[str, Any],
                 concurrency: int) -> dict[str, Any]:
    import os
    import socket

    import ray

    n = asyncio.run(_run_shard(run_id, url, scenarios, parts, concurrency))
    return {"worker": f"{socket.gethostname()}:{os.getpid()}", "node": ray.get_runtime_context().get_node_id()[:12],
            "scenarios": n}


def _on_ray(store: Any, run_id: str, scenarios: list[Any], parts: SuiteParts, opts: Any,
            concurrency: int) -> dict[str, Any]:
    from airisk.distributed.cluster import alive_nodes, check_store_for_cluster, ray_session, submit_shards, worker_url

    url = worker_url(store.url)
    pending = {it.id for it in store.pending_items(run_id)}
    todo = [s.model_dump(mode="json") for s in scenarios if s.id in pending]
    stats: dict[str, Any] = {"executor": "ray", "scenarios": len(todo), "per_worker": {}, "shard_failures": {}}
    if not todo:
        return stats
    with ray_session(opts) as r:
        check_store_for_cluster(url, len(alive_nodes(r)))
        refs, workers = submit_shards(r, _suite_shard, todo, opts, concurrency,
                             lambda shard, per: (run_id, url, shard, parts.model_dump(), per))
        for ref in refs:
            try:
                res = r.get(ref)
            except Exception as e:  # retries spent: the driver's read-back pass runs what is still missing
                key = f"shard_failed:{type(e).__name__}"
                stats["shard_failures"][key] = stats["shard_failures"].get(key, 0) + 1
                continue
            w = stats["per_worker"].setdefault(res["worker"], {"node": res["node"], "scenarios": 0, "shards": 0})
            w["scenarios"] += res["scenarios"]
            w["shards"] += 1
        stats["workers"] = workers
    return stats


async def run_suite_on_ray(store: Any, scenarios: list[Any], agent: Any, parts: SuiteParts, *, opts: Any,
                           gate: Any = None, detector_gate: Any = None, judge: Any = None, model_emulator: Any = None,
                           scanner: Any = None, concurrency: int = 4, label: str | None = None,
                           config: dict[str, Any] | None = None, resume: str | None = None) -> Any:
    """Run the suite on Ray (see the module's docstring); returns the same ``SuiteResult`` as ``run_suite``.

    ``agent``, ``gate``, ``judge``, ... are the driver's own objects (for the run's identity and the final
    read-back pass); ``parts`` holds their specs for the workers."""
    from airisk.agents.evaluate import create_suite_run, run_suite
    from airisk.errors import ConfigError

    if store is None:
        raise ConfigError("--executor ray needs the store (workers write each scenario's result to it): "
                          "drop --no-store")
    run_id = resume or create_suite_run(store, scenarios, agent, gate=gate, detector_gate=detector_gate, judge=judge,
                                        max_steps=parts.max_steps, scanner=scanner, label=label, config=config).run_id
    stats = await asyncio.to_thread(_on_ray, store, run_id, scenarios, parts, opts, concurrency)
    result = await run_suite(scenarios, agent, gate=gate, detector_gate=detector_gate, judge=judge,
                             max_steps=parts.max_steps, concurrency=concurrency, model_emulator=model_emulator,
                             store=store, resume=run_id, scanner=scanner)
    store.update_run(run_id, stats={"last_execute": stats})
    return result
