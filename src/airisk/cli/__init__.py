"""The ``airisk`` command line: a thin layer that parses options and calls the library.

Each command group is one module of this package with a ``register(app)`` function, listed in
COMMAND_MODULES. The modules import only Typer at top level and everything heavy (the store,
SciPy, torch, the HTTP clients) inside the command functions, so ``airisk --help`` and every
``--help`` below it start without loading the library.

Exit codes (documented in docs/cli.md):

====  =====================================================================================
0     success (``gate``: pass)
1     the command ran and found a problem (``gate``: yellow; ``audit verify``: tampered)
2     ``gate``: red / fail
3     ``gate``: could not evaluate (unknown run, no judgments, partial run, bad policy)
64    usage error: unknown command or option, bad option value, bad spec (EX_USAGE)
65    malformed input data: the message names file, line and field (EX_DATAERR)
66    input not found: dataset, run or file (EX_NOINPUT)
69    the system under test cannot be reached or refuses our credentials (EX_UNAVAILABLE)
130   interrupted (Ctrl-C)
====  =====================================================================================
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from airisk.cli._common import FastGroup
from airisk.errors import AiriskError

EXIT_USAGE = 64

# Click's UsageError, whether Typer uses the click package or its own vendored copy (typer >= 0.2x).
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

# Error class name -> exit code; looked up along the exception's MRO so subclasses inherit their
# parent's code. Names rather than classes keep this table free of imports (RunNotFound lives in
# the store, which pulls SQLAlchemy).
EXIT_CODES: dict[str, int] = {
    "ConfigError": EXIT_USAGE,
    "PluginNotFound": EXIT_USAGE,
    "DataError": 65,
    "DatasetNotFound": 66,
    "RunNotFound": 66,
    "InputNotFound": 66,
    "PreflightError": 69,
    "AiriskError": 1,
}

COMMAND_MODULES = (
    "airisk.cli.run",
    "airisk.cli.datasets",
    "airisk.cli.hazards",
    "airisk.cli.judge",
    "airisk.cli.gate",
    "airisk.cli.report",
    "airisk.cli.demo",
    "airisk.cli.guard",
    "airisk.cli.redteam",
    "airisk.cli.agent",
    "airisk.cli.simulate",
    "airisk.cli.govern",
    "airisk.cli.view",
)


def exit_code_for(error: BaseException) -> int:
    """The documented exit code for an error the CLI reports as one line."""
    for cls in type(error).__mro__:
        if cls.__name__ in EXIT_CODES:
            return EXIT_CODES[cls.__name__]
    return 1


def _print_version(value: bool) -> None:
    if value:
        from airisk import __version__

        typer.echo(f"airisk {__version__}")
        raise typer.Exit()


def _completion(kind: str) -> Any:
    def callback(ctx: Any, param: Any, value: bool) -> Any:
        if not value or ctx.resilient_parsing:
            return value
        from typer import completion

        completion.completion_init()
        return (completion.install_callback if kind == "install" else completion.show_callback)(ctx, param, value)

    return callback


class _RootGroup(FastGroup):
    """Root command group: usage errors (unknown option, bad value) exit 64, not click's 2.

    Exit 2 belongs to ``airisk gate`` (red), so CI must be able to tell "the gate failed" from
    "the command line was mistyped". Subcommand parsing happens inside ``invoke``, so both hooks
    together cover every level.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as e:
            e.exit_code = EXIT_USAGE  # type: ignore[attr-defined]
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as e:
            e.exit_code = EXIT_USAGE  # type: ignore[attr-defined]
            raise


app = typer.Typer(
    name="airisk",
    cls=_RootGroup,
    help="Assess and control the risk of AI systems. Exit codes: see docs/cli.md (64 = usage error).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Typer's own completion options default to None, which sends every invocation through its
    # Pydantic-based coercion (+0.1 s CPU); ours below are False-default flags, which skip it.
    add_completion=False,
    # Plain Click help: Rich's help formatter alone costs more import time than the whole 0.3 s budget.
    rich_markup_mode=None,
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the airisk version and exit."),
    install_completion: bool = typer.Option(False, "--install-completion", callback=_completion("install"),
                                            is_eager=True, expose_value=False,
                                            help="Install shell completion for the current shell."),
    show_completion: bool = typer.Option(False, "--show-completion", callback=_completion("show"), is_eager=True,
                                         expose_value=False, help="Print the completion script for the current shell."),
) -> None:
    """Assess and control the risk of AI systems."""


for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def main() -> None:
    """Console entry point: errors users can fix are printed as one line with a documented exit code."""
    try:
        app()
    except AiriskError as e:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        sys.exit(exit_code_for(e))


if __name__ == "__main__":
    main()
