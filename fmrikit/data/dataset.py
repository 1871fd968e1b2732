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

Surface form (columns are vertices of a named mesh instead of voxels of a grid)
``vertices/hemi``    int8 (n_vertices,), 0 left, 1 right
``vertices/index``   int32 (n_vertices,), vertex number within its hemisphere
``vertices/ncsnr``   float32 (n_vertices,), optional
root attributes      ``mesh`` (``fsaverage``), ``n_vertices`` (per hemisphere, icosahedral order: 163842 for
                     fsaverage, 10242 for its first five levels), the others as above without ``affine``,
                     ``volume_shape`` and ``pycortex_*``; ``space`` is ``fsaverage``

In memory (:class:`DatasetInfo`) a surface column is addressed as a voxel is, so models, routes and
:func:`voxel_columns` work on both: ``ijk`` holds (hemi, vertex, 0) on the "grid" (2, n_vertices, 1) and
``affine`` is None. Code that needs a real grid (or a mesh) checks :func:`require_grid` (:func:`require_mesh`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, GridMismatchError, InputError, MissingInputError
from fmrikit.io.hdf5 import INTEGERS, NUMBERS, check_dtype, open_h5, read_rows

REQUIRED = ("betas", "trials/stim_id", "trials/session", "trials/shared")
#: Column tables of the volume and the surface form; a dataset has one of them.
VOLUME_COLUMNS = ("voxels/ijk",)
SURFACE_COLUMNS = ("vertices/hemi", "vertices/index")
#: Root attributes of each form.
VOLUME_ATTRIBUTES = ("subject", "affine", "volume_shape")
SURFACE_ATTRIBUTES = ("subject", "mesh", "n_vertices")
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


def convention_attrs(record: dict) -> dict:
    """A :func:`conventions` record as the HDF5 root attributes ``preprocess`` writes (``betas_version`` and
    ``space`` are written with the source's attributes)."""
    return {"sessions": np.asarray(record["sessions"], np.int64), "normalisation": record["normalisation"] or "",
            "planned_repeats": record["planned_repeats"] or 0, "n_test_images": record["n_test_images"],
            "n_test_images_all_repeats": record["n_test_images_all_repeats"],
            "test_stim_ids": np.asarray(record["test_stim_ids"], np.int64)}


@dataclass(frozen=True)
class DatasetInfo:
    """Everything in a preprocessed dataset except the betas themselves."""

    path: Path
    subject: int
    stim_id: np.ndarray
    session: np.ndarray
    shared: np.ndarray
    ijk: np.ndarray
    affine: np.ndarray | None
    volume_shape: tuple[int, int, int]
    stimuli_path: str
    stimuli_dataset: str
    pycortex_subject: str
    pycortex_xfm: str
    ncsnr: np.ndarray | None
    nsd_root: str = ""
    space: str = ""
    mesh: str = ""
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
        """Columns: voxels, or vertices of a surface dataset."""
        return len(self.ijk)

    @property
    def is_surface(self) -> bool:
        return bool(self.mesh)

    @property
    def hemi(self) -> np.ndarray:
        """Hemisphere of each column of a surface dataset (0 left, 1 right), shape (n_columns,)."""
        return self.ijk[:, 0]

    @property
    def vertex(self) -> np.ndarray:
        """Vertex number of each column of a surface dataset, shape (n_columns,)."""
        return self.ijk[:, 1]

    @property
    def n_mesh_vertices(self) -> int:
        """Vertices per hemisphere of a surface dataset's mesh."""
        return int(self.volume_shape[1])


def read_info(path: str | os.PathLike) -> DatasetInfo:
    """Read a preprocessed dataset's trial and voxel tables and attributes (not the betas).

    Raises
    ------
    MissingInputError, CorruptFileError
    """
    with open_h5(path) as f:
        surface = all(k in f for k in SURFACE_COLUMNS)
        wanted = REQUIRED + (SURFACE_COLUMNS if surface else VOLUME_COLUMNS)
        attributes = SURFACE_ATTRIBUTES if surface else VOLUME_ATTRIBUTES
        missing = [k for k in wanted if k not in f] + [f"attribute {k}" for k in attributes if k not in f.attrs]
        if missing:
            raise CorruptFileError("not an fmrikit preprocessed dataset", path=path,
                                   expected="datasets " + ", ".join(wanted), found=f"missing {missing}")
        _check_tables(f, path, surface)
        a = f.attrs
        if surface:
            n_vertices = int(a["n_vertices"])
            hemi, index = f["vertices/hemi"][:].astype(np.int64), f["vertices/index"][:].astype(np.int64)
            columns = dict(ijk=np.stack([hemi, index, np.zeros_like(index)], 1), affine=None,
                           volume_shape=(2, n_vertices, 1), mesh=str(a["mesh"]),
                           ncsnr=f["vertices/ncsnr"][:] if "vertices/ncsnr" in f else None)
        else:
            columns = dict(ijk=f["voxels/ijk"][:], affine=np.asarray(a["affine"]),
                           volume_shape=tuple(int(v) for v in a["volume_shape"]),
                           ncsnr=f["voxels/ncsnr"][:] if "voxels/ncsnr" in f else None)
        return DatasetInfo(
            path=Path(path), subject=int(a["subject"]),
            stim_id=f["trials/stim_id"][:], session=f["trials/session"][:], shared=f["trials/shared"][:],
            stimuli_path=str(a.get("stimuli_path", "")), stimuli_dataset=str(a.get("stimuli_dataset", "")),
            pycortex_subject=str(a.get("pycortex_subject", "")), pycortex_xfm=str(a.get("pycortex_xfm", "")),
            nsd_root=str(a.get("nsd_root", "")), space=str(a.get("space", "")), anatomy=_anatomy(a),
            recorded={k: _attr(a[k]) for k in CONVENTION_ATTRS if k in a}, **columns,
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
    if "mesh" in attrs:  # a surface dataset: its pictures are drawn on the mesh
        return ""
    nsd_root, space = str(attrs.get("nsd_root", "")), str(attrs.get("space", "")) or "func1pt8mm"
    if not nsd_root or not Path(nsd_root, "nsddata").is_dir():
        return ""
    from fmrikit.io.nsd import NSDLayout

    path = NSDLayout(nsd_root).anatomy_path(int(attrs["subject"]), space)
    return str(path) if path is not None else ""


def require_grid(info: DatasetInfo, what: str) -> None:
    """Refuse a surface dataset where ``what`` needs voxels on a grid.

    Raises
    ------
    InputError
    """
    if info.is_surface:
        raise InputError(f"{what} needs a volume dataset", path=info.path, expected="voxels on a grid",
                         found=f"vertices of the {info.mesh} surface")


def require_mesh(info: DatasetInfo, what: str) -> None:
    """Refuse a volume dataset where ``what`` needs vertices of a mesh.

    Raises
    ------
    InputError
    """
    if not info.is_surface:
        raise InputError(f"{what} needs a surface dataset", path=info.path, expected="vertices of a mesh",
                         found="voxels on a grid")


def _check_tables(f, path, surface: bool) -> None:
    """Refuse tables of the wrong type or length: text or complex values, a column or trial count that disagrees."""
    columns = SURFACE_COLUMNS if surface else VOLUME_COLUMNS
    for name, kinds in (("betas", NUMBERS), ("trials/stim_id", INTEGERS), ("trials/session", INTEGERS),
                        ("trials/shared", "b" + INTEGERS), *((c, INTEGERS) for c in columns)):
        check_dtype(f[name], kinds, path)
    betas = f["betas"].shape
    n_trials = {name: len(f[name]) for name in ("trials/stim_id", "trials/session", "trials/shared")}
    if surface:
        shapes = {c: f[c].shape for c in columns}
        n_columns = shapes[columns[0]][0] if all(len(s) == 1 for s in shapes.values()) and \
            len({s[0] for s in shapes.values()}) == 1 else None
        expected = "betas (n_trials, n_vertices), vertices/hemi and vertices/index (n_vertices,)"
    else:
        shapes = {"voxels/ijk": f["voxels/ijk"].shape}
        ijk = shapes["voxels/ijk"]
        n_columns = ijk[0] if len(ijk) == 2 and ijk[1] == 3 else None
        expected = "betas (n_trials, n_voxels) and voxels/ijk (n_voxels, 3)"
    if len(betas) != 2 or n_columns is None:
        raise DataValueError(f"betas or {' and '.join(columns)} have the wrong shape", path=path, expected=expected,
                             found=f"betas {betas}, " + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    if betas[1] != n_columns:
        raise DataValueError(f"the betas' column count disagrees with {columns[0]}", path=path,
                             expected=f"{n_columns} columns (one per {columns[0]} row)", found=f"{betas[1]}")
    wrong = {k: v for k, v in n_trials.items() if v != betas[0]}
    if wrong:
        name, n = next(iter(wrong.items()))
        raise DataValueError(f"{name} disagrees with the betas' trial count", path=path,
                             expected=f"{betas[0]} rows", found=str(n))
    if len(f["trials/stim_id"]) and f["trials/stim_id"][:].min() < 0:
        raise DataValueError("negative stimulus ids", path=path, expected="0-based ids >= 0",
                             found=str(int(f["trials/stim_id"][:].min())))


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


def voxel_columns(info: DatasetInfo, ijk: np.ndarray, mesh: str | None = None) -> np.ndarray:
    """Dataset columns of given voxels (a model's inputs), in their order.

    Parameters
    ----------
    info : DatasetInfo
    ijk : ndarray of int, shape (V, 3)
        Voxels on the dataset's grid (surface datasets: (hemi, vertex, 0)).
    mesh : str, optional
        The model's mesh ("" for a volume model); checked against the dataset's when given.

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

    if mesh is not None and mesh != info.mesh:
        raise GridMismatchError("the model and the dataset are in different spaces", path=info.path,
                                expected=f"a dataset on {mesh or 'a voxel grid'}",
                                found=f"{info.mesh or 'a voxel grid'}")
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
