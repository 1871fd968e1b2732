import h5py
import numpy as np
import pytest

from fmrikit.errors import CorruptFileError
from fmrikit.io.hdf5 import h5_betas_shape, read_masked_betas_h5


@pytest.mark.parametrize("layout", [dict(chunks=(6, 1, 1, 1)), dict(chunks=None), dict(chunks=(3, 2, 2, 2)),
                                    dict(chunks=(6, 1, 1, 1), compression="gzip", dtype=">i2")])
def test_masked_read_matches_full_read(tmp_path, layout):
    """NSD's one-voxel chunks (read chunk by chunk), and other layouts (read in slabs)."""
    rng = np.random.default_rng(0)
    xyzt = rng.integers(-3000, 3000, (7, 8, 9, 6)).astype(np.int16)
    path = tmp_path / "betas.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("betas", data=np.transpose(xyzt, (3, 2, 1, 0)), **layout)
    ijk = np.argwhere(rng.random((7, 8, 9)) < 0.2)
    np.testing.assert_array_equal(read_masked_betas_h5(path, ijk), xyzt[tuple(ijk.T)].T)
    assert h5_betas_shape(path) == (6, (7, 8, 9))


def test_chunks_never_written_read_as_the_fill_value(tmp_path):
    path = tmp_path / "betas.hdf5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("betas", (6, 9, 8, 7), np.int16, chunks=(6, 1, 1, 1), fillvalue=-5)
        ds[:, 2, 3, 4] = np.arange(6)
    out = read_masked_betas_h5(path, np.array([[4, 3, 2], [0, 0, 0]]))
    np.testing.assert_array_equal(out, np.stack([np.arange(6), np.full(6, -5)], 1))


def test_missing_dataset(tmp_path):
    with h5py.File(tmp_path / "x.hdf5", "w") as f:
        f["other"] = np.zeros(3)
    with pytest.raises(CorruptFileError, match="betas"):
        h5_betas_shape(tmp_path / "x.hdf5")


def test_float32_rows_of_a_transposed_read():
    from fmrikit.io.hdf5 import as_float32_rows

    chunks = np.random.default_rng(1).integers(-300, 300, (10, 7)).astype(np.int16)  # (V, T) as read
    out = as_float32_rows(chunks.T, block=3)
    assert out.flags.c_contiguous and out.dtype == np.float32
    np.testing.assert_array_equal(out, chunks.T.astype(np.float32))
