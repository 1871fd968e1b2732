"""Trial noise of a simulated subject: spatially smooth, with a global per-trial component.

White noise on the brain voxels is smoothed by a separable 3 x 3 x 3 kernel with taps
(b, 1, b) per axis; each voxel is then rescaled to unit variance. Smoothed white noise has the
neighbour correlation rho = 2b / (1 + 2b^2), and the FWHM (voxels) of the Gaussian kernel that
gives the same rho is sqrt(-2 ln 2 / ln rho) (the estimator of AFNI's 3dFWHMx); b is solved for
the configured FWHM, which this kernel reaches up to 2 voxels (rho = 1 / sqrt(2)).
"""

from __future__ import annotations

import numpy as np

from fmrikit.data.world import params as P
from fmrikit.data.world.fields import smooth_field
from fmrikit.errors import InputError


def neighbour_correlation(fwhm: float) -> float:
    """Correlation of adjacent voxels of a field with this FWHM (voxels)."""
    return float(2.0 ** (-2.0 / fwhm ** 2)) if fwhm > 0 else 0.0


class NoiseGenerator:
    """Draws (n_brain, n_trials) noise of unit variance per voxel.

    Parameters
    ----------
    brain_ijk : ndarray of int, shape (n_brain, 3)
        Brain voxels.
    shape : tuple of int
        Grid (X, Y, Z).
    fwhm : float
        Smoothness in voxels, 0 (white) to 2.
    global_share : float
        Share of each voxel's noise variance that is one value per trial, common to all voxels.
    """

    def __init__(self, brain_ijk: np.ndarray, shape: tuple[int, int, int], fwhm: float = P.NOISE_FWHM_VOXELS,
                 global_share: float = P.GLOBAL_SHARE):
        import scipy.sparse as sp

        if not 0 <= fwhm <= 2:
            raise InputError("noise smoothness must be 0 to 2 voxels FWHM", found=str(fwhm))
        rho = neighbour_correlation(fwhm)
        b = (1 - np.sqrt(max(0.0, 1 - 2 * rho ** 2))) / (2 * rho) if rho > 0 else 0.0
        n = len(brain_ijk)
        index = np.full(shape, -1, dtype=np.int64)
        index[tuple(brain_ijk.T)] = np.arange(n)
        rows, cols, vals = [], [], []
        for offset in np.stack(np.meshgrid(*[(-1, 0, 1)] * 3, indexing="ij"), -1).reshape(-1, 3):
            weight = b ** np.abs(offset).sum()
            if weight == 0:
                continue
            nb = brain_ijk + offset
            ok = np.all((nb >= 0) & (nb < shape), axis=1)
            j = np.full(n, -1)
            j[ok] = index[tuple(nb[ok].T)]
            keep = j >= 0
            rows.append(np.nonzero(keep)[0])
            cols.append(j[keep])
            vals.append(np.full(keep.sum(), weight))
        smooth = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        norm = np.sqrt(np.asarray(smooth.multiply(smooth).sum(1)).ravel())
        self.smooth = sp.diags(1 / norm) @ smooth
        self.smooth = self.smooth.astype(np.float32).tocsr()
        self.global_share = global_share
        self.n = n

    def draw(self, n_trials: int, rng: np.random.Generator) -> np.ndarray:
        """Noise of ``n_trials`` trials, float32 (n_brain, n_trials), sd 1 per voxel."""
        white = rng.standard_normal((self.n, n_trials), dtype=np.float32)
        local = self.smooth @ white
        local *= np.float32(np.sqrt(1 - self.global_share))
        local += np.float32(np.sqrt(self.global_share)) * rng.standard_normal(n_trials, dtype=np.float32)
        return local


def noise_levels(world_mm: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Trial noise sd of each voxel (% signal change): ``noise`` times a smooth log-normal field.

    Parameters
    ----------
    world_mm : ndarray, shape (n_voxels, 3)
        Voxel centres (mm).
    noise : float
    rng : numpy.random.Generator
    """
    return noise * np.exp(P.NOISE_LOG_SD * smooth_field(rng, 3, 1, P.NOISE_WAVELENGTH_MM)(world_mm)[:, 0])
