"""Gabor energy features: the classic retinotopic encoding-model feature space, without learned weights.

Images are resized to ``side`` px (bilinear, antialiased) and turned into three channels: luminance
(0.299 R + 0.587 G + 0.114 B), red-green (R - G) and blue-yellow (B - (R + G) / 2), RGB in [0, 1].
Scale ``s`` resizes them again to ``side / 2**s`` px (bilinear, antialiased) and filters each channel with
a quadrature pair of Gabor filters per orientation, all at :data:`FREQUENCY` cycles per pixel of that
level (``side * FREQUENCY / 2**s`` cycles per image: 24, 12, 6, 3 at the defaults), one octave of
bandwidth. The energy ``sqrt(even**2 + odd**2)`` is a local contrast amplitude, kept linear (no
compression): a grating of amplitude A at the preferred frequency and orientation gives about A / 2 at
scale 0 and about 0.35 A at coarser scales (the antialiasing filter of the resize attenuates it).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from fmrikit.errors import InputError
from fmrikit.features.networks import FeatureNetwork
from fmrikit.features.base import FeatureExtractor

#: Preferred spatial frequency of every filter, cycles per pixel of its pyramid level.
FREQUENCY = 0.25
#: Gaussian envelope sigma times frequency for a one-octave bandwidth: sqrt(ln 2 / 2) / pi * 3.
SIGMA_TIMES_FREQUENCY = math.sqrt(math.log(2) / 2) / math.pi * 3
#: Channels, in order, and their weights on (R, G, B).
CHANNELS = {"luminance": (0.299, 0.587, 0.114), "red-green": (1.0, -1.0, 0.0), "blue-yellow": (-0.5, -0.5, 1.0)}


def gabor_kernels(n_orientations: int, frequency: float = FREQUENCY) -> np.ndarray:
    """A bank of quadrature Gabor pairs.

    ``g(x, y) = exp(-(x**2 + y**2) / (2 sigma**2)) / (2 pi sigma**2) * exp(2j pi f (x cos t + y sin t))``
    on a ``(2r + 1)``-px square, ``r = ceil(3 sigma)``, ``sigma = SIGMA_TIMES_FREQUENCY / f``, x right and
    y down (pixels); orientation ``t = k pi / n_orientations``, the direction the carrier varies along
    (``t = 0``: vertical bars). The even (real) part has a multiple of the envelope removed so it sums to
    zero: uniform regions give no response.

    Parameters
    ----------
    n_orientations : int
    frequency : float
        Cycles per pixel.

    Returns
    -------
    ndarray of float64, shape (2, n_orientations, 2r + 1, 2r + 1)
        Even kernels, then odd (imaginary part) kernels.
    """
    sigma = SIGMA_TIMES_FREQUENCY / frequency
    r = math.ceil(3 * sigma)
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    envelope = np.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2)) / (2 * np.pi * sigma ** 2)
    out = np.empty((2, n_orientations) + x.shape)
    for k in range(n_orientations):
        theta = k * np.pi / n_orientations
        phase = 2 * np.pi * frequency * (x * np.cos(theta) + y * np.sin(theta))
        even = envelope * np.cos(phase)
        out[0, k] = even - envelope * even.sum() / envelope.sum()
        out[1, k] = envelope * np.sin(phase)
    return out


class GaborBank(torch.nn.Module):
    """Gabor energy maps of RGB images.

    Parameters
    ----------
    scales : sequence of int
        Pyramid levels, 0 finest (``side / 2**s`` px each).
    n_orientations : int
    side : int
        Input side (px).
    """

    def __init__(self, scales: Sequence[int], n_orientations: int, side: int):
        super().__init__()
        kernels = gabor_kernels(n_orientations)
        self.scales = tuple(scales)
        self.side = side
        self.radius = kernels.shape[-1] // 2
        self.register_buffer("weight", torch.from_numpy(kernels.reshape(-1, 1, *kernels.shape[2:])).float())
        self.register_buffer("opponent", torch.tensor(list(CHANNELS.values())))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Energy maps.

        Parameters
        ----------
        x : Tensor, shape (B, 3, side, side)
            RGB in [0, 1].

        Returns
        -------
        list of Tensor, one per scale, shape (B, 3 * n_orientations, side / 2**s, side / 2**s)
            Channel index ``c * n_orientations + k`` for colour channel ``c`` (:data:`CHANNELS` order) and
            orientation ``k``.
        """
        f = torch.nn.functional
        opp = torch.einsum("ck,bkhw->bchw", self.opponent.to(x.dtype), x)
        n = self.weight.shape[0] // 2
        maps = []
        for s in self.scales:
            y = opp if s == 0 else f.interpolate(opp, size=(self.side >> s,) * 2, mode="bilinear",
                                                 align_corners=False, antialias=True)
            b, c, h, w = y.shape
            y = f.pad(y.reshape(b * c, 1, h, w), (self.radius,) * 4, mode="reflect")
            resp = f.conv2d(y, self.weight.to(y.dtype))
            maps.append(torch.hypot(resp[:, :n], resp[:, n:]).reshape(b, c * n, h, w))
        return maps


