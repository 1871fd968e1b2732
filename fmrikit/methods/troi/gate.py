"""TROI's weighted input mask over a subject's voxels (Lin et al. 2025, eqs. 6-7 and the low-pass of section 2.2)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn


class VoxelGate(nn.Module):
    """TROI's weighted input mask: ``x * (weight * alive)``, trained with a LASSO on the weights.

    The LASSO term ``lasso * sum(|weight|)`` of the paper's loss (eq. 6) is minimised by proximal gradient descent
    (ISTA): the task loss's gradient moves the weights through the optimiser, then :meth:`after_step` soft-thresholds
    them by ``step_size * lasso`` (a weight whose task gradient does not hold it up shrinks to zero). The weights are
    then low-pass filtered (when a filter is given) and every voxel whose filtered weight is below ``threshold`` is
    set to zero for good (eq. 7): the LASSO drives the weights of voxels that do not help the task down, the filter
    lets a voxel's neighbours vote (spatial locality), the threshold removes it. Done as a proximal step rather than
    a gradient in the loss because an adaptive optimiser (AdamW) divides every weight's gradient by its own scale:
    a LASSO gradient, the same for every weight, then moves informative and noise voxels alike.

    Parameters
    ----------
    n_voxels : int
    threshold : float
        Filtered weights below it are zeroed after every step.
    lasso : float
        LASSO coefficient; a buffer (saved in checkpoints) that a schedule may change.
    lowpass : callable, optional
        ``f(weights (V,) float64) -> (V,)``, the spatial filter applied before thresholding.
    step_size : float
        Step size of the proximal step (the mask weights' learning rate): each step shrinks ``|weight|`` by
        ``step_size * lasso``.
    floor : int
        The threshold never leaves fewer voxels than this: a step that would keeps the ``floor`` voxels with the
        highest filtered weights (the budget's guarantee from below; 0: no floor).

    Attributes
    ----------
    weight : Parameter, shape (n_voxels,)
        Starts at 1.
    alive : Tensor of bool, shape (n_voxels,)
    """

    def __init__(self, n_voxels: int, threshold: float = 0.5, lasso: float = 0.0,
                 lowpass: Callable[[np.ndarray], np.ndarray] | None = None, step_size: float = 1.0,
                 floor: int = 0):
        super().__init__()
        self.threshold, self.lowpass, self.step_size, self.floor = threshold, lowpass, step_size, floor
        self.weight = nn.Parameter(torch.ones(n_voxels))
        self.register_buffer("alive", torch.ones(n_voxels, dtype=torch.bool))
        self.register_buffer("lasso", torch.tensor(float(lasso)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.weight * self.alive)

    def penalty(self) -> torch.Tensor:
        """0: the LASSO acts through the proximal step of :meth:`after_step`, not through the loss's gradient."""
        return self.weight.new_zeros(())

    def lasso_value(self) -> float:
        """The LASSO term ``lasso * sum(|weight|)`` of the objective (for the log)."""
        return float(self.lasso * (self.weight * self.alive).detach().abs().sum())

    @torch.no_grad()
    def scores(self) -> np.ndarray:
        """The weights of the alive voxels, low-pass filtered when a filter is given (dead voxels count 0), (V,)."""
        w = (self.weight * self.alive).cpu().numpy().astype(np.float64)
        return self.lowpass(w) if self.lowpass is not None else w

    @torch.no_grad()
    def after_step(self) -> None:
        """Soft-threshold the weights by ``step_size * lasso``, then remove the voxels whose filtered weight falls
        below the threshold; nothing once the mask is down to the floor."""
        if self.floor and int(self.alive.sum()) <= self.floor:
            return
        shrink = self.step_size * self.lasso
        self.weight.copy_(torch.sign(self.weight) * (self.weight.abs() - shrink).clamp_min(0))
        scores = self.scores()
        alive = self.alive.cpu().numpy()
        keep = alive & (scores >= self.threshold)
        if keep.sum() < min(self.floor, alive.sum()):
            keep = np.zeros_like(alive)
            keep[np.argsort(-np.where(alive, scores, -np.inf), kind="stable")[:self.floor]] = True
        self.keep_only(keep)

    @torch.no_grad()
    def keep_only(self, keep: np.ndarray) -> None:
        """Zero every voxel outside ``keep`` (bool, (V,))."""
        self.alive &= torch.from_numpy(np.asarray(keep, bool)).to(self.alive.device)
        self.weight.mul_(self.alive)
