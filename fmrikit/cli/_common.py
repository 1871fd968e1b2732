"""What every command shares: error display, logging set-up, the command-group classes."""

from __future__ import annotations

import logging
import sys
from typing import Callable, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from fmrikit.errors import FmrikitError, InputError

T = TypeVar("T")
err_console = Console(stderr=True)
out_console = Console(soft_wrap=True)


class _State:
    debug = False


state = _State()


def setup_logging(verbose: int, debug: bool) -> None:
    """Send the ``fmrikit`` logger to stderr through rich."""
    from rich.logging import RichHandler

    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose == 1 else logging.WARNING
    log = logging.getLogger("fmrikit")
    log.handlers = [h for h in log.handlers if not isinstance(h, RichHandler)]
    log.addHandler(RichHandler(console=err_console, show_time=False, show_path=False))
    log.setLevel(level)
    state.debug = debug


def error_line(text: str) -> None:
    """Print one red ``error:`` line on stderr."""
    err_console.print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)


def warning_line(text: str) -> None:
    """Print one yellow ``warning:`` line on stderr."""
    err_console.print(f"[bold yellow]warning:[/] {escape(text)}", soft_wrap=True)


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run a library function; show an :class:`FmrikitError` as one red line and exit.

    Exit status 2 for bad input (:class:`InputError`), 1 for other failures.
    """
    try:
        return fn(*args, **kwargs)
    except FmrikitError as exc:
        if state.debug:
            raise
        error_line(exc.one_line())
        raise typer.Exit(2 if isinstance(exc, InputError) else 1) from None


def int_list(text: Optional[str]) -> Optional[list[int]]:
    """Parse ``1,2,3`` into a list of ints (None stays None)."""
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def sessions_list(text: Optional[str]) -> Optional[list[int]]:
    """Parse ``--sessions 1-3,5`` (None: every session)."""
    from fmrikit.data.preprocess import parse_sessions

    return call(parse_sessions, text) if text else None


class FmrikitGroup(TyperGroup):
    """The top-level command: a usage error (unknown option, value out of range) is one red line, exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
        from typer.exceptions import Abort

        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except ClickException as exc:
            where = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) is not None else ""
            error_line(exc.format_message() + where)
            sys.exit(exc.exit_code)
        except Abort:
            error_line("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class ModelGroup(TyperGroup):
    """A command with one subcommand per model (``pretrain decoder|encoder|...``).

    The forms in use before the subcommands keep working: ``--model X`` anywhere selects subcommand ``X``,
    and options without a subcommand go to :attr:`default_model`.
    """

    default_model = "decoder"

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = list(args)
        model = None
        for i, arg in enumerate(args):
            if arg == "--model" and i + 1 < len(args):
                model = args[i + 1]
                del args[i:i + 2]
                break
            if arg.startswith("--model="):
                model = arg.split("=", 1)[1]
                del args[i]
                break
        if model is not None:
            args.insert(0, model)
        elif args and args[0] not in self.commands and args[0] not in self.get_help_option_names(ctx):
            args.insert(0, self.default_model)
        return super().parse_args(ctx, args)
