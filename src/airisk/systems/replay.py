"""The ``replay`` system: recorded responses from a JSONL or CSV file.

Each record has ``response`` (or ``text``/``completion``) and is matched to an item by ``id``
(or ``item_id``/``release_prompt_id``) first, then by the exact prompt text, then by the prompt
with whitespace collapsed. Items with no recorded answer are stored as errors of kind
``unmatched`` and listed by ``unmatched()``: never silently dropped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from airisk.datasets.readers import RowErrors, iter_csv, iter_jsonl, read_text
from airisk.errors import ConfigError, DataError
from airisk.systems.base import PermanentError, System
from airisk.types import Completion, Item, Message, stable_hash

_ID_KEYS = ("id", "item_id", "release_prompt_id")
_RESPONSE_KEYS = ("response", "text", "completion", "output")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def read_records(path: Path) -> list[dict[str, Any]]:
    """Recorded rows with the physical line each starts on (``_line``); errors name file and line."""
    if not path.exists():
        raise ConfigError(f"replay system: file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise ConfigError(f"replay system: unsupported file type {path.suffix!r} (use .jsonl or .csv)")
    errors = RowErrors(path, skip_bad=False)
    text = read_text(path)
    rows = iter_jsonl(text, errors) if suffix == ".jsonl" else iter_csv(text, errors)
    records = [{**rec, "_line": line} for line, rec in rows]
    for rec in records:
        if not any(k in rec and rec[k] is not None for k in _RESPONSE_KEYS) and "error" not in rec:
            raise DataError(f"no response column (one of {', '.join(_RESPONSE_KEYS)})", path=str(path),
                            line=rec["_line"], field="response")
    return records


class ReplaySystem(System):
    """Answers from a file of recorded conversations."""

    name = "replay"
    cacheable = False

    def __init__(self, path: str | None = None, **params: Any):
        if not path:
            raise ConfigError("replay system: parameter 'path' is required")
        p = Path(path)
        records = read_records(p)
        super().__init__(path=str(p), sha=stable_hash(p.read_bytes().hex()), **params)
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_prompt: dict[str, dict[str, Any]] = {}
        self.by_norm: dict[str, dict[str, Any]] = {}
        for rec in records:
            for k in _ID_KEYS:
                if rec.get(k):
                    self.by_id[str(rec[k])] = rec
                    break
            prompt = rec.get("prompt") or rec.get("prompt_text")
            if prompt:
                self.by_prompt.setdefault(prompt, rec)
                self.by_norm.setdefault(_norm(prompt), rec)
        self._unmatched: list[str] = []

    def match(self, item: Item | None, messages: list[Message]) -> dict[str, Any] | None:
        if item is not None and item.id in self.by_id:
            return self.by_id[item.id]
        prompt = item.prompt if item is not None else next(
            (m.content or "" for m in reversed(messages) if m.role == "user"), "")
        return self.by_prompt.get(prompt) or self.by_norm.get(_norm(prompt))

    async def generate(self, messages: list[Message], *, item: Item | None = None) -> Completion:
        rec = self.match(item, messages)
        if rec is None:
            self._unmatched.append(item.id if item else "?")
            raise PermanentError("no recorded response matches this item (by id or prompt)", kind="unmatched")
        if rec.get("error"):
            return Completion(error=str(rec["error"]), error_kind="recorded_error")
        text = next(rec[k] for k in _RESPONSE_KEYS if k in rec and rec[k] is not None)
        return Completion(text=str(text), latency_s=float(rec["latency_s"]) if rec.get("latency_s") else None)

    def unmatched(self) -> list[str]:
        return list(self._unmatched)
