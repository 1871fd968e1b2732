"""Per-voxel maps without pycortex: the NIfTI first, then a nilearn mosaic over the subject's anatomy."""

import logging

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from fmrikit.errors import InputError
from fmrikit.viz import maps
from fmrikit.viz.maps import MapTarget, save_voxel_map

SHAPE = (7, 8, 9)
AFFINE = np.diag([1.8, 1.8, 1.8, 1.0])


@pytest.fixture
def anatomy(tmp_path):
    path = tmp_path / "T1_to_func1pt8mm.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).uniform(0, 1, SHAPE).astype(np.float32), AFFINE), path)
    return path


def test_mosaic_on_the_anatomy_with_the_nifti_first(tmp_path, anatomy):
    ijk = np.argwhere(np.ones(SHAPE, bool))[::3]
    values = np.linspace(-1, 1, len(ijk))
    target = MapTarget(SHAPE, AFFINE, anatomy=str(anatomy)).check()
    out = save_voxel_map(values, ijk, target, nifti_path=tmp_path / "m.nii.gz", png_path=tmp_path / "m.png",
                         cmap="RdBu_r", title="ramp")
    vol = nib.load(out["nifti"]).get_fdata()
    np.testing.assert_allclose(vol[tuple(ijk.T)], values, rtol=1e-6)
    assert np.isnan(vol).sum() == np.prod(SHAPE) - len(ijk)
    png = np.asarray(Image.open(out["png"]).convert("RGB"), dtype=float)
    assert png.shape[1] > png.shape[0] > 100
    coloured = np.abs(png[..., 0] - png[..., 2]) > 60  # red and blue of the RdBu_r map, not grey
    assert coloured.sum() > 500
    assert out["picture"] == {"renderer": "nilearn mosaic", "background": str(anatomy)}


def test_anatomy_of_another_grid_is_dropped_and_said(tmp_path, caplog):
    path = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((5, 5, 5), np.float32), AFFINE), path)
    with caplog.at_level(logging.WARNING, logger="fmrikit"):
        target = MapTarget(SHAPE, AFFINE, anatomy=str(path)).check()
    assert target.anatomy == "" and "without an anatomical background" in caplog.text
    out = save_voxel_map(np.ones(3), np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3]]), target, style="roi",
                         png_path=tmp_path / "mask.png")
    assert out["png"].is_file() and out["picture"]["background"] is None


def test_a_failing_picture_keeps_the_nifti(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(maps, "render_mosaic", broken)
    out = save_voxel_map(np.ones(2), np.array([[0, 0, 0], [1, 2, 3]]), MapTarget(SHAPE, AFFINE),
                         nifti_path=tmp_path / "m.nii.gz", png_path=tmp_path / "m.png")
    assert (tmp_path / "m.nii.gz").is_file() and not (tmp_path / "m.png").exists()
    assert "RuntimeError: no display" in out["picture"]["error"] and "picture not drawn" in caplog.text


def test_pycortex_names_are_checked_before_any_work():
    target = MapTarget(SHAPE, AFFINE, "nobody", "fullhead")
    assert target.renderer == "pycortex flatmap"
    with pytest.raises(InputError, match="pycortex subject"):
        target.check()
    assert target.check(pycortex=False) is target
