"""Scale a run out on Ray: shards of items over a cluster, one global request limit per system,
judge actors that load the judge once per worker, PostgreSQL as the shared store.

Use it from Python::

    from airisk.distributed import RayOptions, run_items
    run_id = run_items(store, "openai:model=m,base_url=http://host:8000/v1", items, executor="ray",
                       ray=RayOptions(address="auto"), concurrency=64, judge="offline")

or from the command line: ``airisk run ... --executor ray [--ray-address auto]``. See docs/distributed.md.
Ray itself is imported only when the ``ray`` executor is used (``pip install 'airisk[distributed]'``).
"""

from airisk.distributed.api import execute, judge_items, resume, run_items
from airisk.distributed.options import EXECUTORS, RayOptions, check_executor

__all__ = ["EXECUTORS", "RayOptions", "check_executor", "execute", "judge_items", "resume", "run_items"]
