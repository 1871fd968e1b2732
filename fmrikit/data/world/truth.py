"""Read a simulated tree's ground truth (``simulation_truth.h5``).

Layout of the file (world version 2). Root attributes: ``areas``, ``voxel_classes``,
``categories``, ``term_names``, ``description_names``, ``world_version``, ``noise_free``,
``config`` (JSON). ``images/``: per image (row = 73k id - 1) ``category``, ``subtype``,
``object_size``, ``object_xy``, ``count``, ``colour``, ``description`` (z-scored, float32).
Per subject ``subjNN/``:

* volumes (X, Y, Z): ``informative_mask``, ``voxel_class``, ``area``, ``ncsnr`` (true),
  ``noise_ceiling`` (true, %, 3 trials);
* per informative voxel, in one order: ``voxels/ijk``, ``voxels/area``, ``voxels/class``,
  ``voxels/amplitude`` and ``voxels/noise_sd`` (% signal change), ``prf/x_y_sigma_exponent``
  (deg, y up; NaN beyond the early areas), ``prf/size`` (sigma / sqrt(exponent), deg),
  ``weights/terms`` (signed weights of contrast energy, luminance, L-M, S-(L+M)),
  ``weights/semantic`` (weights on ``images/description``; NaN in early areas);
* ``responses/noise_free``: float32 (n_images, n_informative), the noise-free response (% signal
  change around the voxel's mean) of every informative voxel to every image.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmrikit.errors import DataValueError, MissingInputError

TRUTH_FILE = "simulation_truth.h5"


@dataclass(frozen=True)
class SubjectTruth:
    """One subject's informative voxels and their parameters (rows in one order).

    Attributes
    ----------
    ijk : ndarray of int64, shape (n_inf, 3)
    area, voxel_class : ndarray of int64, shape (n_inf,)
        Indices into ``areas`` and ``voxel_classes``.
    prf : ndarray, shape (n_inf, 4)
        x, y, sigma (deg), CSS exponent; NaN beyond the early areas.
    prf_size : ndarray, shape (n_inf,)
        sigma / sqrt(exponent) (deg).
    term_weights : ndarray, shape (n_inf, 4)
    semantic : ndarray, shape (n_inf, n_features)
    amplitude, noise_sd : ndarray, shape (n_inf,)
        % signal change.
    areas, voxel_classes, description_names : list of str
    """

    ijk: np.ndarray
    area: np.ndarray
    voxel_class: np.ndarray
    prf: np.ndarray
    prf_size: np.ndarray
    term_weights: np.ndarray
    semantic: np.ndarray
    amplitude: np.ndarray
    noise_sd: np.ndarray
    areas: list[str]
    voxel_classes: list[str]
    description_names: list[str]

    @property
    def ncsnr(self) -> np.ndarray:
        """True noise-ceiling SNR, (n_inf,)."""
        return self.amplitude / self.noise_sd


def truth_path(nsd_root: str | os.PathLike) -> Path:
    """``simulation_truth.h5`` of a simulated tree, checked to exist and to be world version 2."""
    import h5py

    path = Path(nsd_root) / TRUTH_FILE
    if not path.is_file():
        raise MissingInputError("not a simulated NSD tree (no ground truth)", path=path)
    with h5py.File(path, "r") as f:
        version = int(f.attrs.get("world_version", 1))
    if version < 2:
        raise DataValueError("simulated world too old for this reader; simulate it again", path=path,
                             expected="world version 2", found=f"version {version}")
    return path


def read_truth(nsd_root: str | os.PathLike, subject: int) -> SubjectTruth:
    """A subject's informative voxels and their true parameters."""
    import h5py

    path = truth_path(nsd_root)
    with h5py.File(path, "r") as f:
        grp = _group(f, subject, path)
        return SubjectTruth(
            ijk=grp["voxels/ijk"][:].astype(np.int64), area=grp["voxels/area"][:].astype(np.int64),
            voxel_class=grp["voxels/class"][:].astype(np.int64), prf=grp["prf/x_y_sigma_exponent"][:],
            prf_size=grp["prf/size"][:], term_weights=grp["weights/terms"][:], semantic=grp["weights/semantic"][:],
            amplitude=grp["voxels/amplitude"][:], noise_sd=grp["voxels/noise_sd"][:],
            areas=list(f.attrs["areas"]), voxel_classes=list(f.attrs["voxel_classes"]),
            description_names=list(f.attrs["description_names"]))


def read_noise_free(nsd_root: str | os.PathLike, subject: int, stim_id: np.ndarray,
                    ijk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free responses of the given voxels to the given images.

    Parameters
    ----------
    nsd_root : path-like
    subject : int
    stim_id : ndarray of int, shape (n_images,)
        0-based stimulus ids (73k id - 1).
    ijk : ndarray of int, shape (n_voxels, 3)

    Returns
    -------
    responses : ndarray of float32, shape (n_images, n_voxels)
        % signal change around each voxel's mean; 0 for voxels without signal.
    has_signal : ndarray of bool, shape (n_voxels,)
    """
    import h5py

    from fmrikit.io.nifti import volume_index

    path = truth_path(nsd_root)
    stim_id = np.asarray(stim_id, dtype=np.int64)
    with h5py.File(path, "r") as f:
        grp = _group(f, subject, path)
        shape = grp["informative_mask"].shape
        n_images = grp["responses/noise_free"].shape[0]
        if stim_id.size and (stim_id.min() < 0 or stim_id.max() >= n_images):
            raise DataValueError("stimulus id outside the simulated image set", path=path,
                                 expected=f"0..{n_images - 1}", found=f"{stim_id.min()}..{stim_id.max()}")
        order = np.argsort(stim_id, kind="stable")
        unique, inverse = np.unique(stim_id[order], return_inverse=True)
        block = grp["responses/noise_free"][unique]  # h5py reads increasing indices
        rows = np.empty_like(order)
        rows[order] = inverse
        truth_ijk = grp["voxels/ijk"][:].astype(np.int64)
    where = np.full(int(np.prod(shape)), -1, dtype=np.int64)
    where[volume_index(truth_ijk, shape)] = np.arange(len(truth_ijk))
    col = where[volume_index(np.asarray(ijk, dtype=np.int64), shape)]
    has_signal = col >= 0
    out = np.zeros((len(stim_id), len(col)), dtype=np.float32)
    out[:, has_signal] = block[rows][:, col[has_signal]]
    return out, has_signal


def world_config(nsd_root: str | os.PathLike) -> dict:
    """The configuration a simulated tree was written with."""
    import h5py

    with h5py.File(truth_path(nsd_root), "r") as f:
        return json.loads(f.attrs["config"])


def _group(f, subject: int, path: Path):
    label = f"subj{subject:02d}"
    if label not in f:
        raise MissingInputError("subject not in the simulated world", path=path, expected=label,
                                found=", ".join(k for k in f if k.startswith("subj")))
    return f[label]
