"""TROI's weighted input mask over a subject's voxels."""

from __future__ import annotations

import torch
from torch import nn


class VoxelGate(nn.Module):
    """TROI's weighted input mask: ``x * (weight * alive)`` with an L1 penalty on the weights.

    Parameters
    ----------
    n_voxels : int
    threshold : float
        After every optimiser step, weights below it are set to zero and stay zero.
    lasso : float
        LASSO coefficient of ``sum(|weight|)``.
    """

    def __init__(self, n_voxels: int, threshold: float = 0.05, lasso: float = 1e-3):
        super().__init__()
        self.threshold, self.lasso = threshold, lasso
        self.weight = nn.Parameter(torch.ones(n_voxels))
        self.register_buffer("alive", torch.ones(n_voxels, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.weight * self.alive)

    def penalty(self) -> torch.Tensor:
        return self.lasso * (self.weight * self.alive).abs().sum()

    @torch.no_grad()
    def after_step(self) -> None:
        self.alive &= self.weight >= self.threshold
        self.weight.mul_(self.alive)
