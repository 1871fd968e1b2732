"""Smooth random fields drawn as sums of random plane waves (random Fourier features)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothField:
    """A smooth random field with unit variance per output, evaluated at any point.

    Attributes
    ----------
    freq : ndarray, shape (n_components, n_dims)
        Angular frequencies (radians per unit of the points).
    phase : ndarray, shape (n_components,)
    amp : ndarray, shape (n_components, n_out)
    """

    freq: np.ndarray
    phase: np.ndarray
    amp: np.ndarray

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Values at ``points`` (n_points, n_dims): ndarray (n_points, n_out)."""
        waves = np.cos(np.asarray(points, dtype=np.float64) @ self.freq.T + self.phase)
        return np.sqrt(2.0 / len(self.phase)) * waves @ self.amp


def smooth_field(rng: np.random.Generator, n_dims: int, n_out: int, wavelength: tuple[float, float],
                 n_components: int = 48) -> SmoothField:
    """Draw a field whose plane waves have wavelengths uniform in ``wavelength`` (units of the points)."""
    direction = rng.standard_normal((n_components, n_dims))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    freq = direction * (2 * np.pi / rng.uniform(*wavelength, n_components))[:, None]
    return SmoothField(freq, rng.uniform(0, 2 * np.pi, n_components), rng.standard_normal((n_components, n_out)))
