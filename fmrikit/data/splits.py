"""Training and test splits of a subject's preprocessed dataset, and their image targets.

As in MindEye2, the images every subject saw (``trials/shared``) are the test set, averaged
over their repeats; training uses the other trials only, so no pretraining subject ever sees a
test image.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fmrikit.data.dataset import DatasetInfo, read_betas, read_info
from fmrikit.errors import DataValueError, InputError
from fmrikit.io.provenance import checksum_of_read

log = logging.getLogger("fmrikit")

#: Training betas larger than this (bytes) are memory-mapped from a temporary file beside the dataset instead of
#: held in memory: roi-train over NSD's brainmask and 40 sessions (27,000 trials x ~290,000 voxels, 29 GiB of
#: float32) then fits a 24 GiB machine; the training loop reads each batch's rows through the page cache.
IN_MEMORY_BYTES = 4 * 2**30


@dataclass
class SubjectData:
    """One subject's betas over the model's input voxels.

    Attributes
    ----------
    key : str
        Input-layer key, e.g. ``"sub-01"``.
    info : DatasetInfo
    columns : ndarray of int64, shape (V,)
        Dataset columns (voxels) in input order.
    train_x : Tensor, shape (n_train, V), float32
    train_stim : ndarray of int64, shape (n_train,)
    test_x : Tensor, shape (n_test, V), float32
        Shared images, betas averaged over repeats.
    test_stim : ndarray of int64, shape (n_test,)
    checksum : dict or None
        :func:`~fmrikit.io.provenance.file_checksum` of the dataset the betas were read from.
    train_sessions : list of int
        Sessions whose non-shared trials are the training trials (what ``reconstruct`` warns about).
    """

    key: str
    info: DatasetInfo
    columns: np.ndarray
    train_x: torch.Tensor
    train_stim: np.ndarray
    test_x: torch.Tensor
    test_stim: np.ndarray
    checksum: dict | None = None
    train_sessions: list[int] = field(default_factory=list)

    @property
    def ijk(self) -> np.ndarray:
        """Source-grid indices of the input voxels, shape (V, 3)."""
        return self.info.ijk[self.columns]

    @property
    def n_voxels(self) -> int:
        return len(self.columns)


def load_subject_data(path: str | os.PathLike, key: str, *, sessions: list[int] | None = None,
                      columns: np.ndarray | None = None) -> SubjectData:
    """Read a subject's training and test betas.

    Parameters
    ----------
    path : path-like
        Preprocessed dataset (``sub-NN_..._betas.h5``).
    key : str
        Input-layer key.
    sessions : list of int, optional
        Sessions whose non-shared trials train the model (all by default). The test set always
        holds the shared images of every session.
    columns : ndarray of int, optional
        Voxels (dataset columns) to keep, in input order (all by default).

    Raises
    ------
    InputError
        A requested session is not in the dataset.
    DataValueError
        No training trial is left, or the betas hold NaN or Inf.
    RunError
        The dataset was rewritten while it was read.
    """
    with checksum_of_read(path) as checksum:
        info = read_info(path)
        if sessions is not None:
            missing = sorted(set(sessions) - set(np.unique(info.session).tolist()))
            if missing:
                raise InputError("sessions not in the dataset", path=path,
                                 expected=f"sessions among {sorted(np.unique(info.session).tolist())}",
                                 found=str(missing))
        in_sessions = np.isin(info.session, sessions) if sessions is not None else np.ones(info.n_trials, bool)
        train = np.nonzero(in_sessions & ~info.shared)[0]
        if len(train) < 2:
            raise DataValueError("too few training trials (shared images are held out for testing)", path=path,
                                 expected="at least 2 non-shared trials in the chosen sessions", found=str(len(train)))
        cols = np.arange(info.n_voxels) if columns is None else np.asarray(columns, dtype=np.int64)
        train_x = read_columns(path, train, cols, out=_training_array(Path(path), (len(train), len(cols))))
        test_stim, test_x = np.zeros(0, np.int64), np.zeros((0, len(cols)), np.float32)
        shared = np.nonzero(info.shared)[0]
        if len(shared):
            test_stim, test_x = average_repeats(read_columns(path, shared, cols), info.stim_id[shared])
    for x in (train_x, test_x):
        bad = sum(int((~np.isfinite(x[i:i + 4096])).any(1).sum()) for i in range(0, len(x), 4096))  # memory-flat
        if bad:
            raise DataValueError("betas contain NaN or Inf", path=path, expected="finite values",
                                 found=f"non-finite values in {bad} trials")
    return SubjectData(key=key, info=info, columns=cols, train_x=torch.from_numpy(train_x),
                       train_stim=info.stim_id[train].astype(np.int64), test_x=torch.from_numpy(test_x),
                       test_stim=test_stim.astype(np.int64), checksum=checksum,
                       train_sessions=sorted(int(v) for v in np.unique(info.session[train])))


def average_repeats(betas: np.ndarray, stim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average trials of the same stimulus.

    Parameters
    ----------
    betas : ndarray, shape (n_trials, V)
    stim : ndarray of int, shape (n_trials,)

    Returns
    -------
    stim_ids : ndarray of int64, shape (n_images,)
        Sorted unique stimulus ids.
    mean : ndarray of float32, shape (n_images, V)
    """
    ids, inverse = np.unique(stim, return_inverse=True)
    total = np.zeros((len(ids), betas.shape[1]), np.float64)
    np.add.at(total, inverse, betas)
    return ids.astype(np.int64), (total / np.bincount(inverse)[:, None]).astype(np.float32)


def read_columns(path: Path, trials: np.ndarray, columns: np.ndarray, block: int = 256,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Betas of some trials and columns, float32 (n_trials, n_columns), read in blocks of trials so only the
    kept columns stay in memory (written into ``out`` when given)."""
    out = np.empty((len(trials), len(columns)), np.float32) if out is None else out
    for start in range(0, len(trials), block):
        out[start:start + block] = read_betas(path, trials[start:start + block])[:, columns]
    return out


def _training_array(dataset: Path, shape: tuple[int, int]) -> np.ndarray:
    """An empty float32 array for training betas: in memory, or, above :data:`IN_MEMORY_BYTES`, memory-mapped
    from an unlinked temporary file in the dataset's folder (freed with the array)."""
    if shape[0] * shape[1] * 4 <= IN_MEMORY_BYTES:
        return np.empty(shape, np.float32)
    log.info("%s: %d x %d training betas (%.1f GiB) memory-mapped from a temporary file beside it", dataset.name,
             *shape, shape[0] * shape[1] * 4 / 2**30)
    with tempfile.TemporaryFile(dir=dataset.parent, prefix=".train-betas-") as f:
        return np.memmap(f, dtype=np.float32, mode="w+", shape=shape)


def parse_trial_rows(text: str, n: int, dataset: Path) -> np.ndarray:
    """0-based dataset rows from ``0-9,20``-style text, each below ``n``."""
    from fmrikit.data.preprocess import parse_ranges

    rows = parse_ranges(text, "--trials", minimum=0)
    if rows[-1] >= n:
        raise InputError("--trials out of range", path=dataset, expected=f"0 to {n - 1}", found=str(rows[-1]))
    return np.asarray(rows, np.int64)
