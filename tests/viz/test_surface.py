import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from fmrikit.errors import InputError
from fmrikit.io.fsaverage import FSAVERAGE5_VERTICES, fsaverage5_mesh
from fmrikit.viz.surface import hemi_file_name, save_vertex_map, vertex_map_names, vertex_maps


def _posterior(hemi_index, hemi, n=None):
    pial, _ = fsaverage5_mesh("pial", hemi)
    v = np.nonzero(pial[:, 1] < -60)[0][:n]
    return np.full(len(v), hemi_index), v


def test_names_put_the_hemisphere_after_the_subject():
    assert hemi_file_name("sub-01_desc-troi", "mask.label.gii", "lh") == "sub-01_hemi-L_desc-troi_mask.label.gii"
    names = vertex_map_names("sub-02_roi-brainmask_desc-preproc", "meanpsc")
    assert names["rh"] == "sub-02_hemi-R_roi-brainmask_desc-preproc_meanpsc.func.gii"
    assert names["flat"] == "sub-02_roi-brainmask_desc-preproc_meanpsc.png"
    assert names["inflated"] == "sub-02_roi-brainmask_desc-preproc_meanpsc_inflated.png"


def test_gifti_of_a_full_fsaverage_vector(tmp_path):
    hemi, vertex = np.array([0, 1, 1]), np.array([163841, 5, 0])
    maps = vertex_maps(np.array([1.0, 2.0, 3.0]), hemi, vertex, 163842)
    assert maps["lh"][163841] == 1 and np.isnan(maps["lh"][:-1]).all() and maps["rh"][[5, 0]].tolist() == [2, 3]
    out = save_vertex_map(np.array([1.0, 2.0, 3.0]), hemi, vertex, 163842,
                          gifti={"lh": tmp_path / "l.func.gii", "rh": tmp_path / "r.func.gii"})
    data = nib.load(out["rh"]).darrays[0].data
    assert data.shape == (163842,) and data[5] == 2 and np.isnan(data).sum() == 163840
    with pytest.raises(InputError):
        vertex_maps(np.zeros(2), hemi, vertex, 163842)


def test_pictures_draw_each_hemisphere_on_its_side(tmp_path):
    """A map only on the right hemisphere's occipital cortex colours only the right half of the flat picture."""
    hemi, vertex = _posterior(1, "rh")
    out = save_vertex_map(np.ones(len(vertex)), hemi, vertex, FSAVERAGE5_VERTICES, flat_png=tmp_path / "f.png",
                          inflated_png=tmp_path / "i.png", vmin=0, vmax=1, cmap="Reds", title="right")
    rgb = np.asarray(Image.open(out["flat"]).convert("RGB"), dtype=int)
    red = rgb[..., 0] - rgb[..., 1:].max(-1) > 60  # grey background and white have none
    cols = np.nonzero(red[:, : int(rgb.shape[1] * 0.85)].any(0))[0]  # leave out the colour bar
    assert len(cols) > 20 and cols.min() > rgb.shape[1] * 0.4
    inflated = np.asarray(Image.open(out["inflated"]).convert("RGB"), dtype=int)
    assert inflated.shape[1] > inflated.shape[0] > 200


def test_label_maps_get_integer_gifti_and_discrete_pictures(tmp_path):
    hemi, vertex = _posterior(0, "lh", 300)
    labels = np.arange(len(vertex)) % 3 + 1
    out = save_vertex_map(labels, hemi, vertex, FSAVERAGE5_VERTICES, label_names={1: "a", 2: "b", 3: "c"},
                          gifti={"lh": tmp_path / "l.label.gii"}, flat_png=tmp_path / "f.png")
    img = nib.load(out["lh"])
    assert img.darrays[0].data.dtype == np.int32 and img.labeltable.get_labels_as_dict()[3] == "c"
    assert np.array_equal(img.darrays[0].data[vertex], labels) and out["flat"].stat().st_size > 0
