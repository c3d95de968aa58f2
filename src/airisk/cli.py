"""The ``airisk`` command line: a thin layer that parses options and calls the library.

Each capability contributes its commands through a ``register(app)`` function in its own
``<package>/cli.py`` module, listed in COMMAND_MODULES, so this file stays small.
"""

from __future__ import annotations

import importlib
import sys

import typer

from airisk.errors import AiriskError

app = typer.Typer(
    name="airisk",
    help="Assess and control the risk of AI systems.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

COMMAND_MODULES = (
    "airisk.engine.cli",
    "airisk.datasets.cli",
    "airisk.taxonomy.cli",
    "airisk.judges.cli",
    "airisk.scoring.cli",
    "airisk.reports.cli",
    "airisk.guard.cli",
    "airisk.attacks.cli",
    "airisk.agents.cli",
    "airisk.governance.cli",
    "airisk.viewer.cli",
)

for _mod in COMMAND_MODULES:
    importlib.import_module(_mod).register(app)


def main() -> None:
    """Console entry point: errors users can fix are printed as one line, exit code 2."""
    try:
        app()
    except AiriskError as e:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        sys.exit(2)


if __name__ == "__main__":
    main()
