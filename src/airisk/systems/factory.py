"""Build a system from a spec: ``name:key=value,key=value`` or a dict ``{"type": name, ...}``.

Values are read as JSON when they parse (numbers, booleans, lists), otherwise as strings, so
``openai:model=llama3,base_url=http://localhost:11434/v1,temperature=0.7`` does what it says.
"""

from __future__ import annotations

import json
from typing import Any

from airisk import plugins
from airisk.errors import ConfigError
from airisk.systems.base import System


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``name:k=v,k=v`` into the name and a parameter dict."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"empty system name in spec {spec!r}")
    params: dict[str, Any] = {}
    if rest.strip():
        for part in _split_params(rest):
            if "=" not in part:
                raise ConfigError(f"system spec {spec!r}: expected key=value, got {part!r}")
            key, _, value = part.partition("=")
            params[key.strip()] = _value(value.strip())
    return name, params


def _split_params(rest: str) -> list[str]:
    # Commas inside brackets/braces (JSON values) do not separate parameters.
    parts, depth, cur = [], 0, []
    for ch in rest:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def make_system(spec: str | dict[str, Any] | System) -> System:
    """A System from a spec string, a config dict, or an existing System (returned as is)."""
    if isinstance(spec, System):
        return spec
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("type", None) or params.pop("name", None)
        if not name:
            raise ConfigError("system config needs a 'type' field (openai, replay, python, hf, ...)")
    else:
        name, params = parse_spec(spec)
    cls = plugins.load("systems", name)
    try:
        return cls(**params)
    except (TypeError, ValueError, OverflowError) as e:  # a plugin's own conversion of a bad value
        raise ConfigError(f"system '{name}': {e}") from None
