"""The preprocessed dataset every later command reads (``sub-NN_desc-preproc_betas.h5``).

Contract
--------
``betas``            float32 (n_trials, n_voxels), z-scored per session, chronological order
``trials/stim_id``   int64 (n_trials,), 0-based stimulus index (NSD 73k id - 1)
``trials/session``   int16 (n_trials,), 1-based
``trials/shared``    bool (n_trials,), image seen by every subject
``voxels/ijk``       int32 (n_voxels, 3), indices into the source grid
``voxels/ncsnr``     float32 (n_voxels,), optional
root attributes      ``affine`` (4, 4), ``volume_shape`` (3,), ``subject``, ``stimuli_path``,
                     ``stimuli_dataset``, ``pycortex_subject``, ``pycortex_xfm`` (may be empty);
                     NSD sources also ``nsd_root``, ``space``, ``betas_version``
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError
from fmrikit.io.hdf5 import open_h5

REQUIRED = ("betas", "trials/stim_id", "trials/session", "trials/shared", "voxels/ijk")


@dataclass(frozen=True)
class DatasetInfo:
    """Everything in a preprocessed dataset except the betas themselves."""

    path: Path
    subject: int
    stim_id: np.ndarray
    session: np.ndarray
    shared: np.ndarray
    ijk: np.ndarray
    affine: np.ndarray
    volume_shape: tuple[int, int, int]
    stimuli_path: str
    stimuli_dataset: str
    pycortex_subject: str
    pycortex_xfm: str
    ncsnr: np.ndarray | None
    nsd_root: str = ""
    space: str = ""

    @property
    def n_trials(self) -> int:
        return len(self.stim_id)

    @property
    def n_voxels(self) -> int:
        return len(self.ijk)


def read_info(path: str | os.PathLike) -> DatasetInfo:
    """Read a preprocessed dataset's trial and voxel tables and attributes (not the betas).

    Raises
    ------
    MissingInputError, CorruptFileError
    """
    with open_h5(path) as f:
        missing = [k for k in REQUIRED if k not in f]
        if missing:
            raise CorruptFileError("not an fmrikit preprocessed dataset", path=path,
                                   expected="datasets " + ", ".join(REQUIRED), found=f"missing {missing}")
        a = f.attrs
        return DatasetInfo(
            path=Path(path), subject=int(a["subject"]),
            stim_id=f["trials/stim_id"][:], session=f["trials/session"][:], shared=f["trials/shared"][:],
            ijk=f["voxels/ijk"][:], affine=np.asarray(a["affine"]),
            volume_shape=tuple(int(v) for v in a["volume_shape"]),
            stimuli_path=str(a.get("stimuli_path", "")), stimuli_dataset=str(a.get("stimuli_dataset", "")),
            pycortex_subject=str(a.get("pycortex_subject", "")), pycortex_xfm=str(a.get("pycortex_xfm", "")),
            ncsnr=f["voxels/ncsnr"][:] if "voxels/ncsnr" in f else None,
            nsd_root=str(a.get("nsd_root", "")), space=str(a.get("space", "")),
        )


def read_betas(path: str | os.PathLike, trials: np.ndarray | slice | None = None) -> np.ndarray:
    """Read betas of some trials (all by default).

    Parameters
    ----------
    path : path-like
    trials : ndarray of int or bool, or slice, optional
        Trials to read, in dataset order.

    Returns
    -------
    ndarray of float32, shape (n_selected, n_voxels)
    """
    with open_h5(path, "betas") as f:
        ds = f["betas"]
        if trials is None:
            return ds[:]
        if isinstance(trials, slice):
            return ds[trials]
        trials = np.asarray(trials)
        if trials.dtype == bool:
            trials = np.nonzero(trials)[0]
        unique, inverse = np.unique(trials, return_inverse=True)  # h5py needs increasing indices
        return ds[unique][inverse]
