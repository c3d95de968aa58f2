"""``python -m airisk.cli``: the same as the ``airisk`` command."""

from airisk.cli import main

main()
