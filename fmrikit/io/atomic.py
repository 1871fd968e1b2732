"""Outputs written safely: staged under a temporary name and renamed into place only on success, marked as
fmrikit's, never placed over an input, replaced only when fmrikit wrote them, and locked while a run writes them.

A run that fails (bad input, interruption) therefore never leaves a partial output; a killed run leaves a hidden
staging folder and a lock that the next run of the same output removes.

Every command's library function runs in a :func:`run_scope` (the :func:`one_run` decorator) and claims its
outputs first (:func:`claim_outputs`, or :func:`fmrikit.engine.runs.start_run` for a training run): it fails in
the first second when an output is in the way or would land on an input, the project folder or a subject folder,
and it takes a lock per output that the scope releases when the function returns, fails or is interrupted.

Markers: a folder output holds a hidden ``.fmrikit`` file, a file output has a hidden ``.<name>.fmrikit`` beside
it (recording its size and modification time, so a file replaced by hand is no longer taken for fmrikit's). Both
name the *kind* of output (the command that wrote it); ``overwrite`` replaces an output only when its marker
names the same kind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from fmrikit.errors import InputError, OutputBusyError, OutputExistsError, RunInterrupted
from fmrikit.project import project_root

log = logging.getLogger("fmrikit")

#: Marker inside a folder that fmrikit wrote.
MARKER = ".fmrikit"
#: Prefix of the hidden folders outputs are staged in: ``.staging-<name>.<random>`` beside the output.
STAGING_PREFIX = ".staging-"
#: A lock file without a readable owner is taken for a crashed run's after this many seconds.
LOCK_GRACE_S = 10.0

#: Subject folders of the project (``sub-01``...), which no output may replace.
SUBJECT_FOLDER = re.compile(r"sub-[0-9A-Za-z]+")

#: Lock files this process holds now.
_HELD: set[Path] = set()

F = TypeVar("F", bound=Callable[..., Any])


def file_marker(path: str | os.PathLike) -> Path:
    """The marker beside a file output: ``.<name>.fmrikit``."""
    path = Path(path)
    return path.parent / f".{path.name}{MARKER}"


def output_kind(path: str | os.PathLike) -> str | None:
    """The kind of output fmrikit recorded when it wrote ``path``; None if fmrikit did not write it (or it changed
    since)."""
    path = Path(path)
    if path.is_dir():
        return _read_record(path / MARKER).get("kind")
    record = _read_record(file_marker(path))
    try:
        stat = path.stat()
    except OSError:
        return None
    if record.get("bytes") != stat.st_size or record.get("mtime_ns") != stat.st_mtime_ns:
        return None
    return record.get("kind")


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def occupied(path: str | os.PathLike) -> bool:
    """Whether an output path holds something (an empty folder holds nothing)."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        return True
    return path.is_dir() and any(path.iterdir())


