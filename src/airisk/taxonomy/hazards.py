"""The AILuminate v1.0 hazard taxonomy: hazard codes, groups and personas, read from package data."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, Field

from airisk.errors import ConfigError

Group = Literal["physical", "non_physical", "contextual"]


class Hazard(BaseModel):
    """One hazard category, identified by the exact code used in AILuminate prompt files.

    ``key`` is the ModelBench grading key (``spc_fin`` -> ``spc``); ``llama_guard`` lists the
    Llama Guard 3/4 categories it corresponds to; ``crosswalks`` maps every shipped framework id
    (see :mod:`airisk.taxonomy.crosswalks`) to the target ids this hazard corresponds to.
    """

    code: str
    key: str
    name: str
    group: Group
    definition: str
    llama_guard: list[str] = Field(default_factory=list)
    crosswalks: dict[str, list[str]] = Field(default_factory=dict)
    name_note: str | None = None


class Persona(BaseModel):
    """A kind of user a prompt represents (AILuminate's personas)."""

    code: str
    description: str


def _read_yaml(*parts: str) -> dict:
    return yaml.safe_load(resources.files("airisk.taxonomy").joinpath("data", *parts).read_text(encoding="utf-8"))


@cache
def _base() -> dict:
    return _read_yaml("ailuminate_v1.yaml")


def _unknown(code: object) -> ConfigError:
    return ConfigError(f"unknown hazard code {code!r}; valid codes: {', '.join(_base_codes())}")


def _base_codes() -> list[str]:
    return [h["code"] for h in _base()["hazards"]]
