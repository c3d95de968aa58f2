"""Plugin discovery through package entry points.

Systems, judges, mutators and attacks are looked up by name in the entry-point groups
``airisk.systems``, ``airisk.judges``, ``airisk.mutators`` and ``airisk.attacks``. A third-party
package registers its own by declaring entry points; nothing is registered by import side effects.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from airisk.errors import PluginNotFound

GROUPS = ("systems", "judges", "mutators", "attacks", "datasets", "report_sections")


@lru_cache(maxsize=None)
def _eps(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=f"airisk.{group}")}


def available(group: str) -> list[str]:
    """Names registered under ``airisk.<group>``, sorted."""
    return sorted(_eps(group))


def load(group: str, name: str) -> Any:
    """Load the object registered as ``name`` in ``airisk.<group>``.

    Raises PluginNotFound listing the available names when ``name`` is unknown.
    """
    eps = _eps(group)
    if name not in eps:
        raise PluginNotFound(f"unknown {group[:-1]} '{name}'; available: {', '.join(sorted(eps)) or '(none)'}")
    return eps[name].load()
