"""Image montages: the reconstruction contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def contact_sheet(path: Path, images: np.ndarray, truth: list[np.ndarray] | None, names: list[str],
                   tile: int = 128, columns: int = 4) -> None:
    """A PNG grid: per input, [ground truth |] its samples, labelled by name."""
    from PIL import Image, ImageDraw

    n_samples, n = images.shape
    per = n_samples + (truth is not None)
    cols = max(1, columns // per) * per
    rows = -(-n * per // cols)
    sheet = Image.new("RGB", (cols * tile, rows * (tile + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for k in range(n):
        tiles = ([truth[k]] if truth is not None else []) + [images[s, k] for s in range(n_samples)]
        for j, im in enumerate(tiles):
            slot = k * per + j
            x, y = (slot % cols) * tile, (slot // cols) * (tile + 14)
            sheet.paste(Image.fromarray(im).resize((tile, tile), Image.BICUBIC), (x, y + 14))
            label = ("truth " if truth is not None and j == 0 else "") + names[k].split("_")[-1]
            draw.text((x + 2, y + 1), label, fill="black")
    sheet.save(path)
