"""Small pieces every command module shares: the ``--db`` option, a lazily created Rich console."""

from __future__ import annotations

from typing import Any, Optional

import typer
from typer.core import TyperGroup

DB_HELP = "SQLAlchemy URL of the store (default: $AIRISK_DB, else SQLite under $AIRISK_HOME or ./.airisk)."


def db_option() -> Any:
    """The one ``--db`` option (env AIRISK_DB) every command that reads or writes runs takes."""
    return typer.Option(None, "--db", envvar="AIRISK_DB", help=DB_HELP)


DB_OPTION: Any = db_option()


def csv(value: Optional[str]) -> Optional[list[str]]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None or empty -> None."""
    return [v.strip() for v in value.split(",") if v.strip()] or None if value else None


class LazyConsole:
    """A Rich console created on first use, so importing a command module does not import Rich."""

    def __init__(self, *, width: int | None = None, min_width: int | None = None) -> None:
        self._kw = {"width": width} if width else {}
        self._min_width = min_width
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kw)
            if self._min_width and not self._console.is_terminal:
                self._console.width = max(self._console.width, self._min_width)  # readable tables in CI logs
        return getattr(self._console, name)


console = LazyConsole()


class FastGroup(TyperGroup):
    """A command group whose ``--help`` option defaults to False instead of None.

    Typer sends a None flag value through its Pydantic-based coercion, which imports Pydantic
    (about 0.1 s) for every group on the command line, even for ``--help``. A bool default skips it.
    """

    def get_help_option(self, ctx: Any) -> Any:
        opt = super().get_help_option(ctx)
        if opt is not None and opt.default is None:
            opt.default = False
        return opt


def group(help: str) -> typer.Typer:
    """A sub-command group (``airisk runs``, ``airisk judge``, ...) with the fast help option."""
    return typer.Typer(cls=FastGroup, help=help, no_args_is_help=True)
