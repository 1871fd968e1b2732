"""One switchable progress bar for long loops (rich; off when stderr is not a terminal)."""

from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a transient rich progress bar on a terminal.

    Parameters
    ----------
    items : iterable
    description : str
        Label shown left of the bar.
    total : int, optional
        Number of items, if ``items`` has no length.
    """
    from rich.console import Console
    from rich.progress import track as rich_track

    console = Console(stderr=True)
    yield from rich_track(items, description=description, total=total, console=console,
                          transient=True, disable=not console.is_terminal)
