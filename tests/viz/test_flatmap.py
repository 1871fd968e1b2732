import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from fmrikit.errors import GridMismatchError, InputError
from fmrikit.viz.flatmap import render_flatmap, voxels_to_volume
from fmrikit.viz.maps import MapTarget, save_voxel_map


def test_voxels_to_volume_scatter():
    ijk = np.array([[0, 1, 2], [6, 7, 8], [3, 0, 4]])
    vol = voxels_to_volume(np.array([1.0, 2.0, 3.0]), ijk, (7, 8, 9))
    assert vol.shape == (7, 8, 9) and np.isnan(vol).sum() == 7 * 8 * 9 - 3
    assert vol[6, 7, 8] == 2.0 and vol[3, 0, 4] == 3.0
    with pytest.raises(InputError):
        voxels_to_volume(np.zeros(2), ijk, (7, 8, 9))


def test_nifti_and_flatmap_of_cortical_values(tmp_path):
    from fmrikit.data.anatomy import load_anatomy

    anat = load_anatomy()
    ijk = anat.cortex_ijk
    values = anat.flat_xy[:, 0]  # left-right position on the flatmap: a ramp across the PNG
    target = MapTarget(anat.shape, anat.affine, "S1", "fullhead").check()
    out = save_voxel_map(values, ijk, target, nifti_path=tmp_path / "m.nii.gz", png_path=tmp_path / "m.png",
                         cmap="gray", title="ramp")
    assert out["picture"] == {"renderer": "pycortex flatmap", "pycortex_subject": "S1", "pycortex_xfm": "fullhead"}
    img = nib.load(out["nifti"])
    assert img.shape == anat.shape
    np.testing.assert_allclose(img.get_fdata()[tuple(ijk.T)], values, rtol=1e-5)
    png = np.asarray(Image.open(out["png"]).convert("L"), dtype=float)
    assert png.shape[1] > png.shape[0] > 100
    # grey ramp: the brain's left half is darker than its right half
    rows = png[png.shape[0] // 3: 2 * png.shape[0] // 3]
    brain = (rows > 5) & (rows < 250)
    cols = np.nonzero(brain.any(0))[0]
    mid = (cols.min() + cols.max()) // 2
    left, right = rows[:, cols.min():mid][brain[:, cols.min():mid]], rows[:, mid:cols.max()][brain[:, mid:cols.max()]]
    assert left.mean() < right.mean()


def test_flatmap_refuses_wrong_grid_and_subject(tmp_path):
    with pytest.raises(GridMismatchError, match="reference grid"):
        render_flatmap(np.zeros((7, 8, 9)), tmp_path / "x.png", "S1", "fullhead")
    with pytest.raises(InputError, match="pycortex subject"):
        render_flatmap(np.zeros((7, 8, 9)), tmp_path / "x.png", "nobody", "fullhead")
    assert not list(tmp_path.iterdir())
