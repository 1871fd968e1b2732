"""The flatmap operator of surface datasets: fsaverage's flat mesh rasterised into one image every subject shares.

A trial's betas (one value per vertex column) become a ``size x size`` image of the fixed visual crop of the
flat plane (:func:`fmrikit.io.fsaverage.visual_crop`: both hemispheres' fsaverage5 flat patches side by side,
occipital poles in the middle, dorsal up, the aspect ratio kept). Because the crop and the mesh never depend
on the dataset, pixel (r, c) is the same piece of cortex for every subject, NeuroPictor's premise for
pretraining across individuals.

The operator, a sparse (pixels x columns) matrix like the pycortex one (:mod:`.operator`):

1. each pixel is sampled at ``supersample x supersample`` points; a point inside a flat triangle weighs the
   triangle's three vertices by its barycentric coordinates (linear interpolation on the mesh); a pixel's
   weights are the mean over its points (so pixels larger than triangles average instead of aliasing);
2. columns are the dataset's vertices among fsaverage5's (the first 10,242 of each hemisphere, which the flat
   mesh has; a full-fsaverage dataset's other vertices get no pixel);
3. a pixel is inside the mask when at least half of its weight falls on dataset columns; its row is then
   renormalised over them (the mean of the covered vertices); other rows are empty.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from fmrikit.errors import DataValueError
from fmrikit.io.fsaverage import FSAVERAGE5_VERTICES, flat_layout, visual_crop
from fmrikit.io.surface import HEMIS

#: Sample points per pixel side.
SUPERSAMPLE = 3


def surface_operator(info, size: int) -> tuple[object, np.ndarray, tuple[int, int, int, int]]:
    """The sparse projection of a surface dataset's columns onto ``size x size`` flat images.

    Parameters
    ----------
    info : fmrikit.data.dataset.DatasetInfo
        A surface dataset (columns ``hemi`` / ``vertex``).
    size : int

    Returns
    -------
    matrix : scipy.sparse.csr_matrix of float32, shape (size * size, n_columns)
        Row ``r * size + c`` holds the weights of pixel (r, c), row 0 at the top; rows outside ``mask`` empty.
    mask : ndarray of bool, shape (size, size)
    crop : (x0, x1, y0, y1)
        The visual crop (mm of the flat plane).

    Raises
    ------
    DataValueError
        No column of the dataset lands on the crop.
    """
    from scipy import sparse

    mesh = mesh_raster(size)  # (size * size, 2 * 10242) over fsaverage5's vertices
    hemi, vertex = np.asarray(info.hemi, np.int64), np.asarray(info.vertex, np.int64)
    on_mesh = np.nonzero(vertex < FSAVERAGE5_VERTICES)[0]
    pick = sparse.csr_matrix((np.ones(len(on_mesh)), (hemi[on_mesh] * FSAVERAGE5_VERTICES + vertex[on_mesh], on_mesh)),
                             shape=(2 * FSAVERAGE5_VERTICES, len(hemi)))
    matrix = sparse.csr_matrix(mesh @ pick)
    coverage = np.asarray(matrix.sum(1)).ravel()
    inside = coverage >= 0.5
    if not inside.any():
        raise DataValueError("no vertex of the dataset lands on the flat visual crop", path=info.path,
                             expected="vertices of fsaverage5's flat patch in the visual cortex", found="none")
    scale = np.divide(1.0, coverage, out=np.zeros_like(coverage), where=inside)
    matrix = sparse.csr_matrix(sparse.diags(scale) @ matrix, dtype=np.float32)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix, inside.reshape(size, size), visual_crop()


@lru_cache(maxsize=4)
def mesh_raster(size: int, supersample: int = SUPERSAMPLE):
    """Pixel weights over both hemispheres' fsaverage5 vertices (column ``hemi * 10242 + vertex``).

    Returns
    -------
    scipy.sparse.csr_matrix of float64, shape (size * size, 2 * 10242)
        Rows of pixels that fall on the flat patch sum to the fraction of their sample points on it.
    """
    import matplotlib.tri as mtri
    from scipy import sparse

    x0, x1, y0, y1 = visual_crop()
    step = (np.arange(size * supersample) + 0.5) / (size * supersample)
    sx, sy = np.meshgrid(x0 + step * (x1 - x0), y1 - step * (y1 - y0))  # row 0 at the top
    pixel = ((np.arange(size * supersample)[:, None] // supersample) * size
             + np.arange(size * supersample)[None] // supersample).ravel()
    sx, sy = sx.ravel(), sy.ravel()
    rows, cols, vals = [], [], []
    for h, hemi in enumerate(HEMIS):
        xy, faces = flat_layout()[hemi]
        triangle = mtri.Triangulation(xy[:, 0], xy[:, 1], faces).get_trifinder()(sx, sy)
        hit = np.nonzero(triangle >= 0)[0]
        corners = faces[triangle[hit]]  # (n, 3)
        bary = barycentric(xy[corners], np.stack([sx[hit], sy[hit]], 1))
        rows.append(np.repeat(pixel[hit], 3))
        cols.append((corners + h * FSAVERAGE5_VERTICES).ravel())
        vals.append(bary.ravel() / supersample**2)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(size * size, 2 * FSAVERAGE5_VERTICES))


def barycentric(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Barycentric coordinates of points in triangles.

    Parameters
    ----------
    triangles : ndarray, shape (n, 3, 2)
    points : ndarray, shape (n, 2)

    Returns
    -------
    ndarray, shape (n, 3)
        Rows sum to 1; all >= 0 for a point inside its triangle.
    """
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
    wb = (v2[:, 0] * v1[:, 1] - v2[:, 1] * v1[:, 0]) / det
    wc = (v0[:, 0] * v2[:, 1] - v0[:, 1] * v2[:, 0]) / det
    return np.stack([1 - wb - wc, wb, wc], 1)
