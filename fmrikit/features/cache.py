"""Image features of a dataset's stimuli, computed once per stimulus source and extractor.

Cache file: ``<project root>/features/<extractor>-<key[:16]>.h5``, ``key`` the SHA-256 of the JSON of
the stimulus source (resolved path, HDF5 dataset name, and the brick's size and mtime_ns, or for a folder
a digest of its mapped files' names, sizes and mtimes), the extractor's :meth:`config` and the kind.
One file per kind:

``stim_id``   int64 (n,), sorted unique 0-based stimulus ids
``pooled``    float32 (n, D), or
``patches``   float16 (n, L, P, C)
attributes    ``kind``, ``config`` and ``source`` (JSON)

A call computes only the ids not cached yet, then replaces the file atomically (written under a
temporary name in the same folder, then renamed), so concurrent readers (DDP ranks) never see a partial
file. An extractor whose two kinds come from one network pass (:attr:`FeatureExtractor.one_pass`) fills both
kinds' files whenever it computes either, so the decoder's pooled targets and the encoder's patches cost
one pass over the images, whichever command runs first.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fmrikit.data.dataset import DatasetInfo, read_stimuli
from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError
from fmrikit.features.base import FeatureExtractor
from fmrikit.io.hdf5 import open_h5
from fmrikit.project import project_root
from fmrikit.checks import check_option

KINDS = {"pooled": np.float32, "patches": np.float16}
#: Images read and featurised per step.
CHUNK = 256


def dataset_features(info: DatasetInfo, stim_ids: np.ndarray, extractor: FeatureExtractor, kind: str = "pooled", *,
                     root: str | os.PathLike | None = None, batch_size: int = 32, device: str = "auto") -> np.ndarray:
    """Features of a dataset's stimuli, from the cache, computing what is missing.

    Parameters
    ----------
    info : DatasetInfo
        Dataset whose stimulus source (:func:`fmrikit.data.dataset.read_stimuli`) holds the images.
    stim_ids : ndarray of int, shape (n,)
        0-based stimulus ids, any order, repeats allowed.
    extractor : FeatureExtractor
        See :func:`fmrikit.features.registry.get_extractor`.
    kind : {"pooled", "patches"}
    root : path-like, optional
        Project folder (:func:`fmrikit.project.project_root`); the cache is under ``features/``.
    batch_size : int
        Images per forward pass.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...

    Returns
    -------
    ndarray
        ``pooled``: float32 (n, D); ``patches``: float16 (n, L, P, C), as stored; rows in ``stim_ids`` order.

    Raises
    ------
    InputError
        Unknown kind, or no ids.
    MissingInputError
        The stimulus source is gone or lacks an id.
    CorruptFileError
        The cache file is unreadable or was written for another configuration (delete it).
    DataValueError
        Patch features beyond the float16 range.
    """
    check_option("feature kind", kind, KINDS)
    stim_ids = np.asarray(stim_ids)
    if stim_ids.ndim != 1 or not stim_ids.size or not np.issubdtype(stim_ids.dtype, np.integer):
        raise InputError("stimulus ids must be a non-empty 1-D integer array", expected="shape (n,) int",
                         found=f"shape {stim_ids.shape} {stim_ids.dtype}")
    unique, inverse = np.unique(stim_ids.astype(np.int64), return_inverse=True)
    source = _source_record(info)
    config = json.dumps(extractor.config(), sort_keys=True)
    path = cache_path(info, extractor, kind, root=root, source=source)
    missing = np.setdiff1d(unique, _cached_ids(path, kind, config))
    if missing.size:
        kinds = list(KINDS) if extractor.one_pass else [kind]
        files = {k: cache_path(info, extractor, k, root=root, source=source) for k in kinds}
        _extend(files, info, extractor, missing, json.dumps(source, sort_keys=True), config, batch_size, device)
    with open_h5(path, kind) as f:
        rows = np.searchsorted(f["stim_id"][:], unique)
        return f[kind][rows][inverse]


def cache_path(info: DatasetInfo, extractor: FeatureExtractor, kind: str = "pooled", *,
               root: str | os.PathLike | None = None, source: dict | None = None) -> Path:
    """The cache file of a dataset's stimuli for one extractor and kind (see the module docstring)."""
    record = {"source": source or _source_record(info), "extractor": extractor.config(), "kind": kind}
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    return project_root(root) / "features" / f"{extractor.name}-{key[:16]}.h5"


