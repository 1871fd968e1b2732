"""Image montages: the reconstruction contact sheet, a label's (cluster's) row of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def contact_sheet(path: Path, images: np.ndarray, truth: list[np.ndarray] | None, names: list[str],
                  tile: int = 128, columns: int = 4) -> None:
    """A PNG grid: per input, [ground truth |] its samples, each labelled (``truth <id>`` / ``<id>``) above it."""
    from PIL import Image, ImageDraw

    from fmrikit.viz.keys import title_font

    n_samples, n = images.shape
    per = n_samples + (truth is not None)
    cols = max(1, columns // per) * per
    rows = -(-n * per // cols)
    band = 18
    sheet = Image.new("RGB", (cols * tile, rows * (tile + band)), "white")
    draw = ImageDraw.Draw(sheet)
    font = title_font(13)
    for k in range(n):
        tiles = ([truth[k]] if truth is not None else []) + [images[s, k] for s in range(n_samples)]
        for j, im in enumerate(tiles):
            slot = k * per + j
            x, y = (slot % cols) * tile, (slot // cols) * (tile + band)
            sheet.paste(Image.fromarray(im).resize((tile, tile), Image.BICUBIC), (x, y + band))
            label = ("truth " if truth is not None and j == 0 else "") + names[k].split("_")[-1]
            draw.text((x + 3, y + 1), label, fill="black", font=font)
    sheet.save(path)


def label_montage(images: list[np.ndarray], path: Path, label: int, k: int, what: str, *, noun: str = "cluster",
                  size: int = 128) -> None:
    """One row of images under a band of label ``label``'s map colour (:func:`~fmrikit.viz.keys.label_palette`)
    that names it, e.g. ``cluster 3 of 20: its top 8 images``, in a readable font.

    Parameters
    ----------
    images : list of ndarray, each (H, W, 3) uint8
    path : Path
        The PNG.
    label, k : int
        The label (1..k) and the number of labels.
    what : str
        What the images are.
    noun : str
        What a label is.
    size : int
        Side of each tile (px).
    """
    from PIL import Image, ImageDraw

    from fmrikit.viz.keys import label_palette, title_font

    color = label_palette(k)[label - 1]
    tiles = [np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in images]
    row = Image.fromarray(np.concatenate(tiles, axis=1))
    band = 36
    sheet = Image.new("RGB", (max(row.width, 460), row.height + band), "white")
    draw = ImageDraw.Draw(sheet)
    draw.rectangle([0, 0, sheet.width, band - 4], fill=color)
    luminance = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)]) @ [0.299, 0.587, 0.114]
    draw.text((8, 3), f"{noun} {label} of {k}: {what}", fill="black" if luminance > 140 else "white",
              font=title_font(22))
    sheet.paste(row, (0, band))
    sheet.save(path)
