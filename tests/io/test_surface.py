import hashlib

import nibabel as nib
import numpy as np
import pytest

from fmrikit.errors import CorruptFileError, DataValueError, MissingInputError
from fmrikit.io.surface import (hemi_pair, mgh_frames, read_mgh_frames, read_vertex_values, save_gifti_map,
                                write_mgh_series)


def test_mgh_betas_keep_their_stored_dtype_and_are_checksummed_while_read(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(-3000, 3000, (50, 1, 1, 7)).astype(np.int16)
    path = tmp_path / "lh.betas_session01.mgh"
    nib.save(nib.MGHImage(data, np.eye(4)), path)
    n_vertices, n_frames, dtype = mgh_frames(path)
    assert (n_vertices, n_frames) == (50, 7) and np.issubdtype(dtype, np.int16)
    checksum = {}
    frames = read_mgh_frames(path, np.array([4, 0, 49]), checksum=checksum)
    assert np.issubdtype(frames.dtype, np.integer)
    np.testing.assert_array_equal(frames, data[[4, 0, 49], 0, 0, :].T)
    assert checksum["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_mgh_series_streamed_reads_back_with_nibabel(tmp_path):
    maps = np.random.default_rng(1).normal(size=(5, 30)).astype(np.float32)
    path = write_mgh_series(iter(maps), 5, 30, tmp_path / "pred.mgh")
    img = nib.load(path)
    assert img.shape == (30, 1, 1, 5)
    np.testing.assert_array_equal(np.asarray(img.dataobj)[:, 0, 0, :].T, maps)
    with pytest.raises(DataValueError, match="wrong number"):
        write_mgh_series(iter(maps), 6, 30, tmp_path / "short.mgh")
    with pytest.raises(DataValueError, match="another length"):
        write_mgh_series(iter([np.zeros(29)]), 1, 30, tmp_path / "bad.mgh")


def test_gifti_label_and_func_maps(tmp_path):
    labels = np.array([0, 1, 2, 2, 0, 1])
    save_gifti_map(labels, tmp_path / "l.label.gii", "lh", label_names={1: "V1", 2: "V2"})
    img = nib.load(tmp_path / "l.label.gii")
    assert img.labeltable.get_labels_as_dict() == {0: "unlabelled", 1: "V1", 2: "V2"}
    assert img.meta["AnatomicalStructurePrimary"] == "CortexLeft"
    np.testing.assert_array_equal(img.darrays[0].data, labels)
    values = np.array([[0.5, np.nan, 2.0], [1.0, 2.0, 3.0]])
    save_gifti_map(values, tmp_path / "r.func.gii", "rh", names=["a", "b"])
    img = nib.load(tmp_path / "r.func.gii")
    assert img.meta["AnatomicalStructurePrimary"] == "CortexRight" and img.darrays[1].meta["Name"] == "b"
    np.testing.assert_array_equal(np.stack([d.data for d in img.darrays]), values.astype(np.float32))
    np.testing.assert_array_equal(read_vertex_values(tmp_path / "l.label.gii"), labels)
    with pytest.raises(DataValueError, match="one data array"):
        read_vertex_values(tmp_path / "r.func.gii")


def test_hemisphere_partners_and_bad_files(tmp_path):
    pair = hemi_pair("/d/rh.betas_session02.mgh")
    assert (pair["lh"].name, pair["rh"].name) == ("lh.betas_session02.mgh", "rh.betas_session02.mgh")
    assert hemi_pair("x/lh_training_fmri.npy")["rh"].name == "rh_training_fmri.npy"
    assert hemi_pair("sub-01_hemi-R_desc-troi_mask.label.gii")["lh"].name == "sub-01_hemi-L_desc-troi_mask.label.gii"
    with pytest.raises(DataValueError, match="names no hemisphere"):
        hemi_pair("/d/shelf.mgz")
    with pytest.raises(MissingInputError):
        mgh_frames(tmp_path / "none.mgh")
    (tmp_path / "junk.mgh").write_bytes(b"not an mgh")
    with pytest.raises(CorruptFileError):
        mgh_frames(tmp_path / "junk.mgh")