def check_replaceable(path: str | os.PathLike, *, kind: str | None, overwrite: bool) -> None:
    """Refuse to write ``path`` where something is in the way.

    Parameters
    ----------
    path : path-like
    kind : str or None
        The kind of output about to be written; None for fmrikit's own caches, which are replaced freely.
    overwrite : bool

    Raises
    ------
    OutputExistsError
        ``path`` holds something and ``overwrite`` is False; or it is not an output of this ``kind`` that
        fmrikit wrote (then it is never replaced).
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise OutputExistsError("output exists already; pass --overwrite to replace it", path=path)
    if kind is None or not occupied(path):  # an empty folder holds nothing to lose
        return
    if path.is_symlink():
        raise OutputExistsError("not replaced: it is a symbolic link, which fmrikit never writes", path=path,
                                expected=f"an output of fmrikit {kind}", found="a symbolic link")
    found = output_kind(path)
    if found != kind:
        raise OutputExistsError(("not replaced: fmrikit did not write it" if found is None else
                                 "not replaced: another kind of output") + "; --overwrite replaces only outputs of "
                                "the same command", path=path, expected=f"an output of fmrikit {kind}",
                                found=f"an output of fmrikit {found}" if found else
                                f"a {'folder' if path.is_dir() else 'file'} without fmrikit's marker")


def check_location(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (),
                   protected: Iterable[tuple[str | os.PathLike, str]] = ()) -> None:
    """Refuse an output that is an input, holds an input, lies inside an input folder, or is (or holds) a protected
    folder.

    Parameters
    ----------
    path : path-like
        The output (file or folder).
    inputs : iterable of path-like
        Files and folders the run reads.
    protected : iterable of (path-like, str)
        Folders no output may be or hold, with what they are (``"the project folder"``).

    Raises
    ------
    InputError
    """
    out = _real(path)
    for folder, what in protected:
        if out == _real(folder) or out in _real(folder).parents:
            raise InputError(f"the output would replace {what}", path=path,
                             expected="a folder of its own for the output", found=f"{what} {folder}")
    for given in inputs:
        source = _real(given)
        if out == source or out in source.parents:
            raise InputError("the output would replace an input" if out == source else "the output folder holds an "
                             "input", path=path, expected="an output apart from the inputs", found=f"input {given}")
        if source in out.parents and Path(given).is_dir():
            raise InputError("the output is inside an input folder", path=path,
                             expected="an output apart from the inputs", found=f"input folder {given}")


def check_writable(path: str | os.PathLike) -> None:
    """Refuse an output whose folder cannot be created or written: a file in the way, or no write permission.

    Raises
    ------
    InputError
    """
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists():
        if parent.is_symlink():  # a dangling link
            raise InputError("cannot create the output folder: a broken link is in the way", path=parent)
        parent = parent.parent
    if not parent.is_dir():
        raise InputError("cannot create the output folder: a file is in the way", path=parent,
                         expected="a folder", found="a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError("folder is not writable", path=parent, expected="write permission",
                         found="read-only")


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


# -- locks -----------------------------------------------------------------------------------------------------

def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of an output: ``.<name>.lock`` beside it."""
    path = Path(path)
    return path.parent / f".{path.name}.lock"


def acquire_lock(path: str | os.PathLike) -> Path:
    """Take the lock of an output (its folder must exist); a lock left by a dead process is taken over.

    Returns
    -------
    Path
        The lock file, to give to :func:`release_lock`.

    Raises
    ------
    OutputBusyError
        A live process holds it.
    """
    lock = lock_path(path)
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_record(lock)
            if _holder_alive(lock, holder):
                raise OutputBusyError("another fmrikit run is writing this output; wait for it to end",
                                      path=path, expected="no other run on the same output",
                                      found=f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since "
                                            f"{holder.get('started', '?')}") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record))
        _HELD.add(lock)
        return lock
    raise OutputBusyError("cannot take the output's lock", path=lock)


def release_lock(lock: Path) -> None:
    """Remove a lock file this process holds."""
    _HELD.discard(lock)
    if _read_record(lock).get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _holder_alive(lock: Path, holder: dict) -> bool:
    if not holder:  # being written right now, or a crash while writing it
        try:
            return time.time() - lock.stat().st_mtime < LOCK_GRACE_S
        except FileNotFoundError:
            return False
    if holder.get("host") != socket.gethostname():
        return True  # cannot tell: never take another machine's lock
    pid = int(holder.get("pid", -1))
    if pid == os.getpid():
        return lock in _HELD
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(path: str | os.PathLike) -> list[Path]:
    """Remove staging folders that a killed run left for this output (call while holding its lock).

    Returns
    -------
    list of Path
        The folders removed.
    """
    path = Path(path)
    prefix = f"{STAGING_PREFIX}{path.name}."
    removed = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            if p.name.startswith(prefix) and "." not in p.name[len(prefix):] and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


# -- staging -------------------------------------------------------------------------------------------------------

def make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the folders created, deepest first."""
    created = []
    current = folder
    while not current.exists():
        created.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def remove_empty(folders: Iterable[Path]) -> None:
    """Remove folders (deepest first) that are empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _mark_file(path: Path, kind: str) -> None:
    stat = path.stat()
    file_marker(path).write_text(json.dumps({"kind": kind, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}))