def _source_record(info: DatasetInfo) -> dict:
    """What identifies the stimulus images: path, dataset name and size/mtime of the files."""
    path = Path(info.stimuli_path).resolve()
    if not info.stimuli_path or not path.exists():
        raise MissingInputError("stimulus images not found", path=info.stimuli_path or info.path,
                                expected="the dataset's stimuli_path (an HDF5 brick or a folder)")
    record = {"stimuli_path": str(path), "dataset": info.stimuli_dataset}
    if info.stimuli_dataset:
        stat = path.stat()
        return {**record, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    with open_h5(info.path, "stimuli/file") as f:
        ids, files = f["stimuli/stim_id"][:].tolist(), f["stimuli/file"].asstr()[:].tolist()
    listing = []
    for i, name in zip(ids, files):
        stat = (path / name).stat() if (path / name).is_file() else None
        listing.append([i, name, stat and stat.st_size, stat and stat.st_mtime_ns])
    return {**record, "files_sha256": hashlib.sha256(json.dumps(listing).encode()).hexdigest()}


def _cached_ids(path: Path, kind: str, config: str) -> np.ndarray:
    """Stimulus ids in a cache file (none if there is no file)."""
    if not path.exists():
        return np.empty(0, dtype=np.int64)
    with open_h5(path, kind) as f:
        if f.attrs.get("config") != config or "stim_id" not in f:
            raise CorruptFileError("feature cache of another configuration; delete it to recompute", path=path,
                                   expected=config, found=str(f.attrs.get("config")))
        return f["stim_id"][:]


def _extend(files: dict[str, Path], info: DatasetInfo, extractor: FeatureExtractor, missing: np.ndarray, source: str,
            config: str, batch_size: int, device: str) -> None:
    """Compute the features of ``missing`` ids (every kind of ``files`` from the same images) and rewrite each
    kind's cache file with them added."""
    import contextlib

    import h5py

    from fmrikit._progress import track
    from fmrikit.io.atomic import staged_outputs

    kinds = list(files)
    with contextlib.ExitStack() as stack:
        outputs = {}
        for kind, path in files.items():
            cached = _cached_ids(path, kind, config)
            ids = np.union1d(cached, missing)
            staged = stack.enter_context(staged_outputs(path.parent, [path.name], overwrite=True))
            out = stack.enter_context(h5py.File(staged[path.name], "w"))
            out.create_dataset("stim_id", data=ids)
            out.attrs.update({"kind": kind, "config": config, "source": source})
            outputs[kind] = {"file": out, "ids": ids, "cached": cached, "rows": np.searchsorted(ids, missing),
                             "ds": None}
        for start in track(range(0, len(missing), CHUNK), f"{extractor.name} {' and '.join(kinds)} features",
                           total=-(-len(missing) // CHUNK)):
            block = slice(start, start + CHUNK)
            images = read_stimuli(info, missing[block])
            if len(kinds) == 2:
                feats = dict(zip(("pooled", "patches"), extractor.pooled_and_patches(
                    images, batch_size=batch_size, device=device)))
            else:
                feats = {kinds[0]: getattr(extractor, kinds[0])(images, batch_size=batch_size, device=device)}
            for kind, o in outputs.items():
                if o["ds"] is None:
                    shape = feats[kind].shape[1:]
                    o["ds"] = o["file"].create_dataset(
                        kind, shape=(len(o["ids"]),) + shape, dtype=KINDS[kind],
                        chunks=(1 if kind == "patches" else min(64, len(o["ids"])),) + shape)
                o["ds"][o["rows"][block]] = _stored(feats[kind], kind)
        for kind, o in outputs.items():
            if o["cached"].size:
                _copy_rows(files[kind], kind, o["ds"], np.searchsorted(o["ids"], o["cached"]))


def _stored(feats: np.ndarray, kind: str) -> np.ndarray:
    """Features in their stored dtype, refusing values float16 cannot hold."""
    if kind == "patches" and np.abs(feats).max() > np.finfo(np.float16).max:
        raise DataValueError("patch features beyond the float16 range", expected="|values| <= 65504",
                             found=f"max {np.abs(feats).max():.4g}")
    return feats.astype(KINDS[kind])


def _copy_rows(path: Path, kind: str, ds, rows: np.ndarray) -> None:
    """Copy every row of the old cache file into ``ds`` at ``rows``."""
    with open_h5(path, kind) as src:
        old = src[kind]
        if old.shape[1:] != ds.shape[1:]:
            raise CorruptFileError("feature cache has another feature shape; delete it to recompute", path=path,
                                   expected=str(ds.shape[1:]), found=str(old.shape[1:]))
        for start in range(0, len(rows), CHUNK):
            ds[rows[start:start + CHUNK]] = old[start:start + CHUNK]
