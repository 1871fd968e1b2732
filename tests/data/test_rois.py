"""ROI volumes read at a preprocessed dataset's voxels."""

import nibabel as nib
import numpy as np
import pytest

from fmrikit.data.dataset import read_info
from fmrikit.data.rois import atlas_labels, roi_columns
from fmrikit.errors import DataValueError, GridMismatchError


@pytest.fixture(scope="module")
def info(sim_world, tmp_path_factory):
    from fmrikit.data.preprocess import preprocess_nsd

    root = tmp_path_factory.mktemp("rois")
    return read_info(preprocess_nsd(sim_world, 1, root=root, flatmap=False).betas)


def test_atlas_labels_are_the_volume_at_each_voxel(info, sim_world):
    vol = np.asarray(nib.load(sim_world / "nsddata/ppdata/subj01/func1pt8mm/roi/prf-visualrois.nii.gz").dataobj)
    want = np.array([vol[i, j, k] for i, j, k in info.ijk])
    assert np.array_equal(atlas_labels(info, "prf-visualrois"), want)
    cols = roi_columns(info, "prf-visualrois", [1, 2])
    assert np.array_equal(cols, np.nonzero(np.isin(want, [1, 2]))[0])


def test_a_mask_path_on_another_grid_or_without_voxels_is_refused(info, tmp_path):
    shape = tuple(info.volume_shape)
    nib.save(nib.Nifti1Image(np.zeros(shape, np.int16), info.affine), tmp_path / "empty.nii.gz")
    with pytest.raises(DataValueError, match="none of the dataset"):
        roi_columns(info, str(tmp_path / "empty.nii.gz"))
    nib.save(nib.Nifti1Image(np.ones(shape, np.int16), info.affine * 2), tmp_path / "other.nii.gz")
    with pytest.raises(GridMismatchError):
        roi_columns(info, str(tmp_path / "other.nii.gz"))
