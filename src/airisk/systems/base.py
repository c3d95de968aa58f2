"""The interface every system under test implements.

A system turns a list of chat messages into a Completion. Systems are async; a synchronous
implementation simply does its work inside ``generate``. The engine adds concurrency, retries,
rate limits and caching around it, so a system stays a thin adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from airisk.types import Completion, Item, Message, stable_hash


class TransientError(Exception):
    """A failure worth retrying (429, 5xx, connection reset, timeout).

    ``retry_after`` carries the server's Retry-After hint in seconds, when it sent one.
    """

    def __init__(self, message: str, *, kind: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class PermanentError(Exception):
    """A failure that retrying cannot fix (400, 401, a replay file with no answer)."""

    def __init__(self, message: str, *, kind: str):
        super().__init__(message)
        self.kind = kind


class System(ABC):
    """A system under test.

    Subclasses set ``name`` and implement ``generate``. ``params`` are the options that change
    the output (model, temperature...): they go into the fingerprint, and so into cache keys.
    Secrets must never be part of ``params``.
    """

    name: ClassVar[str] = "system"
    #: The engine caches this system's answers when true. Replay/python systems are cheap and
    #: may be non-deterministic on purpose, so they opt out.
    cacheable: ClassVar[bool] = True

    def __init__(self, **params: Any):
        self.params: dict[str, Any] = params

    def fingerprint(self) -> str:
        """Identifies the system's behaviour: same fingerprint + same prompt = same cached answer."""
        return stable_hash({"system": self.name, **self.public_params()})

    def public_params(self) -> dict[str, Any]:
        """Parameters safe to store and show (never secrets)."""
        return dict(self.params)

    def describe(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.public_params().items())})"

    async def preflight(self) -> None:
        """Fail fast, with a clear PreflightError, if the system cannot answer at all."""

    @abstractmethod
    async def generate(self, messages: list[Message], *, item: Item | None = None) -> Completion:
        """Answer one conversation. Raise TransientError to ask the engine to retry."""

    async def aclose(self) -> None:
        """Release connections."""

    def unmatched(self) -> list[str]:
        """Item ids the system could not answer by design (replay); empty for live systems."""
        return []
