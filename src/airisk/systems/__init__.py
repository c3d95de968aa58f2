"""Systems under test: one interface (``System``), implementations found by entry point."""

from airisk.systems.base import PermanentError, System, TransientError

__all__ = ["PermanentError", "System", "TransientError"]
