"""The keys below the map pictures: colour bars that label their ends, legends, a palette without grey."""

import colorsys

import numpy as np
import pytest
from PIL import Image

from fmrikit.viz.keys import Category, append_key, colorbar_ticks, draw_colorbar, draw_legend, label_palette


@pytest.mark.parametrize("vmin, vmax", [(0.0, 68.17), (-0.5, 0.5), (0.003, 0.0412)])
def test_colorbar_ticks_label_both_ends_and_never_crowd_them(vmin, vmax):
    ticks = colorbar_ticks(vmin, vmax)
    assert ticks[0] == vmin and ticks[-1] == vmax
    assert np.all(np.diff(ticks) > 0.079 * (vmax - vmin))  # no two labels on top of each other
    assert len(ticks) >= 3


@pytest.mark.parametrize("k", [2, 20, 30])
def test_palette_has_no_grey_and_distinct_colours(k):
    colours = label_palette(k)
    rgb = np.array([[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)] for c in colours])
    saturation = np.array([colorsys.rgb_to_hsv(*c)[1] for c in rgb])
    assert saturation.min() > 0.15  # a grey (saturation 0) would read as cortex
    assert len(set(colours[:min(k, 26)])) == min(k, 26)


def test_keys_are_pasted_below_the_picture(tmp_path):
    png = tmp_path / "map.png"
    Image.fromarray(np.zeros((50, 300, 3), np.uint8)).save(png)
    bar = draw_colorbar(300, vmin=0, vmax=68.2, cmap="viridis", units="noise ceiling (%)")
    legend = draw_legend(300, [Category("both", "#f2b701"), Category("TROI only", "#d62728")])
    assert bar.shape[1] == legend.shape[1] == 300
    append_key(png, bar)
    out = np.asarray(Image.open(png).convert("RGB"))
    assert out.shape[0] == 50 + bar.shape[0]
    assert (out[:50] == 0).all()  # the picture itself is untouched
    below = out[50:].astype(int)
    assert (np.abs(below[..., 0] - below[..., 2]) > 100).any()  # the colour bar's yellow end
    yellow = (np.abs(legend.astype(int) - [0xf2, 0xb7, 0x01]).sum(-1) < 30).sum()
    red = (np.abs(legend.astype(int) - [0xd6, 0x27, 0x28]).sum(-1) < 30).sum()
    assert yellow > 20 and red > 20
