"""The flatmap cache of a preprocessed dataset: every trial's flatmap, built once, streamed in blocks.

Cache file ``<subject_dir>/<stem>_flatmap-<size>.h5`` (see :func:`fmrikit.project.flatmap_path`)
--------------------------------------------------------------------------------------------------
``flatmaps``               float16 (n_trials, size, size), chunks (1, size, size), dataset order
``trials/stim_id``         int64 (n_trials,), copied from the preprocessed dataset
``trials/session``         int16 (n_trials,)
``trials/shared``          bool (n_trials,)
``trials/index_in_session`` int64 (n_trials,), when the source has it
``mapping/``               the :class:`FlatmapMapping` (see :func:`write_mapping`)
root attributes            ``source``, ``source_checksum``, ``size``, ``subject``, ``roi``,
                           ``pycortex_subject``, ``pycortex_xfm``, ``fmrikit_version``
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmrikit.data.flatmaps.operator import FlatmapMapping, check_int, flatmap_mapping, read_mapping, write_mapping
from fmrikit.errors import CorruptFileError, DataValueError, MissingInputError
from fmrikit.io.hdf5 import read_rows
from fmrikit.io.provenance import checksum_digest
from fmrikit.project import flatmap_path, preproc_betas_path, subject_label

log = logging.getLogger("fmrikit")

#: Cache format version; a cache written by another version is rebuilt.
FORMAT_VERSION = 1

#: How a surface dataset's flatmaps are made (its sidecar's parameters).
_MESH_RECORD = {"mesh": "fsaverage5 flat patches of nilearn, both hemispheres, fixed visual crop (mm): "
                        "fmrikit.io.fsaverage.visual_crop", "interpolation": "barycentric on the flat triangles, "
                "3 x 3 samples per pixel", "mask": "pixels with half their weight on dataset vertices"}

#: Trials projected per block when building a cache: about this many float32 values in memory.
_BLOCK_VALUES = 2**24


def flatmap_dataset(subject: int, *, root: str | os.PathLike | None = None, roi: str = "nsdgeneral",
                    size: int = 256, pycortex_subject: str | None = None, pycortex_xfm: str | None = None,
                    overwrite: bool = False) -> Path:
    """The flatmap images of a preprocessed dataset, built once and cached next to it.

    The cache is rebuilt (and the rebuild logged) when it is missing, unreadable or stale: the source dataset
    changed (checksum), or the size or pycortex subject / transform differ. It is written under a temporary
    name and renamed into place, with a JSON sidecar; betas are projected in blocks of trials.

    Parameters
    ----------
    subject : int
        1-based subject number.
    root : path-like, optional
        Project folder (see :func:`fmrikit.project.project_root`).
    roi : str
        Voxel selection of the preprocessed dataset.
    size : int
        Side of the images (pixels).
    pycortex_subject, pycortex_xfm : str, optional
        Default the dataset's own.
    overwrite : bool
        Rebuild even an up-to-date cache.

    Returns
    -------
    Path
        The cache (see the module's docstring for its contents).

    Raises
    ------
    MissingInputError
        No preprocessed dataset, or no pycortex subject / transform.
    """
    from fmrikit.data.dataset import read_info
    from fmrikit.io.provenance import file_checksum

    size = check_int(size, "size", 1)
    source = preproc_betas_path(root, subject, roi)
    if not source.is_file():
        raise MissingInputError("preprocessed dataset not found", path=source,
                                expected=f"run `fmrikit preprocess --subject {subject}` first")
    out = flatmap_path(root, subject, roi, size)
    checksum = file_checksum(source)
    info = read_info(source)
    wanted = {"source_checksum": checksum_digest(checksum), "size": size, "format_version": FORMAT_VERSION}
    for key, value in (("pycortex_subject", pycortex_subject or info.pycortex_subject),
                       ("pycortex_xfm", pycortex_xfm or info.pycortex_xfm)):
        if value:  # a dataset without them accepts the cache's, built with them passed explicitly
            wanted[key] = value
    if out.exists() and not overwrite:
        stale = _stale(out, wanted)
        if not stale:
            return out
        log.info("%s: rebuilding the flatmap cache (%s)", out, stale)
    _build(out, source, info, checksum, size, roi, pycortex_subject, pycortex_xfm)
    return out


def _stale(path: Path, wanted: dict) -> str:
    """Why a cache is stale ('' when it is up to date)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = {k: f.attrs.get(k) for k in wanted}
            shape = f["flatmaps"].shape if "flatmaps" in f else None
    except OSError:
        return "unreadable"
    if shape is None:
        return "no flatmaps"
    for key, value in wanted.items():
        have = attrs[key]
        have = have.decode() if isinstance(have, bytes) else have
        if have is None or (str(have) != str(value)):
            return f"{key} {have!r} != {value!r}"
    return ""


def _build(out: Path, source: Path, info, checksum: dict, size: int, roi: str, pycortex_subject, pycortex_xfm):
    import h5py

    from fmrikit._progress import track
    from fmrikit._version import __version__
    from fmrikit.io.atomic import staged_outputs
    from fmrikit.io.provenance import new_run_id, write_sidecar

    mapping = flatmap_mapping(info, size, pycortex_subject=pycortex_subject, pycortex_xfm=pycortex_xfm)
    n = info.n_trials
    block = int(max(1, min(n, _BLOCK_VALUES // (size * size + info.n_voxels))))
    sidecar = out.with_suffix(".json").name
    with staged_outputs(out.parent, [out.name, sidecar], overwrite=True) as staged:
        with h5py.File(staged[out.name], "w") as f, h5py.File(source, "r") as src:
            ds = f.create_dataset("flatmaps", (n, size, size), dtype=np.float16,
                                  chunks=(1, size, size) if n else None)
            betas = src["betas"]
            for start in track(range(0, n, block), f"flatmaps {subject_label(info.subject)}",
                               total=-(-n // block)):
                ds[start:start + block] = mapping.to_flatmaps(betas[start:start + block])
            for name in ("trials/stim_id", "trials/session", "trials/shared", "trials/index_in_session"):
                if name in src:
                    f.create_dataset(name, data=src[name][:])
            write_mapping(f.create_group("mapping"), mapping)
            f.attrs.update({"source": str(source.resolve()), "source_checksum": checksum_digest(checksum), "size": size,
                            "subject": int(info.subject), "roi": roi, "format_version": FORMAT_VERSION,
                            "pycortex_subject": mapping.pycortex_subject, "pycortex_xfm": mapping.pycortex_xfm,
                            "fmrikit_version": __version__})
        write_sidecar(staged[sidecar], command="flatmaps", run_id=new_run_id(), inputs=[checksum],
                      outputs=[out.name],
                      parameters={"subject": int(info.subject), "roi": roi, "size": size, "dtype": "float16",
                                  **(_MESH_RECORD if mapping.mesh else {
                                      "pycortex_subject": mapping.pycortex_subject,
                                      "pycortex_xfm": mapping.pycortex_xfm, "flatmap_height": mapping.height,
                                      "margin": 0, "resampler": "Pillow BILINEAR (antialiased triangle filter)"})},
                      extra={"n_trials": int(n), "n_voxels": int(info.n_voxels),
                             "n_mask_pixels": int(mapping.mask.sum()), "bbox": list(mapping.bbox),
                             "n_voxels_unmapped": int(mapping._uncovered.sum())})
    log.info("%s: %d flatmaps of %dx%d written", out, n, size, size)



@dataclass
class FlatmapInfo:
    """A flatmap cache's trial table and mapping (not the images).

    Attributes
    ----------
    path : Path
    subject : int
    size : int
    stim_id : ndarray of int64, shape (n_trials,)
    session : ndarray of int, shape (n_trials,)
    shared : ndarray of bool, shape (n_trials,)
    mapping : FlatmapMapping
    """

    path: Path
    subject: int
    size: int
    stim_id: np.ndarray
    session: np.ndarray
    shared: np.ndarray
    mapping: FlatmapMapping

    @property
    def n_trials(self) -> int:
        return len(self.stim_id)


_REQUIRED = ("flatmaps", "trials/stim_id", "trials/session", "trials/shared", "mapping")


def open_cache(path):
    from fmrikit.io.hdf5 import open_h5

    f = open_h5(path)
    missing = [k for k in _REQUIRED if k not in f]
    if missing:
        f.close()
        raise CorruptFileError("not an fmrikit flatmap cache", path=path, expected="datasets " + ", ".join(_REQUIRED),
                               found=f"missing {missing}")
    return f


def read_flatmap_info(path: str | os.PathLike) -> FlatmapInfo:
    """Read a flatmap cache's trial table, attributes and mapping.

    Raises
    ------
    MissingInputError, CorruptFileError
    """
    with open_cache(path) as f:
        shape = f["flatmaps"].shape
        return FlatmapInfo(path=Path(path), subject=int(f.attrs.get("subject", 0)), size=int(shape[1]),
                           stim_id=f["trials/stim_id"][:].astype(np.int64), session=f["trials/session"][:],
                           shared=f["trials/shared"][:].astype(bool), mapping=read_mapping(f["mapping"]))


def check_rows(rows, n: int, where) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
        raise DataValueError("rows must be a 1-D integer array", path=where, expected="shape (n,) int",
                             found=f"shape {rows.shape} {rows.dtype}")
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise DataValueError("rows out of range", path=where, expected=f"0 to {n - 1}",
                             found=f"{rows.min()} to {rows.max()}")
    return rows


def read_float_rows(ds, rows: np.ndarray) -> np.ndarray:
    """Rows of the float16 flatmaps in the given order, as float32."""

    return read_rows(ds, rows).astype(np.float32)


def read_flatmaps(path: str | os.PathLike, rows: np.ndarray) -> np.ndarray:
    """Read some trials' flatmaps.

    Parameters
    ----------
    path : path-like
        A flatmap cache.
    rows : ndarray of int, shape (n,)
        Trials (dataset rows), any order, repeats allowed.

    Returns
    -------
    ndarray of float32, shape (n, size, size)
        In the order of ``rows``.
    """
    with open_cache(path) as f:
        ds = f["flatmaps"]
        return read_float_rows(ds, check_rows(rows, ds.shape[0], path))


def split_rows(info: FlatmapInfo, sessions: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Training and test rows of a flatmap cache.

    Parameters
    ----------
    info : FlatmapInfo
    sessions : list of int, optional
        1-based sessions of the training trials; default all.

    Returns
    -------
    train_rows : ndarray of int64
        Non-shared trials of ``sessions``.
    shared_rows : ndarray of int64
        Every shared trial.

    Raises
    ------
    MissingInputError
        A session the cache does not hold.
    """
    selected = np.ones(info.n_trials, bool)
    if sessions is not None:
        have = np.unique(info.session)
        absent = sorted(set(int(s) for s in sessions) - set(int(s) for s in have))
        if absent:
            raise MissingInputError("sessions not in the flatmap cache", path=info.path,
                                    expected="sessions " + ", ".join(str(int(s)) for s in have),
                                    found=", ".join(map(str, absent)))
        selected = np.isin(info.session, np.asarray(sessions))
    train = np.nonzero(selected & ~info.shared)[0].astype(np.int64)
    return train, np.nonzero(info.shared)[0].astype(np.int64)


def test_flatmaps(path: str | os.PathLike, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The shared trials' flatmaps, averaged over repeats of each image.

    Parameters
    ----------
    path : path-like
        A flatmap cache.
    block : int
        Images averaged at a time (bounds memory).

    Returns
    -------
    stim_ids : ndarray of int64, shape (n_images,)
        Sorted stimulus ids.
    images : ndarray of float32, shape (n_images, size, size)
    """
    from fmrikit.data.splits import average_repeats

    with open_cache(path) as f:
        ds = f["flatmaps"]
        shared = np.nonzero(f["trials/shared"][:].astype(bool))[0]
        stim = f["trials/stim_id"][:].astype(np.int64)[shared]
        size = ds.shape[1]
        ids = np.unique(stim)
        out = np.empty((len(ids), size, size), np.float32)
        for start in range(0, len(ids), block):
            part = ids[start:start + block]
            sel = np.isin(stim, part)
            got, mean = average_repeats(read_float_rows(ds, shared[sel]).reshape(int(sel.sum()), -1), stim[sel])
            out[start:start + len(part)] = mean.reshape(len(got), size, size)
    return ids, out


test_flatmaps.__test__ = False  # not a pytest test, despite its name