def _mark_folder(folder: Path, kind: str) -> None:
    (folder / MARKER).write_text(json.dumps({"kind": kind}))


def _replace(stage_path: Path, final: Path) -> None:
    """Move a staged file or folder over ``final`` (an existing folder is removed first: os.replace cannot replace
    a non-empty one)."""
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    os.replace(stage_path, final)


@contextlib.contextmanager
def staged_outputs(out_dir: str | os.PathLike, names: list[str], overwrite: bool = False,
                   kind: str | None = None) -> Iterator[dict[str, Path]]:
    """Stage several outputs in a hidden folder, then move them into ``out_dir`` and mark them.

    Parameters
    ----------
    out_dir : path-like
        Final folder of the outputs (created if needed; removed again if the run fails and it stays empty).
    names : list of str
        File (or folder) names of the outputs.
    overwrite : bool
        Replace outputs that exist already (only fmrikit's of the same ``kind``); otherwise refuse before any work.
    kind : str, optional
        The kind of output (the command), recorded in the markers; None for caches, which are not marked.

    Yields
    ------
    dict of str to Path
        For each name, the temporary path to write to.

    Raises
    ------
    OutputExistsError
        An output is in the way (see :func:`check_replaceable`).
    """
    out_dir = Path(out_dir)
    for n in names:
        check_replaceable(out_dir / n, kind=kind, overwrite=overwrite)
    created = make_dirs(out_dir)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{names[0]}.", dir=out_dir))
    except BaseException:
        remove_empty(created)
        raise
    try:
        yield {n: stage / n for n in names}
        for n in names:
            if (stage / n).is_dir() and kind is not None:
                _mark_folder(stage / n, kind)
        for n in names:
            if (stage / n).exists():
                check_replaceable(out_dir / n, kind=kind, overwrite=overwrite)
                _replace(stage / n, out_dir / n)
                if kind is not None and not (out_dir / n).is_dir():
                    _mark_file(out_dir / n, kind)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        remove_empty(created)


