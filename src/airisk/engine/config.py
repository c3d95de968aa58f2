"""Run configuration: everything that makes a run reproducible, loadable from YAML.

Example ``run.yaml``::

    dataset: ailuminate-demo-en_us      # a catalog name or a path to a JSONL/CSV file
    system:
      type: openai
      model: llama3.1:8b
      base_url: http://localhost:11434/v1
      api_key_env: OLLAMA_API_KEY       # the variable's NAME; keys are never written anywhere
    judge: offline                      # optional
    limit: 200
    hazards: [vcr, cse]
    concurrency: 32
    retry: {max_retries: 3, base_delay: 1.0}

The run stores this config (``StoredRunConfig``: the same fields with the system reduced to its
public parameters, plus ``version``) and ``resume`` reads it back, so a resumed run keeps its
concurrency, rate limit and retry policy. Runs stored before versioning (``version`` 1, with a
top-level ``max_retries`` and no ``retry``) still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from airisk.engine.retry import RetryPolicy
from airisk.errors import ConfigError

RUN_CONFIG_VERSION = 2
SECRET_PARAM_NAMES = {"api_key", "apikey", "key", "token", "password", "secret", "authorization"}


class RunConfig(BaseModel):
    """Everything that makes a benchmark run reproducible; unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")

    version: int = RUN_CONFIG_VERSION
    dataset: str
    system: str | dict[str, Any]
    judge: str | None = None
    limit: int | None = Field(default=None, gt=0)
    hazards: list[str] | None = None
    personas: list[str] | None = None
    locales: list[str] | None = None
    concurrency: int = Field(default=16, gt=0, le=4096)
    rps: float | None = Field(default=None, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    skip_bad: bool = False
    label: str | None = None
    seed: int = 0
    shuffle: bool = False

    @model_validator(mode="before")
    @classmethod
    def _max_retries(cls, data: Any) -> Any:
        return _fold_max_retries(data)

    @field_validator("system")
    @classmethod
    def _no_secrets(cls, v: str | dict[str, Any]) -> str | dict[str, Any]:
        from airisk.systems.factory import parse_spec

        params = v if isinstance(v, dict) else parse_spec(v)[1]
        bad = sorted(k for k in params if k.lower() in SECRET_PARAM_NAMES)
        if bad:
            raise ValueError(f"system parameter {bad[0]!r} looks like a secret; put the key in an environment "
                             f"variable and pass its name as api_key_env")
        return v


def load_run_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML run config; ``overrides`` (from CLI flags) win. Errors name the file and field."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of settings at the top level")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate_run_config(data, source=str(p))


def validate_run_config(data: dict[str, Any], source: str = "run config") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        raise ConfigError(f"{source}: field '{field}': {err['msg']}") from None


class StoredRunConfig(BaseModel):
    """The config a run stores and ``resume`` reads back (any version; unknown keys are kept).

    Version 1 runs stored ``max_retries`` at the top level and no ``retry``; they load with that
    value in ``retry.max_retries``. Runs of other kinds (red team, agents, demo) store their own
    keys, which are kept as extra fields.
    """

    model_config = ConfigDict(extra="allow")

    version: int = 1
    dataset: str | None = None
    system: dict[str, Any] = Field(default_factory=dict)
    judge: str | None = None
    concurrency: int = Field(default=16, gt=0)
    rps: float | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @model_validator(mode="before")
    @classmethod
    def _max_retries(cls, data: Any) -> Any:
        return _fold_max_retries(data)


def _fold_max_retries(data: Any) -> Any:
    # ``max_retries: N`` (the version-1 field, and the CLI's --max-retries) sets retry.max_retries.
    if isinstance(data, dict) and "max_retries" in data:
        data = dict(data)
        n = data.pop("max_retries")
        if n is not None:
            data["retry"] = {**dict(data.get("retry") or {}), "max_retries": n}
    return data


def stored_config(cfg: RunConfig, system_params: dict[str, Any]) -> dict[str, Any]:
    """The JSON a run records: the config with the system replaced by its public parameters."""
    return {**cfg.model_dump(mode="json", exclude={"system"}, exclude_none=True), "system": system_params}


def read_stored_config(raw: dict[str, Any] | None, run_id: str = "") -> StoredRunConfig:
    """Parse a run's stored config (old or new); a corrupt one names the run and field."""
    try:
        return StoredRunConfig.model_validate(raw or {})
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        raise ConfigError(f"run {run_id}: stored config field '{field}': {err['msg']}") from None
