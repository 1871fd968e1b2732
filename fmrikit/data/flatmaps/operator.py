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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError

log = logging.getLogger("fmrikit")

_MAPPING_ATTRS = ("size", "bbox", "height", "pycortex_subject", "pycortex_xfm")
_MAPPING_DATASETS = ("data", "indices", "indptr", "shape", "mask", "ijk")


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
        ``height`` rows (row 0 at the top, as ``make_flatmap_image`` returns it); for a mesh mapping the
        crop ``(x0, x1, y0, y1)`` in mm of the flat plane (:func:`fmrikit.io.fsaverage.visual_crop`).
    height : int
        Height (pixels) of the pycortex flatmap the crop was taken from (0 for a mesh mapping).
    pycortex_subject, pycortex_xfm : str
        pycortex subject and transform of the mapping ("" for a mesh mapping).
    mesh : str
        The mesh of a surface dataset's mapping (:mod:`fmrikit.data.flatmaps.fsaverage`), "" for pycortex.
    """

    matrix: object
    mask: np.ndarray
    ijk: np.ndarray
    size: int
    bbox: tuple[int, int, int, int]
    height: int
    pycortex_subject: str
    pycortex_xfm: str
    mesh: str = ""

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

    A surface dataset gets the fsaverage flat operator instead (:func:`.fsaverage.surface_operator`).

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

    size, margin = check_int(size, "size", 1), check_int(margin, "margin", 0)
    if info.is_surface:
        from fmrikit.data.flatmaps.fsaverage import surface_operator

        if pycortex_subject or pycortex_xfm or margin:
            raise InputError("pycortex options and margins apply to volume datasets", path=info.path,
                             expected="none for a surface dataset (its crop is fsaverage's fixed visual crop)",
                             found=f"subject {pycortex_subject!r}, transform {pycortex_xfm!r}, margin {margin}")
        matrix, mask, crop = surface_operator(info, size)
        return FlatmapMapping(matrix=matrix, mask=mask, ijk=np.asarray(info.ijk).copy(), size=size, bbox=crop,
                              height=0, pycortex_subject="", pycortex_xfm="", mesh=info.mesh)
    subject, xfm, crop, (h, w), bbox = crop_operator(info, pycortex_subject, pycortex_xfm, margin)
    from fmrikit.io.pycortex import FLATMAP_HEIGHT

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


def check_flatmap_source(info, pycortex_subject: str | None = None, pycortex_xfm: str | None = None
                         ) -> tuple[str, str]:
    """The pycortex subject and transform a dataset's flatmaps are drawn from, checked (a cortical surface is
    what NeuroPictor's flatmaps need; most NSD users have not imported their subjects into pycortex).

    Parameters
    ----------
    info : fmrikit.data.dataset.DatasetInfo
    pycortex_subject, pycortex_xfm : str, optional
        Default the dataset's own.

    Returns
    -------
    subject, xfm : str

    Raises
    ------
    MissingInputError
        The dataset names no pycortex subject: one line naming the options that supply it.
    InputError, GridMismatchError
        Unknown subject or transform, or a transform of another grid.
    """
    from fmrikit.io.pycortex import check_flatmap_target

    subject = pycortex_subject or info.pycortex_subject
    xfm = pycortex_xfm or info.pycortex_xfm
    if not (subject and xfm):
        raise MissingInputError("cortical flatmaps need the subject's cortical surface in pycortex", path=info.path,
                                expected="a dataset preprocessed with --pycortex-subject NAME --pycortex-xfm XFM (the "
                                         "subject's FreeSurfer surfaces imported into pycortex, e.g. subj01 / "
                                         "func1pt8_to_anat0pt8_autoFSbbr)",
                                found=f"subject {subject!r}, transform {xfm!r}")
    check_flatmap_target(subject, xfm, info.volume_shape)
    return subject, xfm


def crop_operator(info, pycortex_subject, pycortex_xfm, margin: int):
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

    from fmrikit.io.pycortex import FLATMAP_HEIGHT, quiet_pycortex

    subject, xfm = check_flatmap_source(info, pycortex_subject, pycortex_xfm)
    from cortex.quickflat import utils as qutils

    with quiet_pycortex():
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


def check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"invalid flatmap {name}", expected=f"an integer >= {minimum}", found=repr(value))
    return int(value)


# -- HDF5 (de)serialisation of the mapping ---------------------------------------------------

def write_mapping(group, mapping: FlatmapMapping) -> None:
    """Write a mapping into an HDF5 group.

    Datasets ``data``, ``indices``, ``indptr``, ``shape`` (the CSR matrix), ``mask``, ``ijk``; attributes
    ``size``, ``bbox``, ``height``, ``pycortex_subject``, ``pycortex_xfm``, ``mesh``.

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
                        "pycortex_xfm": mapping.pycortex_xfm, "mesh": mapping.mesh})


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
                          pycortex_xfm=str(group.attrs["pycortex_xfm"]), mesh=str(group.attrs.get("mesh", "")))

