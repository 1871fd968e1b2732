"""NeuroPictor-style flatmap images of each trial's betas: a 2D space every subject shares.

A trial's betas (one value per dataset voxel) become a ``size x size`` image: the subject's pycortex
flatmap, cropped to the bounding box of the dataset's voxels (the visual-cortex ROI), resized to
``size x size`` and zero outside the ROI. Subjects with different voxel counts then share one model.

The whole projection is one sparse linear operator, computed once per dataset:

1. pycortex's pixel-to-voxel map (``get_flatcache`` at :data:`fmrikit.viz.flatmap.FLATMAP_HEIGHT`), rows
   restricted to the dataset's voxels and renormalised over them (pycortex's ``nanmean`` rule with every
   other voxel NaN); pixels that sample no dataset voxel are dropped;
2. the pixels placed as ``cortex.quickflat.make_flatmap_image`` places them (image of shape
   (height, width), row 0 at the top) and cropped to the bounding box of the covered pixels (those that
   survive a 3 x 3 binary opening: pycortex maps a few pixels along the flatmap's border and cuts to single
   voxels, which would otherwise stretch the box over the whole flatmap), plus an optional margin;
3. the crop resized to ``size x size`` by a separable resampler written as a sparse matrix: Pillow's
   ``BILINEAR`` filter (a triangle filter on pixel centres; when shrinking its support widens by the
   shrink factor, so it averages the covered area instead of aliasing; edge pixels are clamped);
4. the output mask: pixels whose resized coverage (1 on covered crop pixels, 0 elsewhere) is >= 0.5;
   rows outside it are zero. Inside it, values near the ROI's border are not rescaled by the coverage
   (as resizing a NaN-to-zero flatmap does).

The crop is generally not square and its aspect ratio is **not** kept: both hemispheres side by side are
squeezed into a square, as fMRI-PTE and NeuroPictor resize their flatmaps to 256 x 256.

Cache file ``<subject_dir>/<stem>_flatmap-<size>.h5`` (see :func:`flatmap_path`)
----------------------------------------------------------------------------------
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
from functools import cached_property
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError
from fmrikit.project import dataset_stem, preproc_betas_path, subject_dir, subject_label

log = logging.getLogger("fmrikit")

#: Cache format version; a cache written by another version is rebuilt.
FORMAT_VERSION = 1

#: Trials projected per block when building a cache: about this many float32 values in memory.
_BLOCK_VALUES = 2**24

_MAPPING_ATTRS = ("size", "bbox", "height", "pycortex_subject", "pycortex_xfm")
_MAPPING_DATASETS = ("data", "indices", "indptr", "shape", "mask", "ijk")


# -- the operator -----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class FlatmapMapping:
    """The sparse projection of a dataset's voxels onto ``size x size`` flatmap images.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix of float32, shape (size * size, n_voxels)
        Row ``r * size + c`` holds the weights of pixel (r, c); rows outside ``mask`` are empty.
    mask : ndarray of bool, shape (size, size)
        Pixels inside the ROI.
    ijk : ndarray of int, shape (n_voxels, 3)
        The dataset's voxels (x, y, z), in the order of the betas' columns.
    size : int
        Side of the images (pixels).
    bbox : tuple of int
        ``(row0, row1, col0, col1)`` of the crop (ends exclusive) in pycortex's flatmap image of
        ``height`` rows (row 0 at the top, as ``make_flatmap_image`` returns it).
    height : int
        Height (pixels) of the pycortex flatmap the crop was taken from.
    pycortex_subject, pycortex_xfm : str
        pycortex subject and transform of the mapping.
    """

    matrix: object
    mask: np.ndarray
    ijk: np.ndarray
    size: int
    bbox: tuple[int, int, int, int]
    height: int
    pycortex_subject: str
    pycortex_xfm: str

    @property
    def n_voxels(self) -> int:
        return len(self.ijk)

    def to_flatmaps(self, betas: np.ndarray) -> np.ndarray:
        """Project trials' betas onto flatmap images.

        Parameters
        ----------
        betas : ndarray, shape (n_trials, n_voxels)
            Columns in the order of ``ijk``.

        Returns
        -------
        ndarray of float32, shape (n_trials, size, size)
            Zero outside ``mask``.

        Raises
        ------
        DataValueError
            Wrong shape, or NaN / Inf values.
        """
        betas = np.asarray(betas)
        if betas.ndim != 2 or betas.shape[1] != self.n_voxels:
            raise DataValueError("betas do not match the flatmap mapping", expected=f"shape (n, {self.n_voxels})",
                                 found=f"shape {betas.shape}")
        if not np.isfinite(betas).all():
            raise DataValueError("betas contain NaN or Inf", expected="finite values")
        x = np.ascontiguousarray(betas.T, dtype=np.float32)  # (V, n): CSR times C-ordered columns is fastest
        out = np.asarray(self.matrix @ x)  # (size * size, n)
        return np.ascontiguousarray(out.T).reshape(len(betas), self.size, self.size)

    def to_voxels(self, images: np.ndarray) -> np.ndarray:
        """Map flatmap images back to voxels (the column-normalised transpose of ``matrix``).

        Each voxel gets the mean of the pixels that sample it, weighted by the pixels' weights on it.

        Parameters
        ----------
        images : ndarray, shape (n, size, size)

        Returns
        -------
        ndarray of float32, shape (n, n_voxels)
            NaN for voxels that no pixel samples.

        Raises
        ------
        DataValueError
            Wrong shape.
        """
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (self.size, self.size):
            raise DataValueError("images do not match the flatmap mapping",
                                 expected=f"shape (n, {self.size}, {self.size})", found=f"shape {images.shape}")
        flat = np.ascontiguousarray(images.reshape(len(images), -1).T, dtype=np.float32)  # (P, n)
        out = np.asarray(self._back @ flat).T.astype(np.float32)  # (n, V)
        out[:, self._uncovered] = np.nan
        return out

    @cached_property
    def _back(self):
        """CSR (n_voxels, size * size): the transpose with columns summing to 1."""
        from scipy import sparse

        weight = np.asarray(self.matrix.sum(0), dtype=np.float64).ravel()
        scale = np.divide(1.0, weight, out=np.zeros_like(weight), where=weight > 0)
        return sparse.csr_matrix(sparse.diags(scale) @ self.matrix.T.astype(np.float64)).astype(np.float32)

    @cached_property
    def _uncovered(self) -> np.ndarray:
        return np.asarray(self.matrix.getnnz(0) == 0).ravel()


def flatmap_mapping(info, size: int = 256, *, pycortex_subject: str | None = None,
                    pycortex_xfm: str | None = None, margin: int = 0) -> FlatmapMapping:
    """Build the flatmap projection of a preprocessed dataset's voxels.

    Parameters
    ----------
    info : fmrikit.data.dataset.DatasetInfo
        The dataset (its voxels ``ijk`` and grid ``volume_shape``).
    size : int
        Side of the output images (pixels).
    pycortex_subject, pycortex_xfm : str, optional
        pycortex subject and transform whose reference grid is the dataset's; default the dataset's own.
    margin : int
        Pixels added around the bounding box of the covered pixels (clipped to the flatmap).

    Returns
    -------
    FlatmapMapping

    Raises
    ------
    MissingInputError
        No pycortex subject or transform is known.
    InputError, GridMismatchError
        Unknown pycortex subject or transform, or a transform of another grid.
    DataValueError
        No dataset voxel lands on the flatmap.
    """
    from scipy import sparse

    size, margin = _check_int(size, "size", 1), _check_int(margin, "margin", 0)
    subject, xfm, crop, (h, w), bbox = _crop_operator(info, pycortex_subject, pycortex_xfm, margin)
    from fmrikit.viz.flatmap import FLATMAP_HEIGHT

    resize = sparse.kron(sparse.csr_matrix(resize_weights(h, size)), sparse.csr_matrix(resize_weights(w, size)),
                         format="csr")  # (size * size, h * w)
    covered = (crop.getnnz(1) > 0).astype(np.float64)
    mask = (resize @ covered).reshape(size, size) >= 0.5
    matrix = sparse.diags(mask.ravel().astype(np.float64)) @ (resize @ crop)
    matrix = sparse.csr_matrix(matrix, dtype=np.float32)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return FlatmapMapping(matrix=matrix, mask=mask, ijk=np.asarray(info.ijk).copy(), size=size, bbox=bbox,
                         height=FLATMAP_HEIGHT, pycortex_subject=subject, pycortex_xfm=xfm)


def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """1D resampling weights of Pillow's ``BILINEAR`` filter (antialiased when shrinking).

    Output pixel ``i`` is centred at ``(i + 0.5) * n_in / n_out`` in input pixels; input pixel ``j`` weighs
    ``max(0, 1 - |j + 0.5 - centre| / s)`` with ``s = max(1, n_in / n_out)``; weights are normalised over the
    input (so the edges are clamped).

    Returns
    -------
    ndarray of float64, shape (n_out, n_in)
        Rows sum to 1.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale
    weights = np.clip(1 - np.abs(np.arange(n_in)[None] + 0.5 - centre[:, None]) / support, 0, None)
    return weights / weights.sum(1, keepdims=True)


