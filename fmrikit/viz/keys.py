"""The key under every map picture: a labelled colour bar for a continuous map, a legend of colour patches for a
mask or label map, and the palette of label maps.

A key is drawn as its own strip and pasted below the map (:func:`append_key`), so it never sits on the cortex.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Label colours: tab20's hues without its two greys (a grey reads as cortex on a flatmap), strong ones first,
#: then hues tab20 lacks (from Trubetskoy's list of 20 distinct colours); beyond these the list repeats.
_TAB20_STRONG = (0, 2, 4, 6, 8, 10, 12, 16, 18)
_TAB20_LIGHT = (1, 3, 5, 7, 9, 11, 13, 17, 19)
_EXTRA = ("#ffe119", "#000075", "#911eb4", "#f032e6", "#800000", "#bcf60c", "#aaffc3", "#808000")


def label_palette(k: int) -> list[str]:
    """``k`` distinct hex colours for labels 1..k, none of them grey.

    Parameters
    ----------
    k : int

    Returns
    -------
    list of str
        ``#rrggbb`` colours.
    """
    import matplotlib
    from matplotlib.colors import to_hex

    tab20 = matplotlib.colormaps["tab20"]
    base = [to_hex(tab20(i)) for i in _TAB20_STRONG + _TAB20_LIGHT] + list(_EXTRA)
    return [base[i % len(base)] for i in range(k)]


@dataclass(frozen=True)
class Category:
    """One entry of a label map's legend: its name and colour (``#rrggbb`` or a matplotlib colour name)."""

    name: str
    color: str


def colorbar_ticks(vmin: float, vmax: float, n: int = 5) -> np.ndarray:
    """Round ticks inside [vmin, vmax] plus both ends, so the maximum (and minimum) is always labelled.

    Round ticks closer than 12 % of the range to an end are dropped so that labels never overlap.
    """
    from matplotlib.ticker import MaxNLocator

    inner = [t for t in MaxNLocator(n).tick_values(vmin, vmax)
             if vmin + 0.12 * (vmax - vmin) < t < vmax - 0.12 * (vmax - vmin)]
    return np.array([vmin, *inner, vmax], dtype=np.float64)


def tick_label(value: float, span: float) -> str:
    """A tick's text with as many decimals as the colour range needs."""
    digits = 0 if span >= 20 else 1 if span >= 2 else 2 if span >= 0.2 else 3
    return f"{value:.{digits}f}"


def draw_colorbar(width_px: int, *, vmin: float, vmax: float, cmap, units: str | None,
                  extend: str = "neither", dpi: int = 100) -> np.ndarray:
    """A horizontal colour bar strip with its units below it.

    Parameters
    ----------
    width_px : int
        Width of the picture the strip goes under.
    vmin, vmax : float
    cmap : str or Colormap
    units : str, optional
        The bar's label (what the colour means, with its unit).
    extend : {"neither", "min", "max", "both"}
        Arrows at the ends whose values lie beyond the colour range.
    dpi : int

    Returns
    -------
    ndarray of uint8, shape (H, width_px, 3)
    """
    import matplotlib
    from matplotlib.colors import Normalize

    plt = _pyplot()
    fig = plt.figure(figsize=(width_px / dpi, 1.1 if units else 0.75), dpi=dpi)
    bar_width = min(0.6, 420 / max(width_px, 1))
    cax = fig.add_axes([(1 - bar_width) / 2, 0.62 if units else 0.5, bar_width, 0.2 if units else 0.3])
    bar = fig.colorbar(matplotlib.cm.ScalarMappable(Normalize(vmin, vmax), matplotlib.colormaps[cmap]
                                                    if isinstance(cmap, str) else cmap),
                       cax=cax, orientation="horizontal", extend=extend)
    ticks = colorbar_ticks(vmin, vmax)
    bar.set_ticks(ticks)
    bar.set_ticklabels([tick_label(t, vmax - vmin) for t in ticks])
    bar.ax.tick_params(labelsize=12)
    if units:
        bar.set_label(units, fontsize=13)
    return _to_array(fig, dpi)


def draw_legend(width_px: int, categories: list[Category], *, dpi: int = 100) -> np.ndarray:
    """A legend strip of colour patches and names, several per row; entries with long names (more than 8
    characters, e.g. beside numbered labels) get rows of their own so that short ones stay compact.

    Returns
    -------
    ndarray of uint8, shape (H, width_px, 3)
    """
    from matplotlib.patches import Patch

    plt = _pyplot()
    groups = [g for g in ([c for c in categories if len(c.name) <= 8], [c for c in categories if len(c.name) > 8])
              if g]
    layout = []
    for group in groups:
        longest = max(len(c.name) for c in group)
        fits = max(1, min(len(group), int(width_px / dpi / (0.55 + 0.1 * longest))))
        rows = -(-len(group) // fits)
        layout.append((group, -(-len(group) // rows), rows))  # as few columns as the rows need: even rows
    heights = [0.32 * rows for _, _, rows in layout]
    fig = plt.figure(figsize=(width_px / dpi, 0.15 + sum(heights)), dpi=dpi)
    top = 1.0
    for (group, ncol, rows), height in zip(layout, heights):
        share = height / (0.15 + sum(heights))
        handles = [Patch(facecolor=c.color, edgecolor="#333333", linewidth=0.5, label=c.name) for c in group]
        handles += [Patch(visible=False, label="") for _ in range(rows * ncol - len(group))]
        # matplotlib fills a legend column by column: hand it the grid transposed so that rows read 1, 2, 3, ...
        handles = [handles[r * ncol + c] for c in range(ncol) for r in range(rows)]
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, top), ncol=ncol, frameon=False,
                   fontsize=12, handlelength=1.4, columnspacing=1.2, borderaxespad=0.2)
        top -= share
    return _to_array(fig, dpi)


def append_key(png_path: str | os.PathLike, key: np.ndarray) -> Path:
    """Paste a key strip (colour bar or legend) below the picture in ``png_path``, in place."""
    from PIL import Image

    png_path = Path(png_path)
    with Image.open(png_path) as img:
        top = np.asarray(img.convert("RGB"))
    width = max(top.shape[1], key.shape[1])
    canvas = np.full((top.shape[0] + key.shape[0], width, 3), 255, np.uint8)
    canvas[:top.shape[0], (width - top.shape[1]) // 2:(width - top.shape[1]) // 2 + top.shape[1]] = top
    canvas[top.shape[0]:, (width - key.shape[1]) // 2:(width - key.shape[1]) // 2 + key.shape[1]] = key
    Image.fromarray(canvas).save(png_path, format="PNG")
    return png_path


def _to_array(fig, dpi: int) -> np.ndarray:
    from PIL import Image

    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def title_font(size: int):
    """A PIL font of ``size`` px for titles drawn on montages: matplotlib's bundled DejaVu Sans (always installed
    with matplotlib), else PIL's default font."""
    from PIL import ImageFont

    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (OSError, ValueError):
        return ImageFont.load_default()
