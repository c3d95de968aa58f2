"""Judging a run on Ray: actors that load the judge once per worker and write verdicts through the store.

A judge such as the offline one loads an encoder and weights (seconds); an actor keeps it loaded
and judges shard after shard. Verdicts are written by the actor with the store's unique key
(run, item, judge), so a shard re-run after an actor died cannot store a verdict twice, and the
driver re-reads the store at the end to say how many items are still unjudged.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from typing import Any

import ray

from airisk.types import Conversation, Judgment


class JudgeWorker:
    """Holds one judge for the life of the actor. ``spec`` is a judge spec (string/dict) built on the
    worker, or a Judge object shipped pickled (tests' MarkerJudge, a custom judge from Python)."""

    def __init__(self, spec: Any, url: str):
        from airisk.distributed.generate import worker_store
        from airisk.judges.factory import make_judge

        t0 = time.perf_counter()
        self.error: Exception | None = None
        try:
            self.judge = make_judge(spec)
        except Exception as e:  # kept for describe(): a bad spec is the user's error, not a dead actor
            self.error = e
        self.load_s = time.perf_counter() - t0
        self.store = worker_store(url)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.node = ray.get_runtime_context().get_node_id()[:12]
        # One loop for the actor's life: judges that hold async clients stay bound to one loop.
        self.loop = asyncio.new_event_loop()

    def describe(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return self.judge.describe()

    def judge_shard(self, run_id: str, convs: list[dict[str, Any]], batch_size: int, rejudge: bool) -> dict[str, Any]:
        j = self.judge
        n = errs = 0
        t0 = time.perf_counter()
        for i in range(0, len(convs), batch_size):
            chunk = [Conversation.model_validate(c) for c in convs[i : i + batch_size]]
            try:
                verdicts = self.loop.run_until_complete(j.judge_batch(chunk))
                if len(verdicts) != len(chunk):
                    raise RuntimeError(f"judge returned {len(verdicts)} verdicts for {len(chunk)} inputs")
            except Exception as e:  # as engine.judge_run: a failed batch is recorded as errors, never as safe
                verdicts = [Judgment(label="error", error=f"{type(e).__name__}: {e}") for _ in chunk]
            verdicts = [v.model_copy(update={"judge_id": j.id, "judge_fingerprint": j.fingerprint}) for v in verdicts]
            self.store.save_judgments(run_id, [(c.item_id, v) for c, v in zip(chunk, verdicts)], replace=rejudge)
            n += len(chunk)
            errs += sum(v.label == "error" for v in verdicts)
        return {"worker": self.name, "node": self.node, "judged": n, "errors": errs,
                "seconds": time.perf_counter() - t0, "load_s": self.load_s}


def judge_on_ray(store, run_id: str, judge: Any, *, opts, batch_size: int = 64, rejudge: bool = False,
                 progress: bool = True) -> int:
    """Judge every answered, not-yet-judged item of the run on Ray actors; returns how many were judged.

    ``judge`` is a spec (``"offline"``) or a Judge object. The distributed twin of ``engine.judge_run``:
    same items, same verdict rules, same store rows.
    """
    from airisk.distributed.cluster import alive_nodes, check_store_for_cluster, cluster_cpus, ray_session, worker_url
    from airisk.engine.progress import ProgressReporter
    from airisk.engine.runner import conversation

    url = worker_url(store.url)
    run = store.get_run(run_id)
    system_prompt = (run.config.get("system") or {}).get("system_prompt")
    with ray_session(opts) as r:
        check_store_for_cluster(url, len(alive_nodes(r)))
        workers = opts.workers or cluster_cpus(r)
        actor_cls = ray.remote(JudgeWorker).options(num_cpus=1, max_restarts=opts.max_retries,
                                                    max_task_retries=opts.max_retries)
        actors = [actor_cls.remote(judge, url) for _ in range(workers)]
        t_start = time.perf_counter()
        try:
            # Every actor has its judge loaded before the clock starts: load time and judging speed are
            # reported apart (the first is paid once per worker, the second scales with workers).
            desc = r.get([a.describe.remote() for a in actors])[0]
        except ray.exceptions.RayTaskError as e:
            from airisk.errors import AiriskError

            for a in actors:
                r.kill(a)
            if isinstance(e.cause, AiriskError):
                raise e.cause from None  # e.g. a bad judge spec: one line, exit 64, as on the local executor
            raise
        judge_id = desc.get("id")
        store.update_run(run.id, judges=[desc])
        todo = store.unjudged_item_ids(run.id, judge_id) if not rejudge else None
        records = [rec for rec in store.records(run.id)
                   if rec.completion is not None and rec.completion.ok and (todo is None or rec.item.id in todo)]
        if not records:
            for a in actors:
                r.kill(a)
            store.update_run(run.id, stats={"last_judge": {"executor": "ray", "judge": desc, "judged": 0}})
            return 0
        convs = [conversation(rec, system_prompt).model_dump(mode="json") for rec in records]
        # Shards of several batches, at least two per actor so that a fast actor takes over from a slow one.
        size = max(batch_size, min(opts.shard_size * 4, -(-len(convs) // (2 * workers))))
        queue = [convs[i : i + size] for i in range(0, len(convs), size)]
        ready_s = time.perf_counter() - t_start
        t0 = time.perf_counter()
        reporter = ProgressReporter(len(convs), f"judge {judge_id} (ray, {workers} workers)", enabled=progress)
        per_worker: dict[str, Counter] = {}
        nodes: dict[str, str] = {}
        failed: Counter[str] = Counter()
        n = 0
        try:
            idle = list(actors)
            inflight: dict[Any, tuple[Any, list]] = {}
            while queue or inflight:
                while queue and idle:
                    a = idle.pop()
                    shard = queue.pop(0)
                    inflight[a.judge_shard.remote(run.id, shard, batch_size, rejudge)] = (a, shard)
                reporter.note = f"workers {len(inflight)}/{workers}"
                ready, _ = r.wait(list(inflight), num_returns=1, timeout=1.0)
                for ref in ready:
                    a, shard = inflight.pop(ref)
                    try:
                        res = r.get(ref)
                    except Exception as e:  # the actor is gone for good: its shard stays unjudged
                        failed[f"shard_failed:{type(e).__name__}"] += 1
                        reporter.advance(len(shard), errors=len(shard))
                        continue
                    idle.append(a)
                    n += res["judged"]
                    w = per_worker.setdefault(res["worker"], Counter())
                    w.update({"judged": res["judged"], "errors": res["errors"], "shards": 1})
                    nodes[res["worker"]] = res["node"]
                    reporter.advance(res["judged"], errors=res["errors"])
        finally:
            reporter.close()
            for a in actors:
                try:
                    r.kill(a)
                except Exception:
                    pass
        judge_s = time.perf_counter() - t0
        summary = {"executor": "ray", "judge": desc, "workers": workers, "judged": n, "ready_s": round(ready_s, 3),
                   "judge_s": round(judge_s, 3), "items_per_s": round(n / judge_s, 2) if judge_s > 0 else None,
                   "shard_failures": dict(failed),
                   "per_worker": {k: {**v, "node": nodes[k]} for k, v in per_worker.items()}}
        store.update_run(run.id, stats={f"judge:{judge_id}": summary, "last_judge": summary})
    return n
