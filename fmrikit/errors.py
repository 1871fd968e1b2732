"""Exceptions raised by fmrikit.

Every error the library raises on purpose is a :class:`FmrikitError`. Subclasses of
:class:`InputError` mean the user's input is wrong (the CLI exits with status 2); a
:class:`RunError` is a failure of the run itself that is not the input's fault, such as a
diverged loss or memory running out (status 1).
"""

from __future__ import annotations

from os import PathLike


class FmrikitError(Exception):
    """Base class of every error fmrikit raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong, in one line.
    path : path-like, optional
        The file or folder the error is about.
    expected, found : str, optional
        What was expected and what was found instead.
    """

    def __init__(self, message: str, path: str | PathLike | None = None,
                 expected: str | None = None, found: str | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.expected = expected
        self.found = found
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The error as one line: ``path: message (expected X, got Y)``."""
        text = f"{self.path}: {self.message}" if self.path else self.message
        parts = [f"expected {self.expected}" if self.expected is not None else "",
                 f"got {self.found}" if self.found is not None else ""]
        if any(parts):
            text += " (" + ", ".join(p for p in parts if p) + ")"
        return text


class InputError(FmrikitError):
    """The user's input (a file, an option, a folder) is not what the command needs."""


class MissingInputError(InputError):
    """A file, subject, session or stimulus the command needs does not exist."""


class CorruptFileError(InputError):
    """A file exists but cannot be read: truncated, corrupt or of the wrong type."""


class GridMismatchError(InputError):
    """Two images that must share a voxel grid differ in shape or affine."""


class DataValueError(InputError):
    """Values in a file are invalid: NaN or Inf, wrong dtype, wrong shape or count."""


class OutputExistsError(InputError):
    """An output exists already and ``overwrite`` was not requested, or it is not fmrikit's to replace."""


class OutputBusyError(InputError):
    """Another run is writing the same output right now."""


class RunError(FmrikitError):
    """The run failed for a reason that is not the input's fault: a diverged loss, memory running out, a
    training that selected or saved nothing."""


class RunInterrupted(RunError):
    """The run was interrupted (Ctrl-C); the CLI exits with status 130."""
