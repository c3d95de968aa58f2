"""The Python API behind ``--executor local|ray``: one call that runs, resumes or judges a run on
either executor, so the CLI (and notebooks, schedulers) choose the executor with one argument.

``local`` is the engine as it always was (``airisk.engine.runner``), untouched; ``ray`` is
``airisk.distributed.generate`` / ``airisk.distributed.judging``. Both write the same rows to the
same store, so a run started on one can be resumed or judged on the other.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from airisk.distributed.options import RayOptions, check_executor
from airisk.systems.base import System
from airisk.types import Item


def _opts(ray: RayOptions | dict[str, Any] | None) -> RayOptions:
    return ray if isinstance(ray, RayOptions) else RayOptions.model_validate(ray or {})


def run_items(store, system, items: Sequence[Item], *, executor: str = "local", ray: RayOptions | dict | None = None,
              run_id: str | None = None, kind: str = "benchmark", concurrency: int = 16, rps: float | None = None,
              judge: Any = None, config: dict[str, Any] | None = None, datasets: list[dict[str, Any]] | None = None,
              label: str | None = None, progress: bool = True, retry=None, use_cache: bool = True,
              preflight: bool = True) -> str:
    """Create a run for ``items``, answer them (and judge them, when ``judge`` is given) on ``executor``.

    ``system`` is a System or a spec; ``judge`` a Judge or a spec. Returns the run id. On Ray the
    run's config records ``executor: ray`` so that ``resume`` uses Ray again unless told otherwise.
    """
    from airisk.engine import runner
    from airisk.systems.factory import make_system

    check_executor(executor)
    owned = not isinstance(system, System)
    system = make_system(system)
    if executor == "local":
        judge_obj = _judge_obj(judge)

        async def go() -> str:
            try:
                return await runner.run_items(store, system, items, run_id=run_id, kind=kind, concurrency=concurrency,
                                              rps=rps, judge=judge_obj, config=config, datasets=datasets, label=label,
                                              progress=progress, retry=retry, use_cache=use_cache, preflight=preflight)
            finally:
                if owned:
                    await system.aclose()
        return asyncio.run(go())

    from airisk.engine.lease import hold_run

    opts = _opts(ray)
    run_id = run_id or runner.new_run_id()
    if preflight and items:
        preflight_system(system)  # fail before anything is stored, as the local engine does
    # The driver holds the run's lease, as the local engine does: a killed driver shows as
    # "interrupted", and a second driver (or a local resume) on the same run is refused.
    with hold_run(store, run_id, "generating") as held:
        store.create_run(run_id, kind=kind, system_name=system.name, system_fingerprint=system.fingerprint(),
                         config={**(config or {}), "executor": "ray", "ray": opts.model_dump(exclude_none=True),
                                 "system": {"type": system.name, **system.public_params()}},
                         datasets=datasets or [], label=label)
        store.add_items(run_id, list(items))
        execute(store, run_id, system, executor="ray", ray=opts, concurrency=concurrency, rps=rps,
                progress=progress, retry=retry, use_cache=use_cache, preflight=False, held=held)
        if judge is not None:
            judge_items(store, run_id, judge, executor="ray", ray=opts, progress=progress, held=held)
    return run_id


def execute(store, run_id: str, system, *, executor: str = "local", ray: RayOptions | dict | None = None,
            concurrency: int = 16, rps: float | None = None, progress: bool = True, retry=None, use_cache: bool = True,
            preflight: bool = True, held=None) -> dict[str, Any]:
    """Answer the run's pending items (this is also the resume); returns the execution stats.

    Holds the run's lease meanwhile (``held``: the caller already holds it)."""
    from airisk.engine import runner
    from airisk.systems.factory import make_system

    check_executor(executor)
    owned = not isinstance(system, System)
    system = make_system(system)
    if executor == "local":
        async def go() -> dict[str, Any]:
            try:
                return await runner.execute(store, run_id, system, concurrency=concurrency, rps=rps, progress=progress,
                                            retry=retry, use_cache=use_cache, preflight=preflight)
            finally:
                if owned:
                    await system.aclose()
        return asyncio.run(go())
    from airisk.distributed.cluster import import_ray
    from airisk.engine.lease import hold_run

    import_ray()
    from airisk.distributed.generate import execute_on_ray

    with hold_run(store, run_id, "generating", held):
        return execute_on_ray(store, run_id, system, opts=_opts(ray), concurrency=concurrency, rps=rps, retry=retry,
                              progress=progress, use_cache=use_cache, preflight=preflight)


def resume(store, run_id: str, *, executor: str | None = None, ray: RayOptions | dict | None = None,
           judge: Any = None, concurrency: int | None = None, progress: bool = True,
           retry_errors: bool = False) -> dict[str, Any]:
    """Carry on a run whatever stopped it; ``executor`` defaults to the one the run was started with."""
    from airisk.engine.retry import RetryPolicy
    from airisk.systems.factory import make_system

    run = store.get_run(run_id)
    cfg = run.config
    executor = executor or cfg.get("executor", "local")
    check_executor(executor)
    if ray is None and executor == "ray":
        ray = {k: v for k, v in (cfg.get("ray") or {}).items()}
    system = make_system(dict(cfg["system"]))
    if retry_errors:
        store.delete_responses(run.id, errors_only=True)
    policy = RetryPolicy(**cfg["retry"]) if cfg.get("retry") else RetryPolicy(max_retries=cfg.get("max_retries", 5))
    stats = execute(store, run.id, system, executor=executor, ray=ray,
                    concurrency=concurrency or cfg.get("concurrency", 16), rps=cfg.get("rps"), progress=progress,
                    retry=policy)
    if judge is not None:
        judge_items(store, run.id, judge, executor=executor, ray=ray, progress=progress)
    return stats


def judge_items(store, run_id: str, judge: Any, *, executor: str = "local", ray: RayOptions | dict | None = None,
                batch_size: int = 64, rejudge: bool = False, progress: bool = True, close: bool = True,
                held=None) -> int:
    """Judge the run's answered items with ``judge`` (spec or Judge); returns how many were judged.

    ``close``: on the local executor, close the judge's clients at the end (in the loop that used them);
    False when the caller keeps using the Judge object it passed. ``held``: the run's lease, when the
    caller holds it already (else it is taken here, as ``engine.judge_run`` does)."""
    check_executor(executor)
    if executor == "local":
        from airisk.engine.runner import judge_run

        j = _judge_obj(judge)

        async def go() -> int:
            try:
                return await judge_run(store, run_id, j, batch_size=batch_size, rejudge=rejudge, progress=progress,
                                       held=held)
            finally:
                if close:
                    await j.aclose()
        return asyncio.run(go())
    from airisk.distributed.cluster import import_ray
    from airisk.engine.runner import judging

    import_ray()
    from airisk.distributed.judging import judge_on_ray

    with judging(store, run_id, held):
        return judge_on_ray(store, run_id, judge, opts=_opts(ray), batch_size=batch_size, rejudge=rejudge,
                            progress=progress)


def preflight_system(system: System) -> None:
    """The system's preflight, then its clients closed in the same event loop (the driver of a Ray
    run never asks the system anything else: workers build their own)."""
    async def go() -> None:
        try:
            await system.preflight()
        finally:
            await system.aclose()
    asyncio.run(go())


def _judge_obj(judge: Any):
    if judge is None:
        return None
    from airisk.judges.factory import make_judge

    return make_judge(judge)
