"""Progress display: a Rich bar with rate and ETA on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressReporter:
    """``advance(n, errors=k)`` as work completes; ``close()`` at the end.

    On a TTY this draws a Rich progress bar; when output is redirected (CI, logs) it prints one
    plain line roughly every ``every_s`` seconds, so logs stay readable.
    """

    def __init__(self, total: int, description: str = "items", *, enabled: bool = True,
                 stream: TextIO | None = None, every_s: float = 5.0):
        self.total, self.description = total, description
        self.done = self.errors = 0
        self.note = ""  # e.g. "workers 3/4" on a Ray run: shown after the counts
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.every_s = every_s
        self.t0 = self._last = time.monotonic()
        self._rich = None
        if enabled and self.stream.isatty():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            from rich.console import Console

            self._rich = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[rate]:.1f}/s"), TextColumn("errors {task.fields[errors]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                console=Console(file=self.stream), transient=False,
            )
            self._task = self._rich.add_task(description, total=total, rate=0.0, errors=0, note="")
            self._rich.start()

    def advance(self, n: int = 1, errors: int = 0) -> None:
        self.done += n
        self.errors += errors
        if not self.enabled:
            return
        now = time.monotonic()
        rate = self.done / max(now - self.t0, 1e-9)
        if self._rich is not None:
            self._rich.update(self._task, advance=n, rate=rate, errors=self.errors, note=self.note)
        elif now - self._last >= self.every_s or self.done == self.total:
            self._last = now
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            print(f"{self.description}: {self.done}/{self.total} ({rate:.1f}/s, errors {self.errors}, "
                  f"ETA {eta:.0f}s{', ' + self.note if self.note else ''})", file=self.stream, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
