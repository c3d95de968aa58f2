"""Options of the distributed executor, validated at the boundary (CLI flags, YAML, Python API)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Executor = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = ("local", "ray")


class RayOptions(BaseModel):
    """How a run is spread over Ray.

    ``address``: ``None`` starts a private local Ray instance for the run (laptop mode); ``"auto"``
    joins the cluster this machine belongs to (after ``ray start``); ``"ray://host:10001"`` or
    ``"host:6379"`` joins a remote one.
    ``workers``: shard tasks (or judge actors) working at the same time; default: the cluster's CPUs.
    ``shard_size``: items per shard: the unit of scheduling and of retry after a worker dies.
    ``max_retries``: how often Ray re-runs a shard whose worker process or node died (bounded, and
    each retry is counted in the run's error counts as ``ray_retry``).
    """

    model_config = ConfigDict(extra="forbid")

    address: str | None = None
    workers: int | None = Field(default=None, gt=0, le=4096)
    shard_size: int = Field(default=100, gt=0)
    max_retries: int = Field(default=3, ge=0, le=100)
    num_cpus: int | None = Field(default=None, gt=0, description="CPUs of a local instance started for the run")


def check_executor(name: str) -> str:
    """``name`` if it is a known executor, else a one-line error listing the choices."""
    from airisk.errors import ConfigError

    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
    return name


def ray_options(executor: str, address: str | None = None, workers: int | None = None) -> RayOptions:
    """The executor flags of a command (``--executor``, ``--ray-address``, ``--workers``), checked together:
    the Ray flags without ``--executor ray`` are a usage error, not silently ignored."""
    from airisk.errors import ConfigError

    check_executor(executor)
    if executor != "ray" and (address or workers):
        raise ConfigError("--ray-address and --workers need --executor ray")
    return RayOptions(address=address, workers=workers)
