"""One progress bar for every long command (``sweep``, ``search``, ``serve --rate-search``,
``calibrate``, long ``serve`` runs, the TCO Monte Carlo).

:func:`progress` is a context manager yielding ``advance(n=1)`` — a callable the API functions
take as their optional ``progress`` argument — or None when the bar would be noise: under
``--json`` (``enabled=False``) or when stderr is not a terminal (rich's
``Console(stderr=True).is_terminal``). The bar is drawn on stderr, with an ETA, and cleared when
done; with ``delay_s`` it appears only once the work has lasted that long (a short run stays
silent). Callers pass ``None`` through unchanged, so the computation never depends on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Advance", "is_terminal", "progress"]

Advance = Callable[..., None]  # advance(n=1): n more units of work are done


def is_terminal() -> bool:
    """Whether stderr is a terminal (where a bar can be drawn)."""
    from rich.console import Console

    return bool(Console(stderr=True).is_terminal)


@contextmanager
def progress(
    total: float | None, description: str, *, enabled: bool = True, delay_s: float = 0.0
) -> Iterator[Advance | None]:
    """``advance(n=1)`` for a bar of ``total`` units (None: no known total), or None when
    silent (``enabled`` False or stderr not a terminal)."""
    if not enabled or not is_terminal():
        yield None
        return
    bar = _Bar(total, description, delay_s)
    try:
        yield bar.advance
    finally:
        bar.stop()


class _Bar:
    """A rich bar on stderr, started on the first advance after ``delay_s``."""

    def __init__(self, total: float | None, description: str, delay_s: float):
        self.total, self.description, self.delay_s = total, description, delay_s
        self.t0 = time.perf_counter()
        self.done = 0.0
        self._p = None

    def advance(self, n: float = 1) -> None:
        self.done += n
        if self._p is None and time.perf_counter() - self.t0 >= self.delay_s:
            self._start()
        if self._p is not None:
            self._p.update(self._task, completed=self.done)

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn(), TimeRemainingColumn(),
                           console=Console(stderr=True), transient=True)  # fmt: skip
        self._p.start()
        self._task = self._p.add_task(self.description, total=self.total, completed=self.done)

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
