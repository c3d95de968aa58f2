"""Error types users see: each names the file, line, field or setting at fault."""

from __future__ import annotations


class AiriskError(Exception):
    """Base class for errors that the CLI prints as one clear message (no traceback)."""


class ConfigError(AiriskError):
    """A configuration value, policy or spec is wrong; the message names the field."""


class DataError(AiriskError):
    """A dataset file is malformed; the message names the file, line and field."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = path, line, field
        where = str(path) if path else ""
        if line is not None:
            where += f":{line}" if where else f"line {line}"
        if field:
            where += f" field '{field}'" if where else f"field '{field}'"
        super().__init__(f"{where}: {message}" if where else message)


class DatasetNotFound(AiriskError):
    """No local copy of a dataset and no way to download it."""


class PluginNotFound(AiriskError):
    """An unknown system/judge/mutator/attack name; the message lists the available ones."""


class PreflightError(AiriskError):
    """A system under test cannot be reached or refuses our credentials."""


class InputNotFound(AiriskError):
    """A named input (file, database) does not exist; reading it must not silently create an empty one."""
