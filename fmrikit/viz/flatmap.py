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
                   title: str | None = None, units: str | None = None, categories: list | None = None,
                   numbered: int = 0) -> Path:
    """Render a volume on a pycortex subject's flatmap and save it as PNG, its key (colour bar or legend) below it.

    Parameters
    ----------
    volume_xyz : ndarray, shape (X, Y, Z)
        Values in the transform's reference grid; NaN is transparent. With ``categories``: labels 1..n (0 and NaN
        transparent).
    png_path : path-like
    subject, xfm : str
        pycortex subject and transform names.
    vmin, vmax : float, optional
        Colour range of a continuous map.
    cmap : str
    title : str, optional
    units : str, optional
        The colour bar's label.
    categories : list of :class:`~fmrikit.viz.keys.Category`, optional
        A label map: one colour and legend entry per label 1..n, sampled at mid-depth without averaging.
    numbered : int
        Write the numbers of labels 1..``numbered`` on their largest patches (label maps; 0: none).

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from fmrikit.viz.keys import append_key, draw_colorbar, draw_legend

    cortex = check_flatmap_target(subject, xfm, volume_xyz.shape)
    zyx = np.ascontiguousarray(np.swapaxes(np.asarray(volume_xyz, dtype=np.float32), 0, 2))
    sampling = {}
    if categories:
        zyx = np.where(zyx > 0, zyx, np.nan)
        cmap = ListedColormap([c.color for c in categories])
        vmin, vmax = 0.5, len(categories) + 0.5
        sampling = dict(thick=1, depth=0.5, sampler="nearest")  # a label is never averaged with its neighbour
    vol = cortex.Volume(zyx, subject, xfm, vmin=vmin, vmax=vmax, cmap=cmap)
    png_path = Path(png_path)
    tmp = png_path.with_name(f".{png_path.name}.part.png")
    with quiet_pycortex():
        fig = cortex.quickflat.make_figure(vol, height=FLATMAP_HEIGHT, with_rois=shutil.which("inkscape") is not None,
                                           with_labels=False, with_curvature=True, with_colorbar=False,
                                           with_sulci=False, **sampling)
        if numbered and categories:
            _number_labels(fig.axes[0], min(numbered, len(categories)))
        if title:
            fig.suptitle(title, fontsize=14, y=1.0, va="bottom")  # above the cortex, not on it
        fig.savefig(tmp, dpi=100, facecolor="white", bbox_inches="tight")
        plt.close(fig)
    from PIL import Image

    with Image.open(tmp) as img:
        width = img.width
    if categories:
        append_key(tmp, draw_legend(width, categories))
    elif vmin is not None and vmax is not None:
        finite = zyx[np.isfinite(zyx)]
        extend = {(False, False): "neither", (True, False): "min", (False, True): "max", (True, True): "both"}[
            (bool(finite.size and finite.min() < vmin), bool(finite.size and finite.max() > vmax))]
        append_key(tmp, draw_colorbar(width, vmin=vmin, vmax=vmax, cmap=cmap, units=units, extend=extend))
    os.replace(tmp, png_path)
    return png_path


def _number_labels(ax, n: int) -> None:
    """Write label c's number at the most interior pixel of its largest patch on the flatmap (the data image that
    pycortex drew, labelled ``data``), or of another of its patches when the largest one is next to a number
    already written."""
    from scipy import ndimage

    image = next(i for i in ax.get_images() if i.get_label() == "data")
    img = np.ma.filled(np.ma.asarray(image.get_array(), dtype=np.float64), np.nan)
    h, w = img.shape[:2]
    left, right, bottom, top = image.get_extent()
    rows, cols = np.indices((h, w))
    free = np.ones((h, w), bool)  # away from the numbers already written
    spacing = 0.05 * h  # about the width of a two-digit number
    for c in range(1, n + 1):
        patches, count = ndimage.label(np.isclose(img, c))
        if not count:
            continue
        largest = 1 + int(np.argmax(ndimage.sum_labels(np.ones_like(img), patches, range(1, count + 1))))
        depth = ndimage.distance_transform_edt(patches == largest)
        for candidate in (depth * free, ndimage.distance_transform_edt(patches > 0) * free):
            if candidate.max() > 0:  # else every patch is next to another number: write it there anyway
                depth = candidate
                break
        row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
        free &= (rows - row) ** 2 + (cols - col) ** 2 > spacing ** 2
        x = left + (col + 0.5) * (right - left) / w
        y = top + (row + 0.5) * (bottom - top) / h  # imshow's default origin: row 0 at the top
        ax.text(x, y, str(c), ha="center", va="center", fontsize=11, weight="bold", color="black", zorder=10,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8))