def _crop_operator(info, pycortex_subject, pycortex_xfm, margin: int):
    """The un-resized stage: dataset voxels to the cropped pycortex flatmap image.

    Returns
    -------
    subject, xfm : str
    crop : scipy.sparse.csr_matrix of float64, shape (h * w, n_voxels)
        Row ``r * w + c`` is pixel (row0 + r, col0 + c) of ``make_flatmap_image``'s (height, width) image;
        rows of pixels sampling no dataset voxel are empty; others sum to 1.
    shape : (h, w)
    bbox : (row0, row1, col0, col1)
    """
    from scipy import sparse

    from fmrikit.viz.flatmap import FLATMAP_HEIGHT, _quiet, check_flatmap_target

    subject = pycortex_subject or info.pycortex_subject
    xfm = pycortex_xfm or info.pycortex_xfm
    if not (subject and xfm):
        raise MissingInputError("no pycortex subject and transform for the flatmap", path=info.path,
                                expected="a dataset preprocessed with --pycortex-subject/--pycortex-xfm, or pass them",
                                found=f"subject {subject!r}, transform {xfm!r}")
    check_flatmap_target(subject, xfm, info.volume_shape)
    from cortex.quickflat import utils as qutils

    with _quiet():
        pixmap = qutils.get_flatcache(subject, xfm, height=FLATMAP_HEIGHT)
        flatmask, _ = qutils.get_flatmask(subject, height=FLATMAP_HEIGHT)
    pixmap = sparse.csr_matrix(pixmap)
    width, height = flatmask.shape
    nx, ny, nz = (int(v) for v in info.volume_shape)
    ijk = np.asarray(info.ijk, dtype=np.int64)
    column = np.full(nx * ny * nz, -1, dtype=np.int64)
    column[ijk[:, 2] * ny * nx + ijk[:, 1] * nx + ijk[:, 0]] = np.arange(len(ijk))
    if pixmap.shape[0] != int(flatmask.sum()) or pixmap.shape[1] != column.size:
        raise DataValueError("pycortex's flatmap cache does not match its mask or grid",
                             path=f"{subject}/{xfm}", expected=f"({int(flatmask.sum())}, {column.size})",
                             found=str(pixmap.shape))

    # restrict to dataset voxels, renormalise each pixel over them (nanmean), drop empty pixels
    pix = np.repeat(np.arange(pixmap.shape[0]), np.diff(pixmap.indptr))
    col = column[pixmap.indices]
    keep = col >= 0
    pix, col, val = pix[keep], col[keep], pixmap.data[keep].astype(np.float64)
    total = np.bincount(pix, weights=val, minlength=pixmap.shape[0])
    val = val / total[pix]
    if not pix.size:
        raise DataValueError("no voxel of the dataset lands on the pycortex flatmap", path=info.path,
                             expected=f"voxels of {subject}/{xfm}'s cortical sheet", found="none")

    # pycortex pixel k is mask[i, j] (C order over (width, height)); the image is mask.T[::-1]
    ii, jj = np.nonzero(flatmask)
    rows, cols = height - 1 - jj[pix], ii[pix]
    row0, row1, col0, col1 = _bounding_box(rows, cols, (height, width), margin)
    inside = (rows >= row0) & (rows < row1) & (cols >= col0) & (cols < col1)
    h, w = row1 - row0, col1 - col0
    crop = sparse.csr_matrix((val[inside], ((rows[inside] - row0) * w + (cols[inside] - col0), col[inside])),
                             shape=(h * w, len(ijk)))
    return subject, xfm, crop, (h, w), (row0, row1, col0, col1)


