"""Per-voxel maps, one way for every command: the NIfTI first, then its picture.

The picture is a pycortex flatmap when the grid has a pycortex subject and transform; otherwise a nilearn
mosaic (axial, coronal and sagittal slices) over the subject's own anatomy (an NSD ``T1_to_func1pt8mm`` or
``mean`` volume, else the brainmask), with a colour bar and a title. Everything a picture needs is checked
before a command's work (:meth:`MapTarget.check`); drawing itself never fails a run: an error while drawing is
logged and the run keeps its NIfTI.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fmrikit._logging import logger
from fmrikit.io.nifti import save_nifti
from fmrikit.viz.flatmap import render_flatmap, voxels_to_volume
from fmrikit.viz.keys import Category

FLATMAP = "pycortex flatmap"
MOSAIC = "nilearn mosaic"
#: Picture styles: a continuous map (``stat``) or a mask / label map (``roi``).
STYLES = ("stat", "roi")


@dataclass(frozen=True)
class MapTarget:
    """The grid a per-voxel map lives on, and what its picture is drawn on.

    Attributes
    ----------
    volume_shape : tuple of int
        (X, Y, Z) of the source grid.
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine (mm).
    pycortex_subject, pycortex_xfm : str
        pycortex subject and transform whose reference is this grid ("" when unknown: the picture is a mosaic).
    anatomy : str
        NIfTI on this grid that the mosaic is drawn over ("" for none).
    """

    volume_shape: tuple[int, int, int]
    affine: np.ndarray
    pycortex_subject: str = ""
    pycortex_xfm: str = ""
    anatomy: str = ""

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MapTarget:
        """A target from a model record holding ``volume_shape``, ``affine`` and optionally the pycortex names and
        ``anatomy``."""
        return cls(tuple(int(v) for v in record["volume_shape"]), np.asarray(record["affine"], dtype=np.float64),
                   record.get("pycortex_subject") or "", record.get("pycortex_xfm") or "",
                   record.get("anatomy") or "")

    @property
    def renderer(self) -> str:
        """``"pycortex flatmap"`` or ``"nilearn mosaic"``."""
        return FLATMAP if self.pycortex_subject and self.pycortex_xfm else MOSAIC

    def check(self, pycortex: bool = True) -> MapTarget:
        """Check, before any work, that the picture can be drawn.

        Parameters
        ----------
        pycortex : bool
            Also check the pycortex subject and transform (when the picture is a flatmap).

        Returns
        -------
        MapTarget
            This target, without its anatomy when that file is gone or on another grid (logged: the mosaic is then
            drawn without a background).

        Raises
        ------
        InputError, GridMismatchError
            The pycortex subject or transform is unknown, or its reference is another grid.
        """
        if pycortex and self.renderer == FLATMAP:
            from fmrikit.io.pycortex import check_flatmap_target

            check_flatmap_target(self.pycortex_subject, self.pycortex_xfm, self.volume_shape)
        if self.anatomy:
            from fmrikit.errors import FmrikitError
            from fmrikit.io.nifti import check_same_grid, load_image

            try:
                img = load_image(self.anatomy, ndim=3)
                check_same_grid({"the map's grid": (self.volume_shape, self.affine),
                                 self.anatomy: (img.shape, img.affine)})
            except FmrikitError as exc:
                logger.warning("pictures drawn without an anatomical background: %s", exc.one_line())
                return replace(self, anatomy="")
        return self

    def record(self) -> dict[str, str | None]:
        """What the sidecar says about the pictures."""
        if self.renderer == FLATMAP:
            return {"renderer": FLATMAP, "pycortex_subject": self.pycortex_subject, "pycortex_xfm": self.pycortex_xfm}
        return {"renderer": MOSAIC, "background": self.anatomy or None}


def save_voxel_map(values: np.ndarray, ijk: np.ndarray, target: MapTarget, *,
                   nifti_path: str | os.PathLike | None = None, png_path: str | os.PathLike | None = None,
                   style: str = "stat", vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis",
                   title: str | None = None, units: str | None = None, categories: list[Category] | None = None,
                   numbered: int = 0) -> dict[str, Any]:
    """Write a per-voxel vector as a NIfTI volume, then draw its picture.

    Parameters
    ----------
    values : ndarray, shape (n_voxels,)
    ijk : ndarray of int, shape (n_voxels, 3)
        Voxel indices (x, y, z) on ``target``'s grid.
    target : MapTarget
        Grid and picture target (checked beforehand with :meth:`MapTarget.check`).
    nifti_path, png_path : path-like, optional
        Outputs to write; NaN outside the voxels in the NIfTI.
    style : {"stat", "roi"}
        A continuous map with a colour bar, or a mask / label map with a legend (labels 1..n, 0 not drawn).
    vmin, vmax : float, optional
        Colour range; default the 1st and 99th percentiles of the finite values.
    cmap : str
        Matplotlib colour map of a continuous map.
    title : str, optional
    units : str, optional
        The colour bar's label: what the values are, with their unit.
    categories : list of Category, optional
        Legend of a label map, one per label 1..n (default: one entry, "selected", for a mask).
    numbered : int
        Write the numbers of labels 1..``numbered`` on the map (flatmaps; 0: none).

    Returns
    -------
    dict
        ``nifti`` and ``png`` (Paths, for what was written) and ``picture`` (:meth:`MapTarget.record`, with
        ``error`` when drawing failed).
    """
    from fmrikit.checks import check_option

    check_option("map style", style, STYLES)
    vol = voxels_to_volume(values, ijk, target.volume_shape)
    written: dict[str, Any] = {"picture": target.record()}
    if nifti_path is not None:
        written["nifti"] = save_nifti(vol, target.affine, nifti_path)
    if png_path is None:
        return written
    finite = np.asarray(values, dtype=np.float64)[np.isfinite(values)]
    lo = float(np.percentile(finite, 1)) if vmin is None and finite.size else vmin
    hi = float(np.percentile(finite, 99)) if vmax is None and finite.size else vmax
    if style == "roi" and not categories:
        categories = [Category("selected", "#d62728")]
    common = dict(vmin=lo, vmax=hi, cmap=cmap, title=title, units=units,
                  categories=categories if style == "roi" else None)
    try:
        if target.renderer == FLATMAP:
            written["png"] = render_flatmap(vol, png_path, target.pycortex_subject, target.pycortex_xfm,
                                            numbered=numbered, **common)
        else:
            written["png"] = render_mosaic(vol, target.affine, png_path, anatomy=target.anatomy or None, **common)
    except Exception as exc:  # a picture never fails the run that computed the map (the NIfTI is written)
        logger.warning("%s: picture not drawn (%s: %s); the map is in the NIfTI", Path(png_path).name,
                       type(exc).__name__, exc)
        written["picture"] = {**written["picture"], "error": f"{type(exc).__name__}: {exc}"}
    return written


def render_mosaic(volume_xyz: np.ndarray, affine: np.ndarray, png_path: str | os.PathLike, *,
                  anatomy: str | os.PathLike | None = None, vmin: float | None = None, vmax: float | None = None,
                  cmap: str = "viridis", title: str | None = None, units: str | None = None,
                  categories: list[Category] | None = None) -> Path:
    """Draw a volume as a nilearn mosaic (``display_mode="mosaic"``) and save it as PNG, its key below it.

    Parameters
    ----------
    volume_xyz : ndarray, shape (X, Y, Z)
        Values on the grid of ``affine``; NaN (and exact zeros) are transparent.
    affine : ndarray, shape (4, 4)
    png_path : path-like
    anatomy : path-like, optional
        Background NIfTI on the same grid; none: no background.
    vmin, vmax : float, optional
    cmap : str
    title : str, optional
    units : str, optional
        The colour bar's label.
    categories : list of Category, optional
        A label map (labels 1..n, drawn with ``plot_roi``) and its legend; else a continuous map
        (``plot_stat_map``) with a colour bar.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import nibabel as nib
    from matplotlib.colors import ListedColormap
    from nilearn import plotting
    from PIL import Image

    from fmrikit.viz.keys import append_key, draw_colorbar, draw_legend

    data = np.nan_to_num(np.asarray(volume_xyz, dtype=np.float32), nan=0.0)
    img = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64))
    background = nib.load(anatomy) if anatomy else None  # None: no background (not the MNI template)
    png_path = Path(png_path)
    tmp = png_path.with_name(f".{png_path.name}.part.png")
    common = dict(bg_img=background, display_mode="mosaic", colorbar=False, title=title, black_bg=False,
                  draw_cross=False)
    with warnings.catch_warnings():  # nilearn warns about NaN replaced, empty slices and the like
        warnings.simplefilter("ignore")
        if categories:
            display = plotting.plot_roi(img, alpha=1.0, cmap=ListedColormap([c.color for c in categories]),
                                        vmin=0.5, vmax=len(categories) + 0.5, **common)
        else:
            display = plotting.plot_stat_map(img, resampling_interpolation="nearest", symmetric_cbar=False,
                                             cmap=cmap, vmin=vmin, vmax=vmax, **common)
        display.savefig(str(tmp), dpi=80)
        display.close()
    with Image.open(tmp) as pic:
        width = pic.width
    if categories:
        append_key(tmp, draw_legend(width, categories, dpi=80))
    elif vmin is not None and vmax is not None:
        append_key(tmp, draw_colorbar(width, vmin=vmin, vmax=vmax, cmap=cmap, units=units, dpi=80))
    os.replace(tmp, png_path)
    return png_path


