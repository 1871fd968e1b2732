"""Training and test splits of a preprocessed dataset, against h5py reads of the same file."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from fmrikit.data import splits
from fmrikit.data.preprocess import preprocess_nsd


@pytest.fixture
def dataset(nsd_tree, tmp_path):
    return preprocess_nsd(nsd_tree, 1, root=tmp_path / "proj", flatmap=False).betas


@pytest.mark.parametrize("in_memory_bytes", [splits.IN_MEMORY_BYTES, 0])
def test_training_betas_in_memory_or_memory_mapped(dataset, monkeypatch, in_memory_bytes):
    """Large training sets are memory-mapped from a temporary file; the values are the same."""
    monkeypatch.setattr(splits, "IN_MEMORY_BYTES", in_memory_bytes)
    data = splits.load_subject_data(dataset, "sub-01", sessions=[1, 3], columns=np.array([5, 0, 2]))
    with h5py.File(dataset) as f:
        betas, session, shared = f["betas"][:], f["trials/session"][:], f["trials/shared"][:]
    train = np.isin(session, [1, 3]) & ~shared
    np.testing.assert_array_equal(data.train_x.numpy(), betas[train][:, [5, 0, 2]])
    assert data.train_sessions == [1, 3]
    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else None
    if maps is not None:  # Linux: the betas are a shared mapping of an unlinked file in the dataset's folder
        mapped = [line for line in maps.splitlines() if f"{dataset.parent}/" in line and "(deleted)" in line]
        assert bool(mapped) == (in_memory_bytes == 0)
    assert not list(dataset.parent.glob(".train-betas-*"))  # unlinked at once
    rows = data.train_x[[3, 0, 3]]  # what the training loop does with a batch
    np.testing.assert_array_equal(rows.numpy(), betas[train][[3, 0, 3]][:, [5, 0, 2]])
