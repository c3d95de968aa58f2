"""Build a judge from a spec string: ``name`` or ``name:key=value,key=value``.

The name is looked up in the ``airisk.judges`` entry-point group, so third-party judges work the
same way as ours. Examples::

    offline
    rubric:model=gpt-4o-mini,api_key_env=OPENAI_API_KEY
    llamaguard:model=meta-llama/Llama-Guard-3-8B,base_url=http://localhost:8000/v1,variant=3
    ensemble:members=offline+rubric,strategy=majority,rubric.model=gpt-4o-mini
"""

from __future__ import annotations

from typing import Any

from airisk import plugins
from airisk.errors import ConfigError
from airisk.judges.base import Judge
from airisk.spec import Spec, build, parse


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:k=v,k2=v2"`` -> ``("name", {"k": "v", "k2": "v2"})`` (grammar: :mod:`airisk.spec`)."""
    sp = parse(spec, what="judge")
    return sp.name, sp.params


def make_judge(spec: str | dict[str, Any] | Judge, **overrides: Any) -> Judge:
    """A judge instance from a spec string, a dict ``{"name": ..., **params}``, or a Judge (returned as is).

    Parameters are checked against the judge's constructor: unknown ones fail listing the accepted
    ones, and values take the declared types (see :mod:`airisk.spec`).
    """
    if isinstance(spec, Judge):
        return spec
    if isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("name", None) or params.pop("judge", None)
        if not name:
            raise ConfigError("judge spec dict needs a 'name'")
        sp = Spec(name=name, params=params)
    else:
        sp = parse(spec, what="judge")
    return build(plugins.load("judges", sp.name), sp, what="judge", overrides=overrides)
