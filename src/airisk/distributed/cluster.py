"""Joining (or starting) a Ray cluster for a run, and checking that the store can be shared by it.

Workers write straight to the run store, so every node must reach the same database: a SQLite
file lives on one machine, so a Ray run with a SQLite URL is refused as soon as the cluster has
more than one node. PostgreSQL (any server every node can reach) is the store for clusters.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from airisk.errors import ConfigError
from airisk.distributed.options import RayOptions


def import_ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError("--executor ray needs Ray; install it with: pip install 'airisk[distributed]'") from None
    return ray


def worker_url(url: str) -> str:
    """The store URL as workers must see it: a relative SQLite path made absolute (workers do not
    run in the driver's directory), password kept (workers must log in; the URL is never printed)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db in ("", ":memory:") or db.startswith("file::memory:"):
            raise ConfigError("an in-memory SQLite store cannot be shared with Ray workers; give --db a file "
                              "(one machine) or a PostgreSQL URL (a cluster)")
        u = u.set(database=str(Path(db).expanduser().resolve()))
    return u.render_as_string(hide_password=False)


def check_store_for_cluster(url: str, alive_nodes: int) -> None:
    """Refuse a SQLite store when the run could land on more than one machine."""
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() == "sqlite" and alive_nodes > 1:
        raise ConfigError(
            f"this Ray cluster has {alive_nodes} nodes but the store is a SQLite file, which only one machine can "
            "reach; use a PostgreSQL store every node can reach, e.g. --db postgresql+psycopg2://user@dbhost/airisk "
            "(or --executor local)")


@contextmanager
def ray_session(opts: RayOptions) -> Iterator[object]:
    """Connect to the cluster named by ``opts.address`` or start a local instance; yields the ``ray``
    module. A local instance started here is shut down on exit; a joined cluster is only left."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a run
    already = ray.is_initialized()
    if not already:
        kwargs: dict[str, object] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                                         configure_logging=True)
        if opts.address:
            kwargs["address"] = opts.address
        else:
            # Ray runs its workers at nice 15 by default (they yield to everything else): on a machine
            # with any other load, that made the offline judge ~7x slower in a worker than in this
            # process (measured: 256 verdicts in 9.5 s vs 1.4 s at nice 0). The run is the user's
            # foreground work on their own machine, so a private instance runs them at normal priority.
            os.environ.setdefault("RAY_worker_niceness", "0")
            kwargs["num_cpus"] = opts.num_cpus or os.cpu_count() or 1
            # a private local instance listens on loopback only, never on the machine's other addresses
            kwargs["_node_ip_address"] = "127.0.0.1"
        try:
            ray.init(**kwargs)
        except ConnectionError as e:
            raise ConfigError(f"cannot reach the Ray cluster at {opts.address!r}: {e}") from None
    try:
        yield ray
    finally:
        if not already:
            ray.shutdown()


def alive_nodes(ray) -> list[dict]:
    return [n for n in ray.nodes() if n.get("Alive")]


def cluster_cpus(ray) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def submit_shards(ray, fn, todo: list, opts: RayOptions, concurrency: int, args) -> tuple[list, int]:
    """Split ``todo`` into one contiguous shard per worker and submit ``fn`` once per shard as a Ray
    task (one CPU, ``opts.max_retries`` retries on a lost worker, none on an exception raised by
    ``fn`` itself). ``args(shard, per_worker_concurrency)`` gives the task's arguments; the run's
    concurrency is split evenly over the workers. Returns the task refs, in shard order, and the number
    of workers the shards were sized for."""
    workers = min(opts.workers or cluster_cpus(ray), len(todo))
    size = -(-len(todo) // workers)
    per = -(-concurrency // workers)
    task = ray.remote(fn).options(num_cpus=1, max_retries=opts.max_retries, retry_exceptions=False)
    return [task.remote(*args(todo[i : i + size], per)) for i in range(0, len(todo), size)], workers


def head_node(ray) -> str:
    """The id of the head node: where the run's coordinator lives. The head's loss ends the cluster
    anyway, so nothing else is lost with it; any other node may be killed mid-run. (A *soft* affinity
    to the driver's node was not enough: under load Ray placed the coordinator on a worker node, and
    killing that node failed the run.)"""
    for n in alive_nodes(ray):
        if "node:__internal_head__" in (n.get("Resources") or {}):
            return n["NodeID"]
    return ray.get_runtime_context().get_node_id()
