"""Dataset columns of a model's voxels, against a brute-force search."""

import numpy as np
import pytest

from fmrikit.data.dataset import DatasetInfo, voxel_columns
from fmrikit.errors import DataValueError, GridMismatchError


def _info(ijk, shape=(5, 7, 4)):
    return DatasetInfo(path=None, subject=1, stim_id=np.zeros(0), session=np.zeros(0), shared=np.zeros(0, bool),
                       ijk=ijk, affine=np.eye(4), volume_shape=shape, stimuli_path="", stimuli_dataset="",
                       pycortex_subject="", pycortex_xfm="", ncsnr=None)


def test_columns_match_a_loop():
    rng = np.random.default_rng(0)
    grid = np.argwhere(np.ones((5, 7, 4), bool))
    ijk = grid[rng.choice(len(grid), 60, replace=False)]
    info = _info(ijk)
    want = ijk[rng.choice(60, 17, replace=False)]
    cols = voxel_columns(info, want)
    assert cols.tolist() == [next(c for c in range(60) if (ijk[c] == v).all()) for v in want]
    absent = grid[~(grid[:, None] == ijk[None]).all(-1).any(1)][:2]
    with pytest.raises(DataValueError, match="lacks voxels"):
        voxel_columns(info, np.concatenate([want, absent]))
    with pytest.raises(GridMismatchError):
        voxel_columns(info, np.array([[5, 0, 0]]))
