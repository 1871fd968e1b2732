"""pycortex flatmaps of volumes, and the voxel-to-volume scatter every map uses (:mod:`fmrikit.viz.maps` draws
per-voxel maps).

pycortex prints while it builds its caches; its output is redirected to the log so the
library stays silent. Flatmaps render headless (matplotlib Agg).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from fmrikit.errors import InputError
from fmrikit.io.pycortex import FLATMAP_HEIGHT, check_flatmap_target, quiet_pycortex


def voxels_to_volume(values: np.ndarray, ijk: np.ndarray, volume_shape: tuple[int, int, int],
                     fill: float = np.nan) -> np.ndarray:
    """Scatter per-voxel values into a volume.

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
    ijk : ndarray of int, shape (n_voxels, 3)
        Voxel indices (x, y, z).
    volume_shape : tuple of int
        (X, Y, Z).
    fill : float
        Value outside the voxels.

    Returns
    -------
    ndarray of float32, shape (X, Y, Z)
    """
    values = np.asarray(values)
    if values.shape != (len(ijk),):
        raise InputError("one value per voxel is needed", expected=f"shape ({len(ijk)},)",
                         found=f"shape {values.shape}")
    vol = np.full(tuple(volume_shape), fill, dtype=np.float32)
    vol[tuple(np.asarray(ijk).T)] = values
    return vol


def render_flatmap(volume_xyz: np.ndarray, png_path: str | os.PathLike, subject: str, xfm: str, *,
                   vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis",
                   title: str | None = None) -> Path:
    """Render a volume on a pycortex subject's flatmap and save it as PNG.

    Parameters
    ----------
    volume_xyz : ndarray, shape (X, Y, Z)
        Values in the transform's reference grid; NaN is transparent.
    png_path : path-like
    subject, xfm : str
        pycortex subject and transform names.
    vmin, vmax : float, optional
    cmap : str
    title : str, optional

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cortex = check_flatmap_target(subject, xfm, volume_xyz.shape)
    zyx = np.swapaxes(np.asarray(volume_xyz, dtype=np.float32), 0, 2)
    vol = cortex.Volume(np.ascontiguousarray(zyx), subject, xfm, vmin=vmin, vmax=vmax, cmap=cmap)
    png_path = Path(png_path)
    tmp = png_path.with_name(f".{png_path.name}.part.png")
    with quiet_pycortex():
        fig = cortex.quickflat.make_figure(vol, height=FLATMAP_HEIGHT, with_rois=shutil.which("inkscape") is not None,
                                           with_labels=False, with_curvature=True, with_colorbar=True,
                                           with_sulci=False)
        if title:
            fig.suptitle(title)
        fig.savefig(tmp, dpi=100, facecolor="white", bbox_inches="tight")
        plt.close(fig)
    os.replace(tmp, png_path)
    return png_path