def _bounding_box(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], margin: int) -> tuple[int, ...]:
    """Bounding box (row0, row1, col0, col1), ends exclusive, of covered pixels, robust to stray pixels.

    Only covered pixels that survive a 3 x 3 binary opening count: pycortex maps some pixels along the
    flatmap's border and cuts to single voxels, and a few such isolated pixels or 1-px lines would stretch
    the box over the whole flatmap. Without any surviving pixel (a tiny ROI), every covered pixel counts.
    """
    from scipy import ndimage

    covered = np.zeros(shape, bool)
    covered[rows, cols] = True
    core = ndimage.binary_opening(covered, structure=np.ones((3, 3), bool))
    r, c = np.nonzero(core if core.any() else covered)
    return (max(int(r.min()) - margin, 0), min(int(r.max()) + 1 + margin, shape[0]),
            max(int(c.min()) - margin, 0), min(int(c.max()) + 1 + margin, shape[1]))


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"invalid flatmap {name}", expected=f"an integer >= {minimum}", found=repr(value))
    return int(value)


# -- HDF5 (de)serialisation of the mapping ---------------------------------------------------

def write_mapping(group, mapping: FlatmapMapping) -> None:
    """Write a mapping into an HDF5 group.

    Datasets ``data``, ``indices``, ``indptr``, ``shape`` (the CSR matrix), ``mask``, ``ijk``; attributes
    ``size``, ``bbox``, ``height``, ``pycortex_subject``, ``pycortex_xfm``.

    Parameters
    ----------
    group : h5py.Group
        An empty group, open for writing.
    mapping : FlatmapMapping
    """
    m = mapping.matrix
    group.create_dataset("data", data=np.asarray(m.data, dtype=np.float32))
    group.create_dataset("indices", data=np.asarray(m.indices, dtype=np.int64))
    group.create_dataset("indptr", data=np.asarray(m.indptr, dtype=np.int64))
    group.create_dataset("shape", data=np.asarray(m.shape, dtype=np.int64))
    group.create_dataset("mask", data=np.asarray(mapping.mask, dtype=bool))
    group.create_dataset("ijk", data=np.asarray(mapping.ijk, dtype=np.int32))
    group.attrs.update({"size": int(mapping.size), "bbox": np.asarray(mapping.bbox, dtype=np.int64),
                        "height": int(mapping.height), "pycortex_subject": mapping.pycortex_subject,
                        "pycortex_xfm": mapping.pycortex_xfm})


