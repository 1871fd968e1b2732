"""The scripting entry to an NSD tree, against nibabel / h5py reads of the same files."""

import h5py
import nibabel as nib
import numpy as np
import pytest
import scipy.io

from fmrikit.errors import InputError
from fmrikit.io.nsd_access import NSDAccess
from tests.nsd_fixture import ATLASES, BETAS, SHAPE_1MM, TRIALS


def _volume(nsd_tree, subject, session, space="func1pt8mm"):
    folder = nsd_tree / f"nsddata_betas/ppdata/subj{subject:02d}/{space}/{BETAS}"
    if subject == 1:
        return nib.load(folder / f"betas_session{session:02d}.nii.gz").get_fdata()
    with h5py.File(folder / f"betas_session{session:02d}.hdf5") as f:
        return np.transpose(f["betas"][:], (3, 2, 1, 0)).astype(float)


@pytest.mark.parametrize("subject", [1, 2])
def test_betas_of_some_trials_and_a_mask(nsd_tree, subject):
    nsd = NSDAccess(nsd_tree)
    roi = nib.load(nsd_tree / f"nsddata/ppdata/subj{subject:02d}/func1pt8mm/roi/nsdgeneral.nii.gz").get_fdata() > 0
    trials = np.array([TRIALS + 3, 1, TRIALS + 3])  # session 2, session 1, a repeat
    got = nsd.betas(subject, sessions=[1, 2], trials=trials)
    want = np.stack([_volume(nsd_tree, subject, 2)[..., 3], _volume(nsd_tree, subject, 1)[..., 1],
                     _volume(nsd_tree, subject, 2)[..., 3]])[:, roi] / 300
    np.testing.assert_allclose(got.values, want, rtol=1e-6)
    np.testing.assert_array_equal(got.ijk, np.argwhere(roi))
    design = scipy.io.loadmat(nsd_tree / "nsddata/experiments/nsd/nsd_expdesign.mat")
    k = design["masterordering"].ravel().astype(int)[trials]
    np.testing.assert_array_equal(got.design.stim_id, design["subjectim"].astype(int)[subject - 1, k - 1] - 1)
    np.testing.assert_array_equal(got.design.session, [2, 1, 2])
    images = nsd.images(got.design.stim_id)
    with h5py.File(nsd_tree / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5") as f:
        np.testing.assert_array_equal(images, f["imgBrick"][:][got.design.stim_id])


def test_atlas_with_label_names_brainmask_and_func1mm(nsd_tree):
    nsd = NSDAccess(nsd_tree)
    labels, names = nsd.atlas(1, "prf-visualrois")
    assert names == dict(enumerate(ATLASES["prf-visualrois"], 1))
    vol = nib.load(nsd_tree / "nsddata/ppdata/subj01/func1pt8mm/roi/prf-visualrois.nii.gz").get_fdata()
    np.testing.assert_array_equal(labels, vol)
    v1 = nsd.mask(1, "prf-visualrois", labels=[1, 2])
    np.testing.assert_array_equal(v1, np.isin(vol, [1, 2]))
    fine = NSDAccess(nsd_tree, space="func1mm").betas(1, sessions=[3], mask="brainmask")
    brain = nib.load(nsd_tree / "nsddata/ppdata/subj01/func1mm/brainmask.nii.gz").get_fdata() > 0
    assert fine.values.shape == (TRIALS, brain.sum()) and brain.shape == SHAPE_1MM
    np.testing.assert_allclose(fine.values, _volume(nsd_tree, 1, 3, "func1mm")[brain].T / 300, rtol=1e-6)
    with pytest.raises(InputError, match="out of range"):
        nsd.betas(1, sessions=[1], trials=np.array([TRIALS]))
