"""The ``python`` system: any sync or async callable, named ``module:function`` or ``path.py:function``.

The callable receives the conversation as a list of OpenAI-style message dicts and returns a
string, a dict ``{"content": ..., "tool_calls": [...]}`` or a ``Completion``. Raising
``TransientError`` asks the engine to retry, like a remote endpoint would.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import sys
import time
from pathlib import Path
from typing import Any, Callable

from airisk.errors import ConfigError
from airisk.systems.base import System
from airisk.types import Completion, Item, Message


def load_callable(target: str) -> Callable[..., Any]:
    """Resolve ``module:function`` (importable) or ``file.py:function`` (a path)."""
    if ":" not in target:
        raise ConfigError(f"python system: 'target' must look like module:function, got {target!r}")
    mod_name, _, attr = target.rpartition(":")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            if not path.exists():
                raise ConfigError(f"python system: file not found: {path}")
            spec = importlib.util.spec_from_file_location(f"airisk_user_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[spec.name] = module  # type: ignore[union-attr]
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(mod_name)
    except ImportError as e:
        raise ConfigError(f"python system: cannot import {mod_name!r}: {e}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"python system: {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"python system: {target!r} is not callable")
    return obj


class PythonSystem(System):
    """Wraps a Python callable as a system under test.

    Sync callables run in a worker thread so they cannot stall the event loop.
    """

    name = "python"
    cacheable = False

    def __init__(self, target: str | None = None, fn: Callable[..., Any] | None = None, **params: Any):
        if fn is None:
            if not target:
                raise ConfigError("python system: parameter 'target' (module:function) is required")
            fn = load_callable(target)
        super().__init__(target=target or f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', '?')}", **params)
        self.fn = fn
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))

    async def generate(self, messages: list[Message], *, item: Item | None = None) -> Completion:
        payload = [m.model_dump(exclude_none=True) for m in messages]
        t0 = time.perf_counter()
        if self._is_async:
            out = await self.fn(payload)
        else:
            out = await asyncio.to_thread(self.fn, payload)
            if inspect.isawaitable(out):
                out = await out
        latency = time.perf_counter() - t0
        if isinstance(out, Completion):
            return out if out.latency_s is not None else out.model_copy(update={"latency_s": latency})
        if isinstance(out, dict):
            return Completion(text=out.get("content") or "", tool_calls=out.get("tool_calls"), latency_s=latency)
        if out is None:
            return Completion(text="", latency_s=latency)
        return Completion(text=str(out), latency_s=latency)
