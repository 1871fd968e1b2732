"""Checks of option values that every command shares: one message shape, a "did you mean" hint for choices, one
range check (NaN and infinities refused) for numbers."""

from __future__ import annotations

import difflib
import math
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


def check_number(name: str, value: float, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, path: str | os.PathLike | None = None) -> float:
    """Return ``value`` if it is a finite number in the range; else raise one line naming ``name``.

    Parameters
    ----------
    name : str
        What the value is, e.g. ``"--lr"``.
    value : float
    low, high : float, optional
        Bounds (inclusive unless ``low_open`` / ``high_open``).
    path : path-like, optional
        The file the value comes from.

    Raises
    ------
    InputError
        ``--lr must be a finite number > 0 (expected > 0, got nan)``; NaN and infinities are always refused.
    """
    parts = ([f"{'>' if low_open else '>='} {low:g}"] if low is not None else []) + \
        ([f"{'<' if high_open else '<='} {high:g}"] if high is not None else [])
    expected = " and ".join(parts) or "a finite number"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number", path=path, expected=expected, found=repr(value)) from None
    bad = not math.isfinite(number) or (low is not None and (number <= low if low_open else number < low)) or \
        (high is not None and (number >= high if high_open else number > high))
    if bad:
        raise InputError(f"{name} out of range", path=path, expected=expected, found=f"{value!r}")
    return value