def read_mapping(group) -> FlatmapMapping:
    """Read a mapping written by :func:`write_mapping`.

    Parameters
    ----------
    group : h5py.Group

    Returns
    -------
    FlatmapMapping

    Raises
    ------
    CorruptFileError
        Datasets or attributes missing or inconsistent.
    """
    from scipy import sparse

    where = f"{group.file.filename}:{group.name}"
    missing = [k for k in _MAPPING_DATASETS if k not in group] + [k for k in _MAPPING_ATTRS if k not in group.attrs]
    if missing:
        raise CorruptFileError("not a flatmap mapping", path=where,
                               expected="datasets " + ", ".join(_MAPPING_DATASETS) + " and attributes "
                               + ", ".join(_MAPPING_ATTRS), found=f"missing {missing}")
    size = int(group.attrs["size"])
    shape = tuple(int(v) for v in group["shape"][:])
    mask, ijk = group["mask"][:].astype(bool), group["ijk"][:]
    if shape != (size * size, len(ijk)) or mask.shape != (size, size):
        raise CorruptFileError("flatmap mapping of inconsistent shapes", path=where,
                               expected=f"matrix ({size * size}, {len(ijk)}), mask ({size}, {size})",
                               found=f"matrix {shape}, mask {mask.shape}")
    try:
        matrix = sparse.csr_matrix((group["data"][:], group["indices"][:], group["indptr"][:]), shape=shape)
    except ValueError as exc:
        raise CorruptFileError("invalid sparse matrix in the flatmap mapping", path=where, found=str(exc)) from exc
    return FlatmapMapping(matrix=matrix, mask=mask, ijk=ijk, size=size,
                          bbox=tuple(int(v) for v in group.attrs["bbox"]), height=int(group.attrs["height"]),
                          pycortex_subject=str(group.attrs["pycortex_subject"]),
                          pycortex_xfm=str(group.attrs["pycortex_xfm"]))


