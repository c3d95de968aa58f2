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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from airisk.errors import ConfigError

SECRET_PARAM_NAMES = {"api_key", "apikey", "key", "token", "password", "secret", "authorization"}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    system: str | dict[str, Any]
    judge: str | None = None
    limit: int | None = Field(default=None, gt=0)
    hazards: list[str] | None = None
    personas: list[str] | None = None
    locales: list[str] | None = None
    concurrency: int = Field(default=16, gt=0, le=4096)
    rps: float | None = Field(default=None, gt=0)
    max_retries: int = Field(default=5, ge=0)
    skip_bad: bool = False
    label: str | None = None
    seed: int = 0
    shuffle: bool = False

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
