"""Per-vertex maps on fsaverage: a GIFTI per hemisphere, a flat-mesh picture and an inflated view.

A map is one value per column of a surface dataset, the columns given by hemisphere and vertex number.
The GIFTI files hold every vertex of the mesh (NaN, or label 0, where there is no column). Pictures draw
nilearn's fsaverage5 meshes and so show the first 10,242 vertices of each hemisphere (see
:mod:`fmrikit.io.fsaverage`): the flat picture puts both hemispheres side by side on the fixed visual
crop with a colour bar, the inflated one shows each hemisphere from the side, the midline and below.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fmrikit.errors import InputError
from fmrikit.io.fsaverage import FSAVERAGE5_VERTICES, flat_layout, fsaverage5_mesh, fsaverage5_sulc, visual_crop
from fmrikit.io.surface import HEMI_LABEL, HEMIS, save_gifti_map
from fmrikit.viz.keys import label_palette

_VIEWS = ("lateral", "medial", "ventral")


def hemi_file_name(stem: str, tail: str, hemi: str) -> str:
    """A per-hemisphere file name: the BIDS ``hemi-`` entity after the subject's.

    ``hemi_file_name("sub-01_desc-troi", "mask.label.gii", "lh")`` is ``sub-01_hemi-L_desc-troi_mask.label.gii``.
    """
    first, sep, rest = stem.partition("_")
    return f"{first}_hemi-{HEMI_LABEL[hemi]}{sep}{rest}_{tail}" if sep else f"{first}_hemi-{HEMI_LABEL[hemi]}_{tail}"


def vertex_map_names(stem: str, suffix: str, *, label: bool = False) -> dict[str, str]:
    """File names of one per-vertex map: ``lh`` / ``rh`` GIFTI, ``flat`` and ``inflated`` PNG.

    Parameters
    ----------
    stem : str
        E.g. ``sub-01_desc-troi``.
    suffix : str
        E.g. ``mask``: ``sub-01_hemi-L_desc-troi_mask.func.gii``, ``sub-01_desc-troi_mask.png`` (the flat
        picture, named as a volume's flatmap) and ``sub-01_desc-troi_mask_inflated.png``.
    label : bool
        A label map (``.label.gii``).
    """
    ext = "label.gii" if label else "func.gii"
    return {**{h: hemi_file_name(stem, f"{suffix}.{ext}", h) for h in HEMIS},
            "flat": f"{stem}_{suffix}.png", "inflated": f"{stem}_{suffix}_inflated.png"}


def vertex_maps(values: np.ndarray, hemi: np.ndarray, vertex: np.ndarray, n_vertices: int,
                fill: float = np.nan) -> dict[str, np.ndarray]:
    """Scatter per-column values onto each hemisphere's vertices.

    Parameters
    ----------
    values : ndarray, shape (n_columns,)
    hemi : ndarray of int, shape (n_columns,)
        0 left, 1 right.
    vertex : ndarray of int, shape (n_columns,)
        Vertex numbers within the hemisphere.
    n_vertices : int
        Vertices per hemisphere of the mesh.
    fill : float
        Value of vertices without a column.

    Returns
    -------
    dict
        ``{"lh": ndarray (n_vertices,), "rh": ...}``, float64.
    """
    values = np.asarray(values)
    if values.shape != (len(hemi),):
        raise InputError("one value per vertex column is needed", expected=f"shape ({len(hemi)},)",
                         found=f"shape {values.shape}")
    out = {}
    for h, name in enumerate(HEMIS):
        full = np.full(int(n_vertices), fill, np.float64)
        sel = np.asarray(hemi) == h
        full[np.asarray(vertex)[sel]] = values[sel]
        out[name] = full
    return out


def save_vertex_map(values: np.ndarray, hemi: np.ndarray, vertex: np.ndarray, n_vertices: int, *,
                    gifti: dict[str, str | os.PathLike] | None = None, flat_png: str | os.PathLike | None = None,
                    inflated_png: str | os.PathLike | None = None, label_names: dict[int, str] | None = None,
                    vmin: float | None = None, vmax: float | None = None, cmap: str = "viridis",
                    title: str | None = None, units: str | None = None) -> dict[str, Path]:
    """Write a per-column vector of a surface dataset as GIFTI files and / or pictures.

    Parameters
    ----------
    values : ndarray, shape (n_columns,)
        Values (NaN: none), or labels 1..k with ``label_names``.
    hemi, vertex : ndarray of int, shape (n_columns,)
        The columns' hemisphere (0 left, 1 right) and vertex.
    n_vertices : int
        Vertices per hemisphere of the dataset's mesh.
    gifti : dict, optional
        ``{"lh": path, "rh": path}``: ``.func.gii``, or ``.label.gii`` with ``label_names``.
    flat_png, inflated_png : path-like, optional
    label_names : dict of int to str, optional
        A label map: integer GIFTI labels and one colour per label.
    vmin, vmax : float, optional
        Colour range; default the 1st and 99th percentiles (labels: the label range).
    cmap : str
    title : str, optional
    units : str, optional
        The colour bar's label (a label map's bar names its labels instead).

    Returns
    -------
    dict
        ``{"lh": Path, "rh": Path, "flat": Path, "inflated": Path}`` for what was written.
    """
    fill = 0 if label_names is not None else np.nan
    maps = vertex_maps(values, hemi, vertex, n_vertices, fill=fill)
    written: dict[str, Path] = {}
    for h in gifti or {}:
        written[h] = save_gifti_map(maps[h], gifti[h], h, label_names=label_names)
    if flat_png is None and inflated_png is None:
        return written
    if label_names is not None:
        lo, hi = 0.5, max(label_names) + 0.5
        maps = {h: np.where(m > 0, m, np.nan) for h, m in maps.items()}
    else:
        finite = np.asarray(values, np.float64)[np.isfinite(values)]
        lo = float(np.percentile(finite, 1)) if vmin is None and finite.size else vmin
        hi = float(np.percentile(finite, 99)) if vmax is None and finite.size else vmax
    shown = {h: m[:FSAVERAGE5_VERTICES] for h, m in maps.items()}
    style = dict(vmin=lo, vmax=hi, cmap=_colormap(cmap, label_names), title=title, discrete=label_names is not None,
                 names=label_names, units=units)
    if flat_png is not None:
        written["flat"] = render_flat(shown, flat_png, **style)
    if inflated_png is not None:
        written["inflated"] = render_inflated(shown, inflated_png, **style)
    return written


def _colormap(cmap: str, label_names):
    import matplotlib
    from matplotlib.colors import ListedColormap

    if label_names is None:
        return matplotlib.colormaps[cmap]
    return ListedColormap(label_palette(max(label_names)))


def render_flat(maps: dict[str, np.ndarray], png_path: str | os.PathLike, *, vmin=None, vmax=None,
                cmap="viridis", title: str | None = None, discrete: bool = False, names: dict | None = None,
                units: str | None = None) -> Path:
    """Both hemispheres' fsaverage5 flat patches on the visual crop, the map over sulcal shading, a colour bar.

    Parameters
    ----------
    maps : dict
        ``{"lh": ndarray (10242,), "rh": ...}``; NaN is not drawn.
    png_path : path-like
    vmin, vmax : float
    cmap : str or Colormap
    title : str, optional
    discrete : bool
        Labels: each face takes a vertex's label (the one two of its vertices share, else its first) instead
        of interpolating.
    names : dict of int to str, optional
        Label names, written on the colour bar of a label map.
    units : str, optional
        The colour bar's label of a continuous map.
    """
    plt = _pyplot()
    from matplotlib.colors import Normalize

    norm = Normalize(vmin, vmax)
    fig, ax = plt.subplots(figsize=(7.2, 6.4))
    mappable = None
    for hemi, (xy, faces) in flat_layout().items():
        ax.tripcolor(xy[:, 0], xy[:, 1], faces, facecolors=_sulc_faces(hemi, faces), cmap="gray", vmin=0, vmax=1,
                     shading="flat")
        values = maps[hemi]
        shown = faces[np.isfinite(values[faces]).all(1)]
        if len(shown):
            if discrete:
                mappable = ax.tripcolor(xy[:, 0], xy[:, 1], shown, facecolors=_face_labels(values, shown),
                                        cmap=cmap, norm=norm, shading="flat")
            else:
                mappable = ax.tripcolor(xy[:, 0], xy[:, 1], shown, values, cmap=cmap, norm=norm, shading="gouraud")
    x0, x1, y0, y1 = visual_crop()
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    for text, x in (("L", 0.02), ("R", 0.98)):
        ax.text(x, 0.98, text, transform=ax.transAxes, ha="center", va="top", fontsize=12, weight="bold")
    _colorbar(fig, ax, mappable, norm, cmap, discrete, names=names, units=units)
    return _save(fig, png_path, title)


def render_inflated(maps: dict[str, np.ndarray], png_path: str | os.PathLike, *, vmin=None, vmax=None,
                    cmap="viridis", title: str | None = None, discrete: bool = False, names: dict | None = None,
                    units: str | None = None) -> Path:
    """Each hemisphere's inflated fsaverage5 surface from the side, the midline and below (nilearn's
    ``plot_surf``), sulcal depth as background, one colour bar.

    Parameters are those of :func:`render_flat`.
    """
    plt = _pyplot()
    from matplotlib.colors import Normalize
    from nilearn.plotting import plot_surf

    norm = Normalize(vmin, vmax)
    fig, axes = plt.subplots(2, len(_VIEWS), figsize=(3.0 * len(_VIEWS), 4.6), subplot_kw={"projection": "3d"})
    for row, hemi in enumerate(HEMIS):
        coords, faces = fsaverage5_mesh("inflated", hemi)
        for col, view in enumerate(_VIEWS):
            plot_surf((np.array(coords), np.array(faces)), surf_map=maps[hemi], bg_map=fsaverage5_sulc(hemi),
                      hemi="left" if hemi == "lh" else "right", view=view, cmap=cmap, vmin=norm.vmin, vmax=norm.vmax,
                      colorbar=False, axes=axes[row, col], engine="matplotlib")
            axes[row, col].set_title(f"{HEMI_LABEL[hemi]} {view}", fontsize=8, pad=0)
    fig.subplots_adjust(left=0, right=0.88, bottom=0, top=0.9, wspace=0, hspace=0.05)
    _colorbar(fig, fig.add_axes([0.9, 0.15, 0.02, 0.6]), None, norm, cmap, discrete, own_axes=True, names=names,
              units=units)
    return _save(fig, png_path, title, tight=False)  # a tight box would draw the 3D panels twice


def _sulc_faces(hemi: str, faces: np.ndarray) -> np.ndarray:
    """Grey level per face: light on gyri, dark in sulci (the mean sulcal depth of its vertices)."""
    return np.where(fsaverage5_sulc(hemi)[faces].mean(1) > 0, 0.55, 0.8)


def _face_labels(values: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = (values[faces[:, k]] for k in range(3))
    return np.where((a == b) | (a == c), a, np.where(b == c, b, a))


def _colorbar(fig, ax, mappable, norm, cmap, discrete: bool, own_axes: bool = False, names=None,
              units=None) -> None:
    import matplotlib.cm

    if mappable is None:
        mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    kwargs = {"cax": ax} if own_axes else {"ax": ax, "shrink": 0.6, "pad": 0.02}
    bar = fig.colorbar(mappable, **kwargs)
    if discrete:
        k = int(round(norm.vmax - 0.5))
        bar.set_ticks(range(1, k + 1) if k <= 20 else np.linspace(1, k, 5).round().astype(int))
        if names and k <= 20:
            bar.set_ticklabels([names.get(c, str(c)) for c in range(1, k + 1)])
    elif units:
        bar.set_label(units)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, png_path, title, tight: bool = True) -> Path:
    plt = _pyplot()
    png_path = Path(png_path)
    if title:
        fig.suptitle(title)
    tmp = png_path.with_name(f".{png_path.name}.part.png")
    fig.savefig(tmp, dpi=100, facecolor="white", bbox_inches="tight" if tight else None)
    plt.close(fig)
    os.replace(tmp, png_path)
    return png_path
