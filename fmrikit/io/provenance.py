"""Provenance: run ids, input checksums, package versions and JSON sidecars."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from fmrikit._version import __version__
from fmrikit.errors import DataValueError, MissingInputError, RunError
from fmrikit.project import project_root

#: Packages whose versions every sidecar records (those installed).
TRACKED_PACKAGES = ("numpy", "scipy", "h5py", "nibabel", "nilearn", "pycortex", "torch",
                    "diffusers", "transformers", "scikit-learn", "scikit-image", "safetensors")

#: Files larger than this are fingerprinted (size + first and last MiB), not hashed whole,
#: unless their digest was computed while they were read anyway.
FULL_HASH_LIMIT = 256 * 2**20


def new_run_id() -> str:
    """A unique id for one run: UTC timestamp plus a random suffix."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def package_versions() -> dict[str, str]:
    """Versions of Python, fmrikit and the tracked packages that are installed."""
    out = {"python": platform.python_version(), "fmrikit": __version__}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


class HashingReader:
    """A read-only file wrapper that feeds every byte read through SHA-256.

    Wrap the raw file under a decompressor to checksum a file while streaming it.
    """

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hash.update(data)
        return data

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        self._hash.update(memoryview(buffer)[:n])
        return n

    def readable(self) -> bool:
        return True

    def hexdigest_to_end(self) -> str:
        """Read whatever is left of the file, then return the digest of the whole file."""
        while self.read(2**20):
            pass
        return self._hash.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Full SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def file_checksum(path: str | os.PathLike) -> dict[str, Any]:
    """Checksum of a file for a sidecar.

    Files up to :data:`FULL_HASH_LIMIT` bytes get a full SHA-256; larger files a
    fingerprint (SHA-256 of size, first and last MiB), labelled as such.

    Returns
    -------
    dict
        ``{"path", "bytes", "sha256"}`` or ``{"path", "bytes", "sha256_fingerprint"}``.
    """
    path = Path(path)
    size = path.stat().st_size
    if size <= FULL_HASH_LIMIT:
        return {"path": str(path.resolve()), "bytes": size, "sha256": sha256_file(path)}
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(str(size).encode())
        h.update(f.read(2**20))
        f.seek(max(0, size - 2**20))
        h.update(f.read(2**20))
    return {"path": str(path.resolve()), "bytes": size, "sha256_fingerprint": h.hexdigest()}


