"""One thread per process for airisk's own PyTorch work (offline judges, local Hugging Face systems).

Private module. PyTorch's CPU kernels run on an OpenMP team that belongs to the thread calling them.
When several threads take turns (``asyncio.to_thread`` hands each call to any worker of the default
executor; a web framework runs sync handlers on a pool), each gets its own team, the process holds
more OpenMP threads than cores, and libgomp stops spin-waiting between parallel regions: each of the
hundred-odd short regions of a forward pass then pays a sleep and a wake-up. On this project's
2-core machine one item through the six-layer judge took about 19 ms when one thread did all the
work and about 35 ms once two threads had taken turns (``python benchmarks/judge_thread.py``).

So the offline judges (``offline``, ``offline-fast``, ``refusal``, and ``offline-v1``'s encoder) load
their network and score on this one thread, and the ``hf`` system loads and generates on it.
Training and cross-validation call the network directly on their own thread and are not affected. Torch work a caller does on other threads (their own models) brings
the slowdown back for everyone in the process: where that matters, do it through ``run``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_here = threading.local()


def _mark() -> None:
    _here.inside = True


def executor() -> ThreadPoolExecutor:
    """The process's torch thread (created on first use; again in a forked child, whose copy of the
    parent's pool has no thread behind it)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(1, thread_name_prefix="airisk-torch", initializer=_mark)
            _pool_pid = os.getpid()
        return _pool


def run(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``fn(*args, **kwargs)`` on the torch thread, waiting for its result (exceptions propagate).
    Called on the torch thread itself, it runs in place: nesting cannot deadlock."""
    if getattr(_here, "inside", False):
        return fn(*args, **kwargs)
    return executor().submit(fn, *args, **kwargs).result()


async def arun(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on the torch thread, awaited without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(executor(), fn, *args)


__all__ = ["arun", "executor", "run"]
