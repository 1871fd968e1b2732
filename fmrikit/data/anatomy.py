"""The simulated world's anatomy: pycortex's bundled subject S1 (transform ``fullhead``).

Every simulated subject shares this grid, brain mask and cortical sheet, so every per-voxel
map renders as a real flatmap. Flatmap coordinates come from pycortex's pixel-to-voxel
mapping, the same one that draws the flatmaps; the mapping itself is kept, so that maps
drawn on the flatmap can be read back per voxel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fmrikit.io.pycortex import FLATMAP_HEIGHT, import_cortex, quiet_pycortex

PYCORTEX_SUBJECT = "S1"
PYCORTEX_XFM = "fullhead"


@dataclass(frozen=True)
class Anatomy:
    """Grid, brain mask and cortical voxels of a pycortex subject.

    Attributes
    ----------
    shape : tuple of int
        (X, Y, Z) of the functional grid.
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine (mm).
    brainmask : ndarray of bool, shape (X, Y, Z)
    cortex_ijk : ndarray of int, shape (n_cortex, 3)
        Cortical voxels (those that reach the flatmap).
    flat_xy : ndarray, shape (n_cortex, 2)
        Flatmap position of each cortical voxel (pixels of a flatmap FLATMAP_HEIGHT tall).
    hemisphere : ndarray of int8, shape (n_cortex,)
        0 left, 1 right.
    world : ndarray, shape (n_cortex, 3)
        Voxel centres in world coordinates (mm).
    flat_size : tuple of int
        (width, height) of the flatmap in pixels.
    pixel_xy : ndarray of int64, shape (n_pixels, 2)
        Flatmap pixels (x, y) that show cortex.
    pixel_map : scipy.sparse.csr_matrix, shape (n_pixels, n_cortex)
        pycortex's weights of each cortical voxel in each pixel; rows sum to 1.
    mm_per_pixel : float
        Flat-surface millimetres per flatmap pixel.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    brainmask: np.ndarray
    cortex_ijk: np.ndarray
    flat_xy: np.ndarray
    hemisphere: np.ndarray
    world: np.ndarray
    flat_size: tuple[int, int]
    pixel_xy: np.ndarray
    pixel_map: object
    mm_per_pixel: float


@lru_cache(maxsize=2)
def load_anatomy(subject: str = PYCORTEX_SUBJECT, xfm: str = PYCORTEX_XFM) -> Anatomy:
    """Load a pycortex subject's functional grid and cortical flatmap coordinates.

    The first call builds pycortex's flatmap cache (seconds); later calls read it.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    cortex = import_cortex()
    from cortex.quickflat import utils as qutils

    transform = cortex.db.get_xfm(subject, xfm)
    ref = transform.reference
    zyx = tuple(transform.shape)
    with quiet_pycortex():
        pixmap = qutils.get_flatcache(subject, xfm, height=FLATMAP_HEIGHT).tocsc()
        flatmask, extents = qutils.get_flatmask(subject, height=FLATMAP_HEIGHT)
    width = flatmask.shape[0]
    px, py = np.mgrid[0:width, 0:FLATMAP_HEIGHT]
    px, py = px.ravel()[flatmask.ravel()], py.ravel()[flatmask.ravel()]
    weight = np.asarray(pixmap.sum(0)).ravel()
    vox = np.nonzero(weight > 0)[0]
    flat_xy = np.stack([(pixmap.T @ px)[vox], (pixmap.T @ py)[vox]], 1) / weight[vox, None]
    z, y, x = np.unravel_index(vox, zyx)
    ijk = np.stack([x, y, z], 1).astype(np.int64)
    affine = np.asarray(ref.affine, dtype=np.float64)
    world = (affine @ np.c_[ijk, np.ones(len(ijk))].T)[:3].T

    data = np.asarray(ref.dataobj, dtype=np.float64)
    brain = ndimage.binary_fill_holes(data > threshold_otsu(data))
    brain[tuple(ijk.T)] = True
    shown = np.asarray(pixmap[:, vox].sum(1)).ravel() > 0
    pixel_map = pixmap[:, vox].tocsr()[shown]
    pixel_map = (pixel_map.multiply(1 / np.asarray(pixel_map.sum(1)))).tocsr()
    return Anatomy(shape=zyx[::-1], affine=affine, brainmask=brain, cortex_ijk=ijk, flat_xy=flat_xy,
                   hemisphere=(flat_xy[:, 0] >= width / 2).astype(np.int8), world=world,
                   flat_size=(int(width), int(FLATMAP_HEIGHT)), pixel_xy=np.stack([px, py], 1)[shown],
                   pixel_map=pixel_map, mm_per_pixel=float((extents[3] - extents[2]) / FLATMAP_HEIGHT))
