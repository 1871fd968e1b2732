"""Checks of option values that every command shares: one message shape, with a "did you mean" hint."""

from __future__ import annotations

import difflib
import os
from typing import Iterable, TypeVar

from fmrikit.errors import InputError

T = TypeVar("T")


def check_option(name: str, value: T, allowed: Iterable[T], *, path: str | os.PathLike | None = None) -> T:
    """Return ``value`` if it is one of ``allowed``; else raise one line naming the closest choice.

    Parameters
    ----------
    name : str
        What the value is, e.g. ``"--method"`` or ``"feature extractor"``.
    value
    allowed : iterable
        The accepted values.
    path : path-like, optional
        The file the value comes from.

    Raises
    ------
    InputError
        ``unknown <name>; did you mean 'x'? (expected a, b, c, got 'y')``.
    """
    allowed = list(allowed)
    if value in allowed:
        return value
    choices = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(f"unknown {name}{hint}", path=path, expected=", ".join(choices), found=repr(value))
