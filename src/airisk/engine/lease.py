"""Hold a run while working on it: a lease in the store, renewed by a heartbeat thread.

Why: the status column alone cannot tell "running" from "killed while running" (nobody is left to
write "interrupted" after a SIGKILL), and nothing stopped two resumes of one run from asking the same
pending items twice. While a process works on a run it holds the run's lease (owner host:pid, phase,
expiry renewed every ``ttl_s / 3`` seconds); readers derive ``interrupted`` from a dead lease
(``Store.get_run``) and a second worker is refused with :class:`~airisk.store.RunBusy`::

    with hold_run(store, run_id, "generating") as held:
        ...                       # answer items
        held.phase("judging")     # then judge them
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Iterator

from airisk.store import Lease, Store
from airisk.store.store import LEASE_TTL_S

log = logging.getLogger(__name__)


class HeldRun:
    """A lease plus the thread that keeps it alive; ``lost`` turns True if another process took it."""

    def __init__(self, store: Store, lease: Lease):
        self.store, self.lease = store, lease
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"airisk-lease-{lease.run_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease.ttl_s / 3):
            try:
                if not self.store.renew_lease(self.lease):
                    self.lost = True
                    log.warning("run %s: lease taken over by another process", self.lease.run_id)
                    return
            except Exception as e:  # noqa: BLE001 - a missed heartbeat is retried; expiry is the backstop
                log.warning("run %s: lease heartbeat failed: %s", self.lease.run_id, e)

    def phase(self, phase: str) -> None:
        if self.lease.phase != phase:
            self.store.renew_lease(self.lease, phase=phase)

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.store.release_lease(self.lease)
        except Exception as e:  # noqa: BLE001 - an unreleased lease only expires later
            log.warning("run %s: could not release its lease: %s", self.lease.run_id, e)


@contextlib.contextmanager
def hold_run(store: Store, run_id: str, phase: str, held: HeldRun | None = None,
             *, ttl_s: float = LEASE_TTL_S) -> Iterator[HeldRun]:
    """Take the run's lease for this block (raises RunBusy if a live process holds it). Given ``held``
    (the caller already holds the run), only the phase changes and the caller keeps the lease."""
    if held is not None:
        held.phase(phase)
        yield held
        return
    h = HeldRun(store, store.acquire_lease(run_id, phase, ttl_s=ttl_s))
    try:
        yield h
    finally:
        h.release()
