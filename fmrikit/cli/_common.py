"""What every command shares: error display, logging set-up, common options."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Callable, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from fmrikit.errors import FmrikitError, InputError

T = TypeVar("T")
err_console = Console(stderr=True)
out_console = Console(soft_wrap=True)


class _State:
    debug = False


state = _State()

RootOption = Annotated[Optional[Path], typer.Option(
    "--root", envvar="FMRIKIT_ROOT", show_envvar=True,
    help="Project folder for outputs [default: ./derivatives/fmrikit].")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]


def setup_logging(verbose: int, debug: bool) -> None:
    """Send the ``fmrikit`` logger to stderr through rich."""
    from rich.logging import RichHandler

    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    log = logging.getLogger("fmrikit")
    log.handlers = [h for h in log.handlers if not isinstance(h, RichHandler)]
    log.addHandler(RichHandler(console=err_console, show_time=False, show_path=False))
    log.setLevel(level)
    state.debug = debug


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run a library function; show an :class:`FmrikitError` as one red line and exit.

    Exit status 2 for bad input (:class:`InputError`), 1 for other failures.
    """
    try:
        return fn(*args, **kwargs)
    except FmrikitError as exc:
        if state.debug:
            raise
        err_console.print(f"[bold red]error:[/] {escape(exc.one_line())}", soft_wrap=True)
        raise typer.Exit(2 if isinstance(exc, InputError) else 1) from None


def int_list(text: Optional[str]) -> Optional[list[int]]:
    """Parse ``1,2,3`` into a list of ints (None stays None)."""
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None
