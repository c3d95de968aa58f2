"""Build a system from a spec: ``name:key=value,key=value`` or a dict ``{"type": name, ...}``.

The spec grammar (typed values, duplicate and unknown keys rejected) is :mod:`airisk.spec`, so
``openai:model=llama3,base_url=http://localhost:11434/v1,temperature=0.7`` does what it says.
"""

from __future__ import annotations

from typing import Any

from airisk import plugins
from airisk.errors import ConfigError
from airisk.spec import Spec, build, parse
from airisk.systems.base import System


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``name:k=v,k=v`` into the name and a typed parameter dict (grammar: :mod:`airisk.spec`)."""
    sp = parse(spec, what="system")
    return sp.name, sp.params


def make_system(spec: str | dict[str, Any] | System) -> System:
    """A System from a spec string, a config dict, or an existing System (returned as is)."""
    if isinstance(spec, System):
        return spec
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("type", None) or params.pop("name", None)
        if not name:
            raise ConfigError("system config needs a 'type' field (openai, replay, python, hf, ...)")
        sp = Spec(name=name, params=params)
    else:
        sp = parse(spec, what="system")
    return build(plugins.load("systems", sp.name), sp, what="system")
