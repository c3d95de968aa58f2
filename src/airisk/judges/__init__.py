"""Judges: turn (prompt, response) conversations into safety verdicts with measured error rates."""

from airisk.judges.base import Judge

__all__ = ["Judge"]
