"""Prompt templates and lexicons for the attacks (YAML data files written for airisk)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml


@lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    """Parsed ``templates/<name>.yaml``."""
    text = files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def template_hash(*parts: str) -> str:
    """12 hex digits identifying a template's exact text (recorded in lineage and cache keys)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:12]
