"""Build a judge from a spec string: ``name`` or ``name:key=value,key=value``.

The name is looked up in the ``airisk.judges`` entry-point group, so third-party judges work the
same way as ours. Examples::

    offline
    rubric:model=gpt-4o-mini,api_key_env=OPENAI_API_KEY
    llamaguard:model=meta-llama/Llama-Guard-3-8B,base_url=http://localhost:8000/v1,variant=3
    ensemble:members=offline+rubric,strategy=majority,rubric.model=gpt-4o-mini
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from airisk import plugins
from airisk.errors import ConfigError
from airisk.judges.base import Judge

_KEY = re.compile(r"^[A-Za-z_][\w.\-]*$")


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"name:k=v,k2=v2"`` -> ``("name", {"k": "v", "k2": "v2"})``; values stay strings."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("judge spec is empty; expected 'name' or 'name:key=value,...'")
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z_][\w\-]*", name):
        raise ConfigError(f"judge spec {spec!r}: bad judge name {name!r}")
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not _KEY.match(key):
            raise ConfigError(f"judge spec {spec!r}: expected key=value, got {part!r}")
        if key in params:
            raise ConfigError(f"judge spec {spec!r}: parameter {key!r} given twice")
        params[key] = value.strip()
    return name, params


def make_judge(spec: str | dict[str, Any] | Judge, **overrides: Any) -> Judge:
    """A judge instance from a spec string, a dict ``{"name": ..., **params}``, or a Judge (returned as is)."""
    if isinstance(spec, Judge):
        return spec
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("name", None) or params.pop("judge", None)
        if not name:
            raise ConfigError("judge spec dict needs a 'name'")
    else:
        name, params = parse_spec(spec)
    params.update(overrides)
    cls = plugins.load("judges", name)
    try:
        sig = inspect.signature(cls)
        accepts_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        unknown = [k for k in params if k not in sig.parameters] if not accepts_kw else []
    except (TypeError, ValueError):
        unknown = []
        sig = None
    if unknown:
        allowed = [p for p in sig.parameters if p not in ("self", "args", "kwargs")] if sig else []
        raise ConfigError(f"judge '{name}': unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(allowed) or '(none)'}")
    try:
        return cls(**params)
    except TypeError as e:
        m = re.search(r"unexpected keyword argument '([^']+)'", str(e))
        if m:
            raise ConfigError(f"judge '{name}': unknown parameter {m.group(1)!r}") from e
        raise ConfigError(f"judge '{name}': {e}") from e
