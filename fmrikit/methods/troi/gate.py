"""TROI's weighted input mask over a subject's voxels (Lin et al. 2025, eqs. 6-7 and the low-pass of section 2.2)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn


class VoxelGate(nn.Module):
    """TROI's weighted input mask: ``x * (weight * alive)`` with a LASSO penalty on the weights.

    After every optimiser step the weights are low-pass filtered (when a filter is given) and every voxel whose
    filtered weight is below ``threshold`` is set to zero for good: the LASSO drives the weights of voxels that do
    not help the task towards zero, the filter lets a voxel's neighbours vote (spatial locality), the threshold
    removes it.

    Parameters
    ----------
    n_voxels : int
    threshold : float
        Filtered weights below it are zeroed after every step.
    lasso : float
        LASSO coefficient of ``sum(|weight|)``; a buffer (saved in checkpoints) that a schedule may change.
    lowpass : callable, optional
        ``f(weights (V,) float64) -> (V,)``, the spatial filter applied before thresholding.

    Attributes
    ----------
    weight : Parameter, shape (n_voxels,)
        Starts at 1.
    alive : Tensor of bool, shape (n_voxels,)
    """

    def __init__(self, n_voxels: int, threshold: float = 0.5, lasso: float = 0.0,
                 lowpass: Callable[[np.ndarray], np.ndarray] | None = None):
        super().__init__()
        self.threshold, self.lowpass = threshold, lowpass
        self.weight = nn.Parameter(torch.ones(n_voxels))
        self.register_buffer("alive", torch.ones(n_voxels, dtype=torch.bool))
        self.register_buffer("lasso", torch.tensor(float(lasso)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.weight * self.alive)

    def penalty(self) -> torch.Tensor:
        return self.lasso * (self.weight * self.alive).abs().sum()

    @torch.no_grad()
    def scores(self) -> np.ndarray:
        """The weights of the alive voxels, low-pass filtered when a filter is given (dead voxels count 0), (V,)."""
        w = (self.weight * self.alive).cpu().numpy().astype(np.float64)
        return self.lowpass(w) if self.lowpass is not None else w

    @torch.no_grad()
    def after_step(self) -> None:
        keep = torch.from_numpy(self.scores() >= self.threshold).to(self.alive.device)
        self.alive &= keep
        self.weight.mul_(self.alive)

    @torch.no_grad()
    def keep_only(self, keep: np.ndarray) -> None:
        """Zero every voxel outside ``keep`` (bool, (V,))."""
        self.alive &= torch.from_numpy(np.asarray(keep, bool)).to(self.alive.device)
        self.weight.mul_(self.alive)
