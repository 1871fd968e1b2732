"""What every command shares: error display, logging set-up, the command-group classes."""

from __future__ import annotations

import errno
import logging
import sys
from typing import Callable, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from fmrikit.errors import FmrikitError, InputError, RunInterrupted

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


#: OS errors that are the machine's state, never a bug: shown as one line (exit 1) like a run failure.
_OS_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
#: Exit status of an interrupted command (128 + SIGINT), as shells report Ctrl-C.
INTERRUPTED = 130
def warning_line(text: str) -> None:
    """Print one yellow ``warning:`` line on stderr."""
    err_console.print(f"[bold yellow]warning:[/] {escape(text)}", soft_wrap=True)


def call(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run a library function; show an :class:`FmrikitError` as one red line and exit.

    Exit status 2 for bad input (:class:`InputError`), 130 when interrupted (Ctrl-C), 1 for other failures (and
    for a full disk or a folder without write permission).
    """
    try:
        return fn(*args, **kwargs)
    except FmrikitError as exc:
        if state.debug:
            raise
        error_line(exc.one_line())
        code = INTERRUPTED if isinstance(exc, RunInterrupted) else 2 if isinstance(exc, InputError) else 1
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        if state.debug:
            raise
        error_line("interrupted")
        raise typer.Exit(INTERRUPTED) from None
    except OSError as exc:
        if state.debug or exc.errno not in _OS_ERRNOS:
            raise
        error_line(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror))
        raise typer.Exit(1) from None


def int_list(text: Optional[str], option: str) -> Optional[list[int]]:
    """Parse ``1,2,3``, the value of ``option``, into a list of ints (None stays None)."""
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint=option) from None


def sessions_list(text: Optional[str]) -> Optional[list[int]]:
    """Parse ``--sessions 1-3,5`` (None: every session)."""
    from fmrikit.data.preprocess import parse_sessions

    return call(parse_sessions, text) if text else None


class FmrikitGroup(TyperGroup):
    """The top-level command: a usage error (unknown option, value out of range) is one red line, exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        ClickException, NoArgsIsHelpError, Abort = _click_errors()
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except ClickException as exc:
            where = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) is not None else ""
            error_line(exc.format_message() + where)
            sys.exit(exc.exit_code)
        except (Abort, KeyboardInterrupt):
            error_line("interrupted")
            sys.exit(INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)


def _click_errors() -> tuple[type, type, type]:
    """ClickException, NoArgsIsHelpError and Abort of the click that Typer runs on (vendored since Typer 0.2x,
    the ``click`` package before)."""
    import typer.core
    import typer.exceptions

    click = getattr(typer.core, "_click", None) or typer.core.click
    errors = click.exceptions
    no_args = getattr(errors, "NoArgsIsHelpError", None) or type("NoArgsIsHelpError", (Exception,), {})
    return errors.ClickException, no_args, getattr(errors, "Abort", None) or typer.exceptions.Abort


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