# -- the per-dataset cache ------------------------------------------------------------------

def flatmap_path(root: str | os.PathLike | None, subject: int, roi: str = "nsdgeneral", size: int = 256) -> Path:
    """The flatmap cache of a subject's dataset: ``<subject_dir>/<dataset stem>_flatmap-<size>.h5``."""
    return subject_dir(root, subject) / f"{dataset_stem(subject, roi)}_flatmap-{int(size)}.h5"


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

    size = _check_int(size, "size", 1)
    source = preproc_betas_path(root, subject, roi)
    if not source.is_file():
        raise MissingInputError("preprocessed dataset not found", path=source,
                                expected=f"run `fmrikit preprocess --subject {subject}` first")
    out = flatmap_path(root, subject, roi, size)
    checksum = file_checksum(source)
    info = read_info(source)
    wanted = {"source_checksum": _digest(checksum), "size": size, "format_version": FORMAT_VERSION}
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


def _digest(checksum: dict) -> str:
    return checksum.get("sha256") or "fingerprint:" + checksum.get("sha256_fingerprint", "")


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
            f.attrs.update({"source": str(source.resolve()), "source_checksum": _digest(checksum), "size": size,
                            "subject": int(info.subject), "roi": roi, "format_version": FORMAT_VERSION,
                            "pycortex_subject": mapping.pycortex_subject, "pycortex_xfm": mapping.pycortex_xfm,
                            "fmrikit_version": __version__})
        write_sidecar(staged[sidecar], command="flatmaps", run_id=new_run_id(), inputs=[checksum],
                      outputs=[out.name],
                      parameters={"subject": int(info.subject), "roi": roi, "size": size,
                                  "pycortex_subject": mapping.pycortex_subject, "pycortex_xfm": mapping.pycortex_xfm,
                                  "flatmap_height": mapping.height, "margin": 0,
                                  "resampler": "Pillow BILINEAR (antialiased triangle filter)", "dtype": "float16"},
                      extra={"n_trials": int(n), "n_voxels": int(info.n_voxels),
                             "n_mask_pixels": int(mapping.mask.sum()), "bbox": list(mapping.bbox),
                             "n_voxels_unmapped": int(mapping._uncovered.sum())})
    log.info("%s: %d flatmaps of %dx%d written", out, n, size, size)


# -- reading ------------------------------------------------------------------------------------

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


def _open_cache(path):
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
    with _open_cache(path) as f:
        shape = f["flatmaps"].shape
        return FlatmapInfo(path=Path(path), subject=int(f.attrs.get("subject", 0)), size=int(shape[1]),
                           stim_id=f["trials/stim_id"][:].astype(np.int64), session=f["trials/session"][:],
                           shared=f["trials/shared"][:].astype(bool), mapping=read_mapping(f["mapping"]))


def _rows(rows, n: int, where) -> np.ndarray:
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
        raise DataValueError("rows must be a 1-D integer array", path=where, expected="shape (n,) int",
                             found=f"shape {rows.shape} {rows.dtype}")
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise DataValueError("rows out of range", path=where, expected=f"0 to {n - 1}",
                             found=f"{rows.min()} to {rows.max()}")
    return rows


