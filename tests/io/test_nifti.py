import hashlib

import nibabel as nib
import numpy as np
import pytest

from fmrikit.errors import CorruptFileError, DataValueError, GridMismatchError, MissingInputError
from fmrikit.io.nifti import check_same_grid, iter_masked_volumes, load_image, load_mask, volume_index

SHAPE = (7, 8, 9)


@pytest.mark.parametrize("dtype,slope,inter", [(np.int16, None, None), (np.int16, 0.5, 2.0), (np.float32, None, None)])
@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("batch", [1, 4, 100])
def test_stream_matches_nibabel(tmp_path, dtype, slope, inter, gz, batch):
    rng = np.random.default_rng(0)
    data = (rng.normal(0, 1000, SHAPE + (11,))).astype(dtype)
    img = nib.Nifti1Image(data, np.diag([1.8, 1.8, 1.8, 1]))
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    path = tmp_path / ("b.nii.gz" if gz else "b.nii")
    nib.save(img, path)
    ijk = np.argwhere(rng.random(SHAPE) < 0.3)
    want = nib.load(path).get_fdata()[tuple(ijk.T)].T
    checksum = {}
    blocks = list(iter_masked_volumes(path, ijk, batch=batch, checksum=checksum))
    assert [s for s, _ in blocks] == list(range(0, 11, batch))
    np.testing.assert_allclose(np.concatenate([b for _, b in blocks]), want, rtol=1e-6)
    assert checksum["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_truncated_and_garbage_files(tmp_path):
    data = np.arange(np.prod(SHAPE) * 5, dtype=np.int16).reshape(SHAPE + (5,))
    path = tmp_path / "b.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) * 2 // 3])
    ijk = np.argwhere(np.ones(SHAPE, bool))
    with pytest.raises(CorruptFileError, match="b.nii.gz"):
        list(iter_masked_volumes(path, ijk))
    bad = tmp_path / "garbage.nii.gz"
    bad.write_bytes(b"not a nifti at all")
    with pytest.raises(CorruptFileError):
        load_image(bad)
    with pytest.raises(MissingInputError):
        load_image(tmp_path / "absent.nii.gz")


def test_load_mask_labels_and_dims(tmp_path):
    labels = np.full(SHAPE, -1, np.int16)
    labels[1:3, 2:5, 3:4] = 2
    labels[4, 4, 4] = 1
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "roi.nii.gz")
    mask, _ = load_mask(tmp_path / "roi.nii.gz")
    assert mask.sum() == 2 * 3 * 1 + 1
    mask, _ = load_mask(tmp_path / "roi.nii.gz", labels=[1])
    assert mask.sum() == 1 and mask[4, 4, 4]
    with pytest.raises(DataValueError, match="no voxel"):
        load_mask(tmp_path / "roi.nii.gz", labels=[7])
    nib.save(nib.Nifti1Image(np.zeros(SHAPE + (2,), np.int16), np.eye(4)), tmp_path / "4d.nii.gz")
    with pytest.raises(DataValueError, match="3D"):
        load_mask(tmp_path / "4d.nii.gz")


def test_check_same_grid_lists_mismatch():
    aff = np.eye(4)
    check_same_grid({"a": (SHAPE, aff), "b": (SHAPE, aff + 1e-5), "c": (SHAPE, None)})
    with pytest.raises(GridMismatchError, match=r"b.*shape") as err:
        check_same_grid({"a": (SHAPE, aff), "b": ((7, 8, 10), aff), "c": (SHAPE, aff * 2)})
    assert "+1 more" in str(err.value)


def test_volume_index_is_fortran_order():
    ijk = np.array([[1, 2, 3], [6, 7, 8]])
    arr = np.arange(np.prod(SHAPE)).reshape(SHAPE, order="F")
    np.testing.assert_array_equal(volume_index(ijk, SHAPE), arr[tuple(ijk.T)])


def test_stream_property_random_grids(tmp_path_factory):
    """Any grid, trial count, voxel subset and batch size: the stream equals nibabel's full read."""
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=25, deadline=None)
    @given(shape=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.integers(1, 7)),
           batch=st.integers(1, 8), seed=st.integers(0, 2**16))
    def check(shape, batch, seed):
        rng = np.random.default_rng(seed)
        data = rng.integers(-2000, 2000, shape).astype(np.int16)
        path = tmp_path_factory.mktemp("h") / "b.nii.gz"
        nib.save(nib.Nifti1Image(data, np.eye(4)), path)
        ijk = np.argwhere(rng.random(shape[:3]) < 0.5)
        if len(ijk) == 0:
            ijk = np.zeros((1, 3), dtype=int)
        got = np.concatenate([b for _, b in iter_masked_volumes(path, ijk, batch=batch)])
        np.testing.assert_array_equal(got, data[tuple(ijk.T)].T)

    check()


@pytest.mark.parametrize("name", ["series.nii", "series.nii.gz"])
def test_series_writer_matches_nibabel(tmp_path, name):
    from fmrikit.io.nifti import write_nifti_series

    rng = np.random.default_rng(0)
    data = rng.normal(size=(5, 4, 3, 6)).astype(np.float32)
    affine = np.array([[-1.8, 0, 0, 90], [0, 1.8, 0, -126], [0, 0, 1.8, -72], [0, 0, 0, 1]])
    write_nifti_series((data[..., t] for t in range(6)), 6, (5, 4, 3), affine, tmp_path / name)
    img = nib.load(tmp_path / name)
    np.testing.assert_array_equal(img.get_fdata(dtype=np.float32), data)
    np.testing.assert_allclose(img.affine, affine)
    assert img.header.get_xyzt_units() == ("mm", "sec")


def test_series_writer_leaves_nothing_on_bad_volumes(tmp_path):
    from fmrikit.io.nifti import write_nifti_series

    vols = [np.zeros((5, 4, 3), np.float32)] * 2
    with pytest.raises(DataValueError, match="number of volumes"):
        write_nifti_series(iter(vols), 3, (5, 4, 3), np.eye(4), tmp_path / "a.nii.gz")
    with pytest.raises(DataValueError, match="shape"):
        write_nifti_series(iter([np.zeros((4, 5, 3))]), 1, (5, 4, 3), np.eye(4), tmp_path / "b.nii.gz")
    assert list(tmp_path.iterdir()) == []