@contextlib.contextmanager
def checksum_of_read(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The :func:`file_checksum` of a file that the block reads, so a run records the data it actually read.

    Raises
    ------
    RunError
        The file was replaced or changed while the block read it (another run rewrote it).
    """
    before = _identity(path)
    record = file_checksum(path)
    yield record
    if _identity(path) != before:
        raise RunError("the file changed while it was read (another run rewrote it?); run again", path=path,
                       expected="the same file from start to end", found="a replaced or modified file")


def _identity(path: str | os.PathLike) -> tuple[int, ...]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


#: Key of a model record (or sidecar) that says where the project folder is, seen from the record's folder: the
#: record's paths inside the project are stored relative to the project folder, so a moved or copied project
#: reads its own files.
PROJECT_KEY = "project_root"


def portable_path(path: str | os.PathLike, root=None) -> str:
    """A path as a record stores it: relative to the project folder when inside it (``/`` separators), else
    absolute."""
    path, home = Path(os.path.abspath(path)), Path(os.path.abspath(project_root(root)))
    try:
        return path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def portable_source(value: str | os.PathLike, root=None) -> str:
    """A model source as a record stores it: a folder as :func:`portable_path`, a Hugging Face id as given."""
    return portable_path(value, root) if Path(value).exists() else str(value)


def resolve_source(value: str, folder: str | os.PathLike, record: dict[str, Any]) -> str:
    """A stored :func:`portable_source`: the folder it names now, else the id as stored."""
    path = resolve_recorded(value, folder, record)
    return str(path) if path.exists() else value


def project_pointer(folder: str | os.PathLike, root=None) -> str:
    """Where the project folder is seen from ``folder``, the final folder of a record (its :data:`PROJECT_KEY`)."""
    return Path(os.path.relpath(os.path.abspath(project_root(root)), os.path.abspath(folder))).as_posix()


def resolve_recorded(value: str | os.PathLike, folder: str | os.PathLike, record: dict[str, Any]) -> Path:
    """A path stored in ``record``, which lives in ``folder`` now: absolute as stored; relative to the project
    folder the record points to (:data:`PROJECT_KEY`); a record without a pointer keeps its path as stored."""
    path = Path(value)
    if path.is_absolute() or PROJECT_KEY not in record:
        return path
    return Path(os.path.normpath(Path(folder) / record[PROJECT_KEY] / path))


def recorded_file(value: str | os.PathLike, digest: str | None, folder: str | os.PathLike, record: dict[str, Any],
                  what: str) -> Path:
    """A file a model was made from, found where its record says (:func:`resolve_recorded`) and unchanged since.

    Parameters
    ----------
    value : path-like
        The path as stored.
    digest : str or None
        The SHA-256 (or fingerprint) stored with it; None skips the comparison (records of older versions).
    folder : path-like
        The model folder, where the record (``config.json``) lives now.
    record : dict
    what : str
        What the file is, for the message (``"the model's dataset"``).

    Raises
    ------
    MissingInputError
        Nothing there (a project moved without the file?).
    DataValueError
        Another file there.
    """
    path, record_path = resolve_recorded(value, folder, record), Path(folder) / "config.json"
    if not path.is_file():
        raise MissingInputError(f"{what} is not where the model's record says (moved?)", path=path,
                                expected=f"the file named in {record_path}", found="no file")
    if digest is not None and checksum_digest(file_checksum(path)) != digest:
        raise DataValueError(f"{what} changed since the model was made (replaced, preprocessed again, or a moved "
                             "project's other file?)", path=path, expected=f"sha256 {digest[:12]}... as recorded in "
                             f"{record_path}", found=f"sha256 {checksum_digest(file_checksum(path))[:12]}...")
    return path


def checksum_digest(record: dict[str, Any]) -> str:
    """The digest of a :func:`file_checksum` record: its full SHA-256, else its fingerprint."""
    return record.get("sha256") or record["sha256_fingerprint"]


def provenance_record(inputs: list[dict[str, Any]], run_id: str | None = None) -> dict[str, Any]:
    """Run id, time, command line, package versions and input checksums of a run."""
    return {"run_id": run_id or new_run_id(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "argv": list(sys.argv), "versions": package_versions(), "inputs": inputs}


def write_sidecar(path: str | os.PathLike, *, command: str, parameters: dict[str, Any],
                  inputs: list[dict[str, Any]], seed: int | None = None,
                  run_id: str | None = None, outputs: list[str] | None = None,
                  extra: dict[str, Any] | None = None, root=None,
                  folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write the JSON sidecar of an output.

    Parameters
    ----------
    path : path-like
        Where to write the ``.json``.
    command : str
        The fmrikit command or library function that produced the output.
    parameters : dict
        Every parameter of the run, JSON-serialisable.
    inputs : list of dict
        Input files with their checksums (see :func:`file_checksum`).
    seed : int, optional
        Random seed of the run.
    run_id : str, optional
        Run id; a new one if omitted.
    outputs : list of str, optional
        File names written by the run.
    extra : dict, optional
        Further results to record (counts, timings).
    root : path-like, optional
        The project folder: the inputs' paths are then stored relative to it (:func:`portable_path`), with
        :data:`PROJECT_KEY` seen from ``folder``.
    folder : path-like, optional
        Where the sidecar ends up when ``path`` is staged (default: the folder of ``path``).

    Returns
    -------
    dict
        The sidecar's content.
    """
    if root is not None:
        inputs = [dict(i, path=portable_path(i["path"], root)) if "path" in i else i for i in inputs]
    record = {"Description": f"fmrikit {command}", "command": command, "seed": seed, "parameters": parameters,
              "outputs": outputs or [], **provenance_record(inputs, run_id)}
    if extra:
        record.update(extra)
    if root is not None:
        record[PROJECT_KEY] = project_pointer(folder if folder is not None else Path(path).parent, root)
    write_json(path, record)
    return record


def write_json(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Write a JSON document (paths and arrays converted)."""
    Path(path).write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
