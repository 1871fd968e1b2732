"""The preprocessed dataset every later command reads (``sub-NN_desc-preproc_betas.h5``).

Contract
--------
``betas``            float32 (n_trials, n_voxels), z-scored per session, chronological order
``trials/stim_id``   int64 (n_trials,), 0-based stimulus index (NSD 73k id - 1)
``trials/session``   int16 (n_trials,), 1-based
``trials/shared``    bool (n_trials,), image seen by every subject
``voxels/ijk``       int32 (n_voxels, 3), indices into the source grid
``voxels/ncsnr``     float32 (n_voxels,), optional
root attributes      ``affine`` (4, 4), ``volume_shape`` (3,), ``subject``, ``stimuli_path``,
                     ``stimuli_dataset``, ``pycortex_subject``, ``pycortex_xfm`` (may be empty),
                     ``anatomy`` (picture background on the grid, may be empty), and the conventions
                     (:data:`CONVENTION_ATTRS`): ``sessions``, ``normalisation``, ``planned_repeats``,
                     ``n_test_images``, ``n_test_images_all_repeats``, ``test_stim_ids``;
                     NSD sources also ``nsd_root``, ``space``, ``betas_version``
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, GridMismatchError, MissingInputError
from fmrikit.io.hdf5 import open_h5, read_rows

REQUIRED = ("betas", "trials/stim_id", "trials/session", "trials/shared", "voxels/ijk")
#: Root attributes that record the data conventions (written by ``preprocess``, copied into every sidecar).
CONVENTION_ATTRS = ("sessions", "betas_version", "space", "normalisation", "planned_repeats", "n_test_images",
                    "n_test_images_all_repeats", "test_stim_ids")


def conventions(stim_id: np.ndarray, session: np.ndarray, shared: np.ndarray, *, betas_version: str = "",
                space: str = "", normalisation: str = "", planned_repeats: np.ndarray | None = None) -> dict:
    """The data conventions two labs compare before comparing tables.

    Parameters
    ----------
    stim_id, session, shared : ndarray, shape (n_trials,)
        The dataset's trial tables.
    betas_version, space, normalisation : str
        NSD beta version and grid, and how the betas were normalised ("" when unknown).
    planned_repeats : ndarray of int, shape (n_trials,), optional
        How often the design shows each trial's image over all its sessions (NSD: 3); default the most
        presentations of a shared image in these trials.

    Returns
    -------
    dict
        ``sessions`` (read, sorted), ``betas_version``, ``space``, ``normalisation``, ``planned_repeats``,
        ``n_test_images`` (distinct shared images: the test set), ``n_test_images_all_repeats`` (those shown
        ``planned_repeats`` times in these sessions: 982 over NSD's first 37 sessions, 1000 over 40) and
        ``test_stim_ids`` (sorted, 0-based).
    """
    test, counts = np.unique(np.asarray(stim_id)[np.asarray(shared, bool)], return_counts=True)
    if planned_repeats is None:
        planned = np.full(len(test), counts.max() if len(counts) else 0)
    else:
        first = {int(s): int(r) for s, r in zip(np.asarray(stim_id)[::-1], np.asarray(planned_repeats)[::-1])}
        planned = np.array([first[int(s)] for s in test], dtype=np.int64)
    return {"sessions": sorted(int(v) for v in np.unique(session)), "betas_version": betas_version or None,
            "space": space or None, "normalisation": normalisation or None,
            "planned_repeats": int(planned.max()) if len(planned) else None, "n_test_images": int(len(test)),
            "n_test_images_all_repeats": int((counts >= planned).sum()), "test_stim_ids": test.astype(int).tolist()}


@dataclass(frozen=True)
class DatasetInfo:
    """Everything in a preprocessed dataset except the betas themselves."""

    path: Path
    subject: int
    stim_id: np.ndarray
    session: np.ndarray
    shared: np.ndarray
    ijk: np.ndarray
    affine: np.ndarray
    volume_shape: tuple[int, int, int]
    stimuli_path: str
    stimuli_dataset: str
    pycortex_subject: str
    pycortex_xfm: str
    ncsnr: np.ndarray | None
    nsd_root: str = ""
    space: str = ""
    anatomy: str = ""
    recorded: dict = field(default_factory=dict)

    @property
    def conventions(self) -> dict:
        """The dataset's data conventions (:func:`conventions`), as ``preprocess`` recorded them; the sessions and
        the test stimulus ids are read from the trial tables."""
        record = conventions(self.stim_id, self.session, self.shared, space=self.space,
                             betas_version=self.recorded.get("betas_version", ""),
                             normalisation=self.recorded.get("normalisation", ""))
        for key in ("planned_repeats", "n_test_images_all_repeats"):
            if key in self.recorded:
                record[key] = int(self.recorded[key])
        return record

    @property
    def map_target(self):
        """Where per-voxel maps of this dataset are drawn (:class:`fmrikit.viz.maps.MapTarget`)."""
        from fmrikit.viz.maps import MapTarget

        return MapTarget(tuple(self.volume_shape), np.asarray(self.affine), self.pycortex_subject, self.pycortex_xfm,
                         self.anatomy)

    @property
    def n_trials(self) -> int:
        return len(self.stim_id)

    @property
    def n_voxels(self) -> int:
        return len(self.ijk)


def read_info(path: str | os.PathLike) -> DatasetInfo:
    """Read a preprocessed dataset's trial and voxel tables and attributes (not the betas).

    Raises
    ------
    MissingInputError, CorruptFileError
    """
    with open_h5(path) as f:
        missing = [k for k in REQUIRED if k not in f]
        if missing:
            raise CorruptFileError("not an fmrikit preprocessed dataset", path=path,
                                   expected="datasets " + ", ".join(REQUIRED), found=f"missing {missing}")
        a = f.attrs
        return DatasetInfo(
            path=Path(path), subject=int(a["subject"]),
            stim_id=f["trials/stim_id"][:], session=f["trials/session"][:], shared=f["trials/shared"][:],
            ijk=f["voxels/ijk"][:], affine=np.asarray(a["affine"]),
            volume_shape=tuple(int(v) for v in a["volume_shape"]),
            stimuli_path=str(a.get("stimuli_path", "")), stimuli_dataset=str(a.get("stimuli_dataset", "")),
            pycortex_subject=str(a.get("pycortex_subject", "")), pycortex_xfm=str(a.get("pycortex_xfm", "")),
            ncsnr=f["voxels/ncsnr"][:] if "voxels/ncsnr" in f else None,
            nsd_root=str(a.get("nsd_root", "")), space=str(a.get("space", "")), anatomy=_anatomy(a),
            recorded={k: _attr(a[k]) for k in CONVENTION_ATTRS if k in a},
        )


def _attr(value):
    """An HDF5 attribute as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode()
    return value.tolist() if hasattr(value, "tolist") else value


def _anatomy(attrs) -> str:
    """The dataset's picture background: its ``anatomy`` attribute, else (datasets written before it) the NSD
    tree's reference for the subject and grid, when the tree is still there."""
    if "anatomy" in attrs:
        return str(attrs["anatomy"])
    nsd_root, space = str(attrs.get("nsd_root", "")), str(attrs.get("space", "")) or "func1pt8mm"
    if not nsd_root or not Path(nsd_root, "nsddata").is_dir():
        return ""
    from fmrikit.io.nsd import NSDLayout

    path = NSDLayout(nsd_root).anatomy_path(int(attrs["subject"]), space)
    return str(path) if path is not None else ""


def read_betas(path: str | os.PathLike, trials: np.ndarray | slice | None = None) -> np.ndarray:
    """Read betas of some trials (all by default).

    Parameters
    ----------
    path : path-like
    trials : ndarray of int or bool, or slice, optional
        Trials to read, in dataset order.

    Returns
    -------
    ndarray of float32, shape (n_selected, n_voxels)
    """
    with open_h5(path, "betas") as f:
        ds = f["betas"]
        if trials is None:
            return ds[:]
        if isinstance(trials, slice):
            return ds[trials]
        trials = np.asarray(trials)
        return read_rows(ds, np.nonzero(trials)[0] if trials.dtype == bool else trials)


def voxel_columns(info: DatasetInfo, ijk: np.ndarray) -> np.ndarray:
    """Dataset columns of given voxels (a model's inputs), in their order.

    Parameters
    ----------
    info : DatasetInfo
    ijk : ndarray of int, shape (V, 3)
        Voxels on the dataset's grid.

    Returns
    -------
    ndarray of int64, shape (V,)

    Raises
    ------
    GridMismatchError
        Voxels outside the dataset's grid.
    DataValueError
        Voxels the dataset does not hold.
    """
    from fmrikit.io.nifti import volume_index

    ijk = np.asarray(ijk)
    if len(ijk) and ((ijk.max(0) >= np.asarray(info.volume_shape)) | (ijk.min(0) < 0)).any():
        raise GridMismatchError("voxels fall outside the dataset's grid", path=info.path,
                                expected=f"indices within {tuple(info.volume_shape)}")
    flat_data = volume_index(info.ijk, info.volume_shape)
    flat = volume_index(ijk, info.volume_shape)
    order = np.argsort(flat_data)
    cols = order[np.minimum(np.searchsorted(flat_data, flat, sorter=order), len(order) - 1)]
    missing = int((flat_data[cols] != flat).sum())
    if missing:
        raise DataValueError("the dataset lacks voxels of the model", path=info.path, expected="every model voxel",
                             found=f"{missing} of {len(ijk)} missing")
    return cols.astype(np.int64)


def read_stimuli(info: DatasetInfo, stim_ids: np.ndarray) -> np.ndarray:
    """Read the stimulus images of a dataset.

    The source is the dataset's ``stimuli_path``: an HDF5 brick (dataset ``stimuli_dataset``, row = 0-based
    stimulus id, shape (N, H, W, 3) uint8), or a folder of image files mapped by the dataset's
    ``stimuli/stim_id`` and ``stimuli/file`` tables. Only the rows needed are read.

    Parameters
    ----------
    info : DatasetInfo
    stim_ids : ndarray of int, shape (n,)
        0-based stimulus ids, any order, repeats allowed.

    Returns
    -------
    ndarray of uint8, shape (n, H, W, 3)
        RGB images in the order of ``stim_ids``.

    Raises
    ------
    MissingInputError
        The brick, folder or an image file is gone, or a stimulus id has no image.
    DataValueError
        Ids are not integers, or images are not uint8 RGB or differ in size.
    """
    stim_ids = np.asarray(stim_ids)
    if stim_ids.ndim != 1 or (stim_ids.size and not np.issubdtype(stim_ids.dtype, np.integer)):
        raise DataValueError("stimulus ids must be a 1-D integer array", expected="shape (n,) int",
                             found=f"shape {stim_ids.shape} {stim_ids.dtype}")
    if not info.stimuli_path:
        raise MissingInputError("the dataset names no stimulus images", path=info.path,
                                expected="attribute stimuli_path")
    unique, inverse = np.unique(stim_ids.astype(np.int64), return_inverse=True)  # h5py needs increasing rows
    if info.stimuli_dataset:
        images = _read_brick(Path(info.stimuli_path), info.stimuli_dataset, unique)
    else:
        images = _read_folder(info, unique)
    return images[inverse]


def _read_brick(path: Path, dataset: str, rows: np.ndarray) -> np.ndarray:
    """Rows (sorted, unique) of an HDF5 image brick."""
    with open_h5(path, dataset) as f:
        ds = f[dataset]
        if ds.ndim != 4 or ds.shape[3] != 3 or ds.dtype != np.uint8:
            raise DataValueError("not an RGB image brick", path=path, expected=f"'{dataset}' (N, H, W, 3) uint8",
                                 found=f"{ds.shape} {ds.dtype}")
        bad = rows[(rows < 0) | (rows >= ds.shape[0])]
        if bad.size:
            raise MissingInputError(f"no image for {bad.size} stimulus ids", path=path,
                                    expected=f"ids 0 to {ds.shape[0] - 1} in '{dataset}'", found=f"id {bad[0]}")
        if not rows.size:
            return np.empty((0,) + ds.shape[1:], dtype=np.uint8)
        return ds[rows]


def _read_folder(info: DatasetInfo, ids: np.ndarray) -> np.ndarray:
    """Images (sorted, unique ids) of a folder source, mapped by the dataset's ``stimuli`` tables."""
    from fmrikit.io.images import read_image

    folder = Path(info.stimuli_path)
    if not folder.is_dir():
        raise MissingInputError("stimulus folder not found", path=folder, expected="a folder of images")
    with open_h5(info.path, "stimuli/file") as f:
        known, files = f["stimuli/stim_id"][:], f["stimuli/file"].asstr()[:]
    pos = np.searchsorted(known, ids)
    absent = ids[(pos >= len(known)) | (known[np.minimum(pos, len(known) - 1)] != ids)]
    if absent.size:
        raise MissingInputError(f"no image for {absent.size} stimulus ids", path=info.path,
                                expected="ids listed in stimuli/stim_id", found=f"id {absent[0]}")
    images = []
    for name in files[pos]:
        if not (folder / name).is_file():
            raise MissingInputError("stimulus image not found", path=folder / name, expected="an image file")
        images.append(read_image(folder / name))
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataValueError("stimulus images differ in size", path=folder, expected="one size",
                             found=", ".join(str(s) for s in sorted(shapes)[:3]))
    return np.stack(images) if images else np.empty((0, 0, 0, 3), dtype=np.uint8)