def _read_rows(ds, rows: np.ndarray) -> np.ndarray:
    """Rows of the float16 flatmaps in the given order, as float32."""
    from fmrikit.io.hdf5 import read_rows

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
    with _open_cache(path) as f:
        ds = f["flatmaps"]
        return _read_rows(ds, _rows(rows, ds.shape[0], path))


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

    with _open_cache(path) as f:
        ds = f["flatmaps"]
        shared = np.nonzero(f["trials/shared"][:].astype(bool))[0]
        stim = f["trials/stim_id"][:].astype(np.int64)[shared]
        size = ds.shape[1]
        ids = np.unique(stim)
        out = np.empty((len(ids), size, size), np.float32)
        for start in range(0, len(ids), block):
            part = ids[start:start + block]
            sel = np.isin(stim, part)
            got, mean = average_repeats(_read_rows(ds, shared[sel]).reshape(int(sel.sum()), -1), stim[sel])
            out[start:start + len(part)] = mean.reshape(len(got), size, size)
    return ids, out


test_flatmaps.__test__ = False  # not a pytest test, despite its name


class FlatmapStore:
    """Streams the flatmaps of several subjects' caches without loading them.

    Parameters
    ----------
    paths : list of path-like
        Flatmap caches, one per subject; all of one size.
    rows : list of ndarray of int
        The rows of each cache the store serves; the store's index runs over their concatenation.

    Notes
    -----
    The files stay open until :meth:`close` (or the end of a ``with`` block). A store can be pickled (e.g. into
    DataLoader workers) or used after a fork: it reopens its files in the new process.
    """

    def __init__(self, paths: list, rows: list):
        if len(paths) != len(rows):
            raise InputError("one row array per flatmap cache is needed", expected=f"{len(paths)} row arrays",
                             found=str(len(rows)))
        self.paths = [Path(p) for p in paths]
        self._files: list | None = None
        self._pid = None
        stims, sizes, self.rows = [], [], []
        for path, r in zip(self.paths, rows):
            with _open_cache(path) as f:
                n, size = f["flatmaps"].shape[:2]
                stims.append(f["trials/stim_id"][:].astype(np.int64))
            sizes.append(int(size))
            self.rows.append(_rows(r, n, path))
        if len(set(sizes)) > 1:
            raise DataValueError("flatmap caches of different sizes", path=self.paths[sizes.index(sizes[-1])],
                                 expected=f"size {sizes[0]}", found=f"size {sizes[-1]}")
        self.size = sizes[0] if sizes else 0
        self._stim = np.concatenate([s[r] for s, r in zip(stims, self.rows)]) if stims else np.zeros(0, np.int64)
        self._offsets = np.cumsum([0] + [len(r) for r in self.rows])
        self._open()

    def _open(self) -> None:
        self._files = [_open_cache(p) for p in self.paths]
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _index(self, index) -> np.ndarray:
        return _rows(index, len(self), "flatmap store")

    def read(self, index: np.ndarray) -> np.ndarray:
        """Flatmaps of store entries.

        Parameters
        ----------
        index : ndarray of int, shape (n,)
            Positions in the concatenated rows; any order, repeats allowed.

        Returns
        -------
        ndarray of float32, shape (n, size, size)
            In the order of ``index``.
        """
        index = self._index(index)
        if self._files is None or self._pid != os.getpid():
            self._open()
        out = np.empty((len(index), self.size, self.size), np.float32)
        which = self.subject_of(index)
        for s in np.unique(which):
            sel = np.nonzero(which == s)[0]
            local = self.rows[s][index[sel] - self._offsets[s]]
            out[sel] = _read_rows(self._files[s]["flatmaps"], local)
        return out

    def stim_id(self, index: np.ndarray) -> np.ndarray:
        """Stimulus ids (int64, shape (n,)) of store entries."""
        return self._stim[self._index(index)]

    def subject_of(self, index: np.ndarray) -> np.ndarray:
        """Position in ``paths`` (int, shape (n,)) of store entries."""
        index = self._index(index)
        return np.searchsorted(self._offsets, index, side="right") - 1

    def close(self) -> None:
        """Close the files."""
        for f in self._files or []:
            f.close()
        self._files = None

    def __enter__(self) -> FlatmapStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_files"], state["_pid"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __del__(self):
        try:
            if self._pid == os.getpid():
                self.close()
        except Exception:  # interpreter shutdown
            pass
