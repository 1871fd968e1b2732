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


def _colour_pixels(png, hex_colour, tol=40):
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(np.asarray(Image.open(png).convert("RGB"), int) - rgb).sum(-1) < tol).sum())


def test_overlay_labels_against_boolean_logic():
    rng = np.random.default_rng(1)
    a, b = rng.random(SHAPE) < 0.3, rng.random(SHAPE) < 0.4
    labels = maps.overlay_labels(a, b)
    for value, expected in ((1, a & b), (2, a & ~b), (3, ~a & b), (0, ~a & ~b)):
        np.testing.assert_array_equal(labels == value, expected)


def test_overlay_draws_three_colours_and_a_legend_not_a_colour_bar(tmp_path, anatomy):
    a = np.zeros(SHAPE, bool)
    b = np.zeros(SHAPE, bool)
    a[1:4, 1:6, 2:7] = True  # mask
    b[3:6, 2:7, 2:7] = True  # reference, overlapping at x = 3
    out = maps.save_overlay(a, b, MapTarget(SHAPE, AFFINE, anatomy=str(anatomy)), tmp_path / "o.png",
                            mask_name="TROI", reference_name="nsdgeneral", title="overlay")
    for colour in maps.OVERLAY_COLORS:
        assert _colour_pixels(out["png"], colour) > 30
    # no continuous colour bar: no viridis purple anywhere
    assert _colour_pixels(out["png"], "#440154", tol=30) == 0


def test_a_mask_is_drawn_in_one_colour_with_its_legend(tmp_path):
    ijk = np.argwhere(np.ones(SHAPE, bool))[::5]
    out = save_voxel_map(np.ones(len(ijk)), ijk, MapTarget(SHAPE, AFFINE), png_path=tmp_path / "mask.png",
                         style="roi", categories=[maps.Category("selected", "#d62728")])
    img = np.asarray(Image.open(out["png"]).convert("RGB"), int)
    red = (np.abs(img - [0xd6, 0x27, 0x28]).sum(-1) < 40)
    assert red.sum() > 100
    # the legend's patch sits in the strip below the slices
    assert red[-40:].any()


def test_label_map_colours_match_the_montage_and_faint_voxels_are_white(tmp_path):
    from fmrikit.viz.keys import label_palette
    from fmrikit.viz.montage import label_montage

    ijk = np.argwhere(np.ones(SHAPE, bool))
    labels = 1 + (ijk[:, 0] >= 4).astype(int) + 2 * (ijk[:, 2] >= 5)  # four blocks, labels 1..4
    faint = labels == 4
    out = maps.save_label_map(labels, ijk, MapTarget(SHAPE, AFFINE), tmp_path / "c.png", 4, faint=faint,
                              faint_name="noise ceiling < 10%", title="clusters")
    palette = label_palette(4)
    for colour in palette[:3]:
        assert _colour_pixels(out["png"], colour) > 100
    # label 4 only appears as its legend patch: its voxels are drawn white
    assert _colour_pixels(out["png"], palette[3]) < 200 < _colour_pixels(out["png"], palette[0])
    label_montage([np.zeros((20, 30, 3), np.uint8)] * 3, tmp_path / "m.png", 2, 4, "its top 3 images")
    montage = np.asarray(Image.open(tmp_path / "m.png").convert("RGB"), int)
    band = montage[:20, -25:]  # right of the title text
    np.testing.assert_array_equal(band, np.broadcast_to([int(palette[1][i:i + 2], 16) for i in (1, 3, 5)], band.shape))
