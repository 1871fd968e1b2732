"""Progress bars for long work (rich; off when stderr is not a terminal): one per loop, or one per training run
with the run's ETA and the current loss."""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def _console():
    from rich.console import Console

    return Console(stderr=True)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a rich progress bar (elapsed time and ETA) on a terminal.

    Parameters
    ----------
    items : iterable
    description : str
        Label shown left of the bar.
    total : int, optional
        Number of items, if ``items`` has no length.
    """
    from rich.progress import track as rich_track

    console = _console()
    yield from rich_track(items, description=description, total=total, console=console,
                          disable=not console.is_terminal)


class RunProgress:
    """One bar over every step of a training run: steps done, elapsed time, the run's ETA and a status text
    (epoch and current loss)."""

    def __init__(self, progress, task):
        self._progress, self._task = progress, task

    def advance(self, steps: int = 1, status: str | None = None) -> None:
        """Count ``steps`` more steps; show ``status`` beside the bar."""
        fields = {} if status is None else {"status": status}
        self._progress.update(self._task, advance=steps, **fields)

    def step(self, epoch: int, epochs: int, loss: float) -> None:
        """Count one training step of ``epoch`` (1-based) of ``epochs``, whose mean loss so far is ``loss``."""
        self.advance(status=f"epoch {epoch}/{epochs}  loss {loss:.4g}")


@contextlib.contextmanager
def run_progress(total: int, description: str) -> Iterator[RunProgress]:
    """A :class:`RunProgress` of ``total`` steps, shown while the block runs (and left on screen after it).

    Parameters
    ----------
    total : int
        Steps of the whole run (every remaining epoch).
    description : str
        Label shown left of the bar.
    """
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = _console()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        yield RunProgress(progress, progress.add_task(description, total=total, status=""))