@contextlib.contextmanager
def staged_dir(final_dir: str | os.PathLike, overwrite: bool = False, kind: str | None = None) -> Iterator[Path]:
    """Build a whole folder under a temporary name and rename it to ``final_dir`` on success.

    Parameters
    ----------
    final_dir : path-like
        The folder to create.
    overwrite : bool
        Replace an existing folder (only fmrikit's of the same ``kind``); otherwise refuse before any work.
    kind : str, optional
        The kind of output, recorded in the folder's marker; None for fmrikit's internal folders (checkpoints).

    Yields
    ------
    Path
        The temporary folder to fill.
    """
    final_dir = Path(final_dir)
    check_replaceable(final_dir, kind=kind, overwrite=overwrite)
    created = make_dirs(final_dir.parent)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{final_dir.name}.", dir=final_dir.parent))
    except BaseException:
        remove_empty(created)
        raise
    try:
        yield stage
        if kind is not None:
            _mark_folder(stage, kind)
        check_replaceable(final_dir, kind=kind, overwrite=overwrite)
        _replace(stage, final_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        remove_empty(created)


# -- a command's run ---------------------------------------------------------------------------------------------

class _Scope:
    """What one command's run holds: its locks, the folders it created for them, its checkpoints (with the settings
    a resumed run must keep)."""

    def __init__(self):
        self.locks: list[Path] = []
        self.created: list[Path] = []
        self.checkpoints: dict[Path, Any] = {}

    def close(self) -> None:
        for lock in self.locks:
            release_lock(lock)
        remove_empty(self.created)
        self.locks, self.created = [], []


_SCOPES: list[_Scope] = []


@contextlib.contextmanager
def run_scope() -> Iterator[None]:
    """The extent of one command's run: the locks :func:`claim_outputs` takes inside it are released at its end,
    the folders created only for them removed, and Ctrl-C becomes a :class:`~fmrikit.errors.RunInterrupted` that
    says whether ``--resume`` can continue."""
    scope = _Scope()
    _SCOPES.append(scope)
    try:
        yield
    except KeyboardInterrupt:
        raise _interrupted(scope) from None
    finally:
        _SCOPES.remove(scope)
        scope.close()


def one_run(fn: F) -> F:
    """Run a command's library function in its own :func:`run_scope`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with run_scope():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _current() -> _Scope:
    if not _SCOPES:  # a library call outside any command function: one scope for the process, closed at exit
        import atexit

        scope = _Scope()
        _SCOPES.append(scope)
        atexit.register(scope.close)
    return _SCOPES[-1]


def _interrupted(scope: _Scope) -> RunInterrupted:
    for checkpoint in scope.checkpoints:
        if occupied(checkpoint):
            return RunInterrupted("interrupted; the last epoch's checkpoint is kept: run the same command with "
                                  "--resume to continue", path=checkpoint)
    if scope.checkpoints:
        return RunInterrupted("interrupted before the first epoch ended; nothing was written")
    return RunInterrupted("interrupted; nothing was written")


def claim_outputs(outputs: Iterable[str | os.PathLike], *, kind: str, overwrite: bool, resume: bool = False,
                  inputs: Iterable[str | os.PathLike | None] = (), root=None) -> list[Path]:
    """Check a command's outputs before any work and lock them for the rest of its :func:`run_scope`.

    Parameters
    ----------
    outputs : iterable of path-like
        Everything the run will write (files or folders).
    kind : str
        The kind of output (the command, e.g. ``"pretrain decoder"``): ``overwrite`` replaces only outputs of this
        kind that fmrikit wrote.
    overwrite : bool
    resume : bool
        The run continues an interrupted one: refused when an output exists already (the model is finished).
    inputs : iterable of path-like
        Files and folders the run reads (None and ids that are not paths are skipped): no output may be one of
        them, hold one or lie inside an input folder.
    root : path-like, optional
        Project folder: no output may be it, hold it, or be a subject folder of it.

    Returns
    -------
    list of Path
        The outputs.

    Raises
    ------
    InputError
        An output in a forbidden place, an unwritable folder, or a finished model to resume.
    OutputExistsError
        An output exists and ``overwrite`` is False, or it is not fmrikit's output of this kind.
    OutputBusyError
        Another run is writing an output.
    """
    outputs = [Path(p) for p in outputs]
    inputs = [Path(p) for p in inputs if p is not None and Path(p).exists()]
    home = project_root(root)
    protected = [(home, "the project folder")]
    protected += [(home / out.name, "a subject folder") for out in outputs if SUBJECT_FOLDER.fullmatch(out.name)]
    if home.is_dir():
        protected += [(d, "a subject folder") for d in home.iterdir() if SUBJECT_FOLDER.fullmatch(d.name)]
    for out in outputs:
        check_location(out, inputs=inputs, protected=protected)
        check_writable(out)
        if resume and occupied(out):
            raise InputError("the model is finished; --resume only continues an interrupted run", path=out,
                             expected="--overwrite without --resume to train it again", found="a finished output")
        check_replaceable(out, kind=kind, overwrite=overwrite)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 holds the locks
        return outputs
    scope = _current()
    for out in outputs:
        scope.created += make_dirs(out.parent)
        scope.locks.append(acquire_lock(out))
        for stale in remove_stale_staging(out):
            log.info("removed %s, left by an interrupted run", stale)
    return outputs


def register_checkpoint(folder: Path, settings: Any = None) -> None:
    """Note the checkpoint folder of the current run (and what a resumed run must keep), and remove the staging
    folders a killed run left for it (call after :func:`claim_outputs`)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    _current().checkpoints[Path(folder)] = settings
    for stale in remove_stale_staging(folder):
        log.info("removed %s, left by an interrupted run", stale)


def checkpoint_settings(folder: str | os.PathLike) -> Any:
    """The settings registered for the run that checkpoints into ``folder`` (or a folder above it); None if none."""
    folder = Path(folder)
    for scope in reversed(_SCOPES):
        for checkpoint, settings in scope.checkpoints.items():
            if folder == checkpoint or checkpoint in folder.parents:
                return settings
    return None
