import h5py
import numpy as np
import pytest
import scipy.io

from fmrikit.errors import CorruptFileError
from fmrikit.io.nsd import NSDLayout, read_ctab


def test_expdesign_v5_and_v73_read_alike(tmp_path):
    exp = tmp_path / "nsddata/experiments/nsd"
    exp.mkdir(parents=True)
    arrays = {"masterordering": np.array([[3, 1, 2, 3]]), "subjectim": np.array([[5, 6, 7], [8, 9, 10]]),
              "sharedix": np.array([[5]]), "stimpattern": np.ones((2, 1, 2))}
    scipy.io.savemat(exp / "nsd_expdesign.mat", arrays)
    v5 = NSDLayout(tmp_path).load_expdesign()
    with h5py.File(exp / "nsd_expdesign.mat", "w") as f:  # v7.3: HDF5, stored transposed
        for k, v in arrays.items():
            f[k] = v.T
    v73 = NSDLayout(tmp_path).load_expdesign()
    for k in arrays:
        np.testing.assert_array_equal(v5[k], v73[k])
    (exp / "nsd_expdesign.mat").write_bytes(b"garbage")
    with pytest.raises(CorruptFileError):
        NSDLayout(tmp_path).load_expdesign()


def test_read_ctab(tmp_path):
    (tmp_path / "x.ctab").write_text("0 Unknown 0 0 0 0\n1 V1v 1 2 3 0\n2 V1d\n")
    assert read_ctab(tmp_path / "x.ctab") == {1: "V1v", 2: "V1d"}
