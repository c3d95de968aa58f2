"""Resolve host names the agent wants to reach, so that a name pointing inside the network is caught.

The gate's host checks are textual: ``10.0.0.1``, ``169.254.43518``, ``::ffff:a9fe:a9fe`` and
``10.0.0.1.nip.io`` are recognised as internal without any lookup. A name like ``db.corp-x.com``
that *resolves* to 10.0.0.5 (or to 127.0.0.1, or to the cloud metadata address) is not; with
``scopes.network.dns.enabled`` the gate resolves every public-looking name it allowed textually and
blocks it when any address it resolves to is private, link-local, metadata, loopback or otherwise
not globally routable (``airisk.guard.detectors.paths.host_class`` classifies the addresses, so
IPv4-mapped and 6to4 IPv6 answers count as the IPv4 address inside them).

Determinism and speed: the lookup runs on a small thread pool under ``timeout_s`` (getaddrinfo has
no timeout of its own), answers are cached for ``cache_ttl_s`` (failures for ``negative_ttl_s``), and
the gate caches only the *names* a call needs resolved, never the answers: a cached decision costs
one dict lookup per name while the answer is fresh, and a lookup happens only when it is not. Tests
pass a ``resolver`` function (name -> addresses) instead of the system's.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Iterable

Resolver = Callable[[str], Iterable[str]]
# Prefix of the marker findings by which host checks ask the gate to resolve a name; never shown.
DNS_MARK = "~dns:"

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def system_resolver(host: str) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (IPv4 and IPv6), as strings."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="airisk-dns")
        return _POOL


class DnsCache:
    """Resolved addresses per name with a time-to-live; ``lookup`` returns (addresses, error)."""

    def __init__(self, resolver: Resolver | None = None, *, timeout_s: float = 1.0, ttl_s: float = 300.0,
                 negative_ttl_s: float = 30.0, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.resolver = resolver or system_resolver
        self.timeout_s, self.ttl_s, self.negative_ttl_s = timeout_s, ttl_s, negative_ttl_s
        self.max_entries, self.clock = max_entries, clock
        self._cache: OrderedDict[str, tuple[float, tuple[str, ...], str | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.lookups = 0  # resolutions actually performed (tests and benchmarks read it)

    def lookup(self, host: str) -> tuple[tuple[str, ...], str | None]:
        now = self.clock()
        hit = self._cache.get(host)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        addrs: tuple[str, ...] = ()
        err: str | None = None
        self.lookups += 1
        fut = _pool().submit(lambda: list(self.resolver(host)))
        try:
            addrs = tuple(fut.result(timeout=self.timeout_s))
            if not addrs:
                err = "no addresses"
        except FutureTimeout:
            err = f"no answer within {self.timeout_s:g}s"
        except (OSError, UnicodeError, ValueError) as e:  # gaierror is an OSError; bad IDNA a UnicodeError
            err = type(e).__name__
        ttl = self.negative_ttl_s if err else self.ttl_s
        with self._lock:
            self._cache[host] = (now + ttl, addrs, err)
            self._cache.move_to_end(host)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return addrs, err
