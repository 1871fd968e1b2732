import h5py
import numpy as np
import pytest

from fmrikit.errors import CorruptFileError
from fmrikit.io.hdf5 import h5_betas_shape, read_masked_betas_h5


@pytest.mark.parametrize("chunks", [(6, 1, 1, 1), None])
def test_masked_read_matches_full_read(tmp_path, chunks):
    rng = np.random.default_rng(0)
    xyzt = rng.integers(-3000, 3000, (7, 8, 9, 6)).astype(np.int16)
    path = tmp_path / "betas.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("betas", data=np.transpose(xyzt, (3, 2, 1, 0)), chunks=chunks)
    ijk = np.argwhere(rng.random((7, 8, 9)) < 0.2)
    np.testing.assert_array_equal(read_masked_betas_h5(path, ijk), xyzt[tuple(ijk.T)].T)
    assert h5_betas_shape(path) == (6, (7, 8, 9))


def test_missing_dataset(tmp_path):
    with h5py.File(tmp_path / "x.hdf5", "w") as f:
        f["other"] = np.zeros(3)
    with pytest.raises(CorruptFileError, match="betas"):
        h5_betas_shape(tmp_path / "x.hdf5")