#: Colours of an overlay of a mask on a reference: in both, in the mask only, in the reference only.
OVERLAY_COLORS = ("#f2b701", "#d62728", "#1f77b4")


def overlay_labels(mask: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Label each voxel of two boolean volumes: 1 in both, 2 in the mask only, 3 in the reference only, 0 in neither.

    Parameters
    ----------
    mask, reference : ndarray of bool, shape (X, Y, Z)

    Returns
    -------
    ndarray of int8, shape (X, Y, Z)
    """
    mask, reference = np.asarray(mask, bool), np.asarray(reference, bool)
    return np.select([mask & reference, mask, reference], [1, 2, 3], 0).astype(np.int8)


def save_overlay(mask: np.ndarray, reference: np.ndarray, target: MapTarget, png_path: str | os.PathLike, *,
                 mask_name: str = "mask", reference_name: str = "reference", title: str | None = None
                 ) -> dict[str, Any]:
    """Draw a mask over a reference mask: overlap, mask only and reference only in three colours, with their voxel
    counts in the legend.

    Parameters
    ----------
    mask, reference : ndarray of bool, shape (X, Y, Z)
        On ``target``'s grid.
    target : MapTarget
    png_path : path-like
    mask_name, reference_name : str
        Their names in the legend.
    title : str, optional

    Returns
    -------
    dict
        As :func:`save_voxel_map`.
    """
    labels = overlay_labels(mask, reference)
    ijk = np.argwhere(labels > 0)
    counts = np.bincount(labels.ravel(), minlength=4)
    names = (f"both ({counts[1]} voxels)", f"{mask_name} only ({counts[2]})", f"{reference_name} only ({counts[3]})")
    categories = [Category(n, c) for n, c in zip(names, OVERLAY_COLORS)]
    return save_voxel_map(labels[tuple(ijk.T)].astype(np.float32), ijk, target, png_path=png_path, style="roi",
                          categories=categories, title=title)


def save_label_map(labels: np.ndarray, ijk: np.ndarray, target: MapTarget, png_path: str | os.PathLike, k: int, *,
                   faint: np.ndarray | None = None, faint_name: str = "not shown", title: str | None = None
                   ) -> dict[str, Any]:
    """Draw labels 1..k in :func:`~fmrikit.viz.keys.label_palette`'s colours, each label's number on the map
    (flatmaps) and a legend; voxels marked ``faint`` are drawn white whatever their label.

    Parameters
    ----------
    labels : ndarray of int, shape (n_voxels,)
        1..k.
    ijk : ndarray of int, shape (n_voxels, 3)
    target : MapTarget
    png_path : path-like
    k : int
    faint : ndarray of bool, shape (n_voxels,), optional
        Voxels whose label is not to be read (e.g. a noise ceiling below a threshold).
    faint_name : str
        Their legend entry (with their count).
    title : str, optional

    Returns
    -------
    dict
        As :func:`save_voxel_map`.
    """
    from fmrikit.viz.keys import label_palette

    shown = np.asarray(labels, dtype=np.float32).copy()
    categories = [Category(str(c), color) for c, color in enumerate(label_palette(k), 1)]
    if faint is not None and np.any(faint):
        shown[np.asarray(faint, bool)] = k + 1
        categories.append(Category(f"{faint_name} ({int(np.sum(faint))} of {len(shown)} voxels)", "#ffffff"))
    return save_voxel_map(shown, ijk, target, png_path=png_path, style="roi", categories=categories, numbered=k,
                          title=title)
