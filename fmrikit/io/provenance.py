"""Provenance: run ids, input checksums, package versions and JSON sidecars."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, BinaryIO

from fmrikit._version import __version__

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
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
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

    Returns
    -------
    dict
        The sidecar's content.
    """
    record = {"Description": f"fmrikit {command}", "command": command, "seed": seed, "parameters": parameters,
              "outputs": outputs or [], **provenance_record(inputs, run_id)}
    if extra:
        record.update(extra)
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