class GaborExtractor(FeatureExtractor):
    """Multi-scale, multi-orientation Gabor energy in luminance and two colour-opponent channels.

    Parameters
    ----------
    scales : sequence of int, optional
        Pyramid levels (0 finest, ``side / 2**s`` px), default (0, 1, 2, 3): 24, 12, 6 and 3 cycles per
        image at 96 px.
    n_orientations : int
        Orientations ``k * 180 / n_orientations`` degrees.
    side : int
        Images are first resized to ``side x side`` px.
    grid : int
        ``patches``: energy averaged on a ``grid x grid`` grid of each level (row-major).
    pooled_grid : int
        ``pooled``: energy averaged on a coarser ``pooled_grid x pooled_grid`` grid.

    Notes
    -----
    ``patches``: (N, L, grid**2, 3 * n_orientations), default (N, 4, 64, 24); channel index
    ``c * n_orientations + k`` (colour channel c of :data:`CHANNELS`, orientation k).
    ``pooled``: (N, L * pooled_grid**2 * 3 * n_orientations), default (N, 1536), ordered (level, cell,
    channel). Both keep spatial position.
    """

    name = "gabor"
    VERSION = 1  # bump when the definition of the features changes

    def __init__(self, scales: Sequence[int] | None = None, n_orientations: int = 8, side: int = 96,
                 grid: int = 8, pooled_grid: int = 4):
        scales = (0, 1, 2, 3) if scales is None else tuple(int(s) for s in scales)
        if not scales or min(scales) < 0 or len(set(scales)) != len(scales):
            raise InputError("Gabor scales must be distinct levels >= 0", expected="e.g. 0, 1, 2, 3",
                             found=str(scales))
        for label, value in (("n_orientations", n_orientations), ("grid", grid), ("pooled_grid", pooled_grid)):
            if value < 1:
                raise InputError(f"{label} must be positive", expected=">= 1", found=str(value))
        radius = gabor_kernels(1).shape[-1] // 2
        if side >> max(scales) <= radius:
            raise InputError("image side too small for the coarsest Gabor scale",
                             expected=f"side / 2**{max(scales)} > {radius} px", found=f"side {side}")
        self.scales, self.n_orientations, self.side = scales, int(n_orientations), int(side)
        self.grid, self.pooled_grid = int(grid), int(pooled_grid)
        self.patch_shape = (len(scales), self.grid ** 2, len(CHANNELS) * self.n_orientations)

    def config(self) -> dict:
        return {"name": self.name, "version": self.VERSION, "scales": list(self.scales),
                "n_orientations": self.n_orientations, "side": self.side, "grid": self.grid,
                "pooled_grid": self.pooled_grid, "frequency": FREQUENCY, "channels": list(CHANNELS),
                "resize": "bilinear antialiased"}

    def _network(self, kind: str) -> FeatureNetwork:
        bank = GaborBank(self.scales, self.n_orientations, self.side)
        pool = torch.nn.functional.adaptive_avg_pool2d
        if kind == "pooled":
            def forward(x):
                return torch.cat([pool(m, self.pooled_grid).flatten(2).transpose(1, 2).flatten(1) for m in bank(x)], 1)
        else:
            def forward(x):
                return torch.stack([pool(m, self.grid).flatten(2).transpose(1, 2) for m in bank(x)], 1)
        return FeatureNetwork(f"gabor:{kind}", bank, forward, self.side, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0),
                              antialias=True)
