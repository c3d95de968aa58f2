"""A sacrificial worker process that tries each first-sight gate decision before the service does.

A deadline on a thread does not protect the event loop from work that holds the GIL: one regular
expression search over a string the gate built while folding a snippet (``a=a+a`` 24 times) held
it for 4.8 s, and no other request, ``/healthz`` included, was answered meanwhile. Threads cannot be
killed; processes can. So a decision the service has not seen before is first computed in a worker
process, under the deadline and a memory cap (``RLIMIT_AS``); if the worker overruns, it is killed
(and replaced) and the decision fails closed. Only a decision the worker finished in time is then
made by the service's own gate, the one holding the session state (rate windows, spend, taint), so
the expensive part is known to be bounded. A decision already tried is remembered (by a hash of
tool, arguments, role and principal) and skips the worker: repeated decisions stay cheap.

The worker builds its own gate from the same policy (sessions play no part in the trial). Start-up
(importing and compiling the policy) is not counted against the deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing as mp
import threading
from collections import OrderedDict
from typing import Any

from airisk.guard.actions import Action

READY, DONE, FAILED = "ready", "done", "failed"


def _worker(conn, policy: Any, memory_mb: int | None, idle_s: float) -> None:  # runs in the child
    import resource

    if memory_mb:
        lim = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    from airisk.guard.gate import ActionGate

    try:
        gate = ActionGate(policy)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which fails closed
        conn.send((FAILED, f"{type(e).__name__}: {e}"))
        return
    conn.send((READY, None))
    while conn.poll(idle_s):
        try:
            tool, args, role, principal = conn.recv()
        except EOFError:
            return
        try:
            d = gate.decide(Action(tool=tool, arguments=args, role=role, principal=principal))
            conn.send((DONE, d.to_dict()))
        except MemoryError:
            conn.send((FAILED, f"decision needed more than {memory_mb} MB"))


class _Proc:
    def __init__(self, ctx, policy: Any, memory_mb: int | None, idle_s: float):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, policy, memory_mb, idle_s), daemon=True,
                                name="airisk-gate-trial")
        self.proc.start()
        child.close()
        self.ready = False

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class GateTrial:
    """Try decisions in worker processes with a deadline and memory cap (see module docstring)."""

    def __init__(self, policy: Any, *, workers: int = 1, memory_mb: int | None = 2048, idle_s: float = 300.0,
                 start_timeout_s: float = 120.0, remember: int = 50_000):
        self.policy, self.memory_mb, self.idle_s, self.start_timeout_s = policy, memory_mb, idle_s, start_timeout_s
        # never fork a process that runs threads: workers fork from a single-threaded fork server
        # that has imported the gate once, so a worker starts in milliseconds, not seconds
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["airisk.guard.gate"])
        self.n = workers
        self._free: asyncio.Queue | None = None
        self._passed: OrderedDict[bytes, None] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        self._procs: list[_Proc] = []
        self._prestarted: list[_Proc] = []
        self.kills = 0

    @staticmethod
    def key(action: Action) -> bytes:
        blob = json.dumps([action.tool, action.arguments, action.role, action.principal], sort_keys=True, default=str)
        return hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def seen(self, key: bytes) -> bool:
        with self._lock:
            if key in self._passed:
                self._passed.move_to_end(key)
                return True
            return False

    def _remember_ok(self, key: bytes) -> None:
        with self._lock:
            self._passed[key] = None
            while len(self._passed) > self._remember:
                self._passed.popitem(last=False)

    def _spawn(self) -> _Proc:
        p = _Proc(self.ctx, self.policy, self.memory_mb, self.idle_s)
        self._procs.append(p)
        return p

    def prestart(self) -> str | None:
        """Start the workers now (blocking; for the service's warm-up thread); an error message if one failed."""
        for _ in range(self.n):
            p = self._spawn()
            err = self._handshake(p, p.conn.poll(self.start_timeout_s))
            if err:
                p.kill()
                return err
            self._prestarted.append(p)
        return None

    async def _start(self, p: _Proc) -> str | None:
        """Wait for a worker's start-up handshake; an error message if it failed."""
        loop = asyncio.get_running_loop()
        return self._handshake(p, await loop.run_in_executor(None, p.conn.poll, self.start_timeout_s))

    def _handshake(self, p: _Proc, ok: bool) -> str | None:
        if not ok:
            return f"gate trial worker did not start within {self.start_timeout_s:g}s"
        try:
            kind, msg = p.conn.recv()
        except EOFError:
            return "gate trial worker exited during start-up"
        if kind != READY:
            return f"gate trial worker failed to start: {msg}"
        p.ready = True
        return None

    async def _worker(self) -> _Proc:
        if self._free is None:
            self._free = asyncio.Queue()
            for i in range(self.n):  # a slot: a started process, or None to start one on first use
                self._free.put_nowait(self._prestarted[i] if i < len(self._prestarted) else None)
        p = await self._free.get()
        if p is None or not p.proc.is_alive():
            if p is not None:
                p.kill()
            p = self._spawn()
        return p

    async def trial(self, action: Action, deadline_s: float) -> tuple[bool, str | None]:
        """(passed, why not). Passed means the worker decided within the deadline and memory cap,
        and its gate did not itself fail closed (an internal error such as MemoryError under the
        cap, or its own check timeout): such a decision is not repeated where it is not capped."""
        key = self.key(action)
        if self.seen(key):
            return True, None
        p = await self._worker()
        keep: _Proc | None = None
        try:
            if not p.ready:
                err = await self._start(p)
                if err:
                    p.kill()
                    return False, err
            try:
                p.conn.send((action.tool, action.arguments, action.role, action.principal))
            except (BrokenPipeError, OSError, ValueError):
                p.kill()
                return False, "gate trial worker is gone"
            loop = asyncio.get_running_loop()
            got = await loop.run_in_executor(None, p.conn.poll, deadline_s)
            if not got:
                p.kill()
                self.kills += 1
                return False, f"the decision took longer than {deadline_s:g}s (worker stopped)"
            try:
                kind, msg = p.conn.recv()
            except EOFError:
                p.kill()
                self.kills += 1
                return False, "the decision exhausted the worker's memory"
            keep = p
            if kind != DONE:
                return False, msg
            failed = [r for r in msg.get("rule_ids", []) if r in ("gate.error", "gate.timeout")]
            if failed:
                return False, f"{failed[0]} in the trial worker: " + "; ".join(msg.get("reasons", [])[:1])
            self._remember_ok(key)
            return True, None
        finally:
            self._free.put_nowait(keep)

    def close(self) -> None:
        for p in self._procs:
            if p.proc.is_alive():
                p.kill()
