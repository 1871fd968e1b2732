"""The fsaverage flatmap operator: the flat mesh rasterised (barycentric) on a fixed crop shared by every subject."""

import json

import h5py
import numpy as np
import pytest

from fmrikit.data.dataset import DatasetInfo
from fmrikit.data.flatmaps.operator import flatmap_mapping, read_mapping, write_mapping
from fmrikit.errors import InputError
from fmrikit.io.fsaverage import flat_layout, visual_crop

N5 = 10242


def surface_info(hemi, vertex, n_vertices=N5, path=None):
    ijk = np.stack([hemi, vertex, np.zeros_like(vertex)], 1).astype(np.int64)
    return DatasetInfo(path=path, subject=1, stim_id=np.zeros(0), session=np.zeros(0), shared=np.zeros(0, bool),
                       ijk=ijk, affine=None, volume_shape=(2, n_vertices, 1), stimuli_path="", stimuli_dataset="",
                       pycortex_subject="", pycortex_xfm="", ncsnr=None, mesh="fsaverage")


def every_vertex(n_vertices=N5):
    hemi = np.repeat([0, 1], n_vertices)
    return hemi, np.tile(np.arange(n_vertices), 2)


@pytest.mark.parametrize("axis", [0, 1])
def test_a_linear_map_of_the_flat_plane_comes_back_as_the_pixel_positions(axis):
    """Values = each vertex's flat x (or y): interpolation inside the triangles returns each pixel's own position,
    columns running left to right and rows top to bottom."""
    size = 48
    hemi, vertex = every_vertex()
    mapping = flatmap_mapping(surface_info(hemi, vertex), size)
    layout = flat_layout()
    values = np.array([layout["lh" if h == 0 else "rh"][0][v, axis] for h, v in zip(hemi, vertex)])
    image = mapping.to_flatmaps(values[None])[0]
    x0, x1, y0, y1 = visual_crop()
    centre = (np.arange(size) + 0.5) / size
    want = np.broadcast_to((x0 + centre * (x1 - x0))[None] if axis == 0 else (y1 - centre * (y1 - y0))[:, None],
                           (size, size))
    diff = np.abs(image - want)[mapping.mask]
    half_pixel = (x1 - x0) / size / 2
    assert mapping.mask.sum() > size * size / 4
    assert (diff <= half_pixel + 1e-3).all()  # a pixel's samples lie inside it
    assert np.mean(diff < 1e-2) > 0.8  # fully covered pixels: exactly the centre
    assert (image[~mapping.mask] == 0).all()


def test_the_same_pixel_is_the_same_cortex_in_every_subject():
    """Two datasets with different vertices (one on full fsaverage) weigh shared vertices alike wherever a pixel
    sees only vertices both hold."""
    rng = np.random.default_rng(0)
    hemi, vertex = every_vertex()
    a = flatmap_mapping(surface_info(hemi, vertex), 40)
    keep = rng.random(len(hemi)) > 0.1
    extra = rng.choice(np.arange(N5, 163842), 500, replace=False)  # vertices fsaverage5 lacks: no pixel
    hemi_b = np.concatenate([hemi[keep], np.zeros(500, int)])
    vertex_b = np.concatenate([vertex[keep], extra])
    b = flatmap_mapping(surface_info(hemi_b, vertex_b, 163842), 40)
    assert b._uncovered[-500:].all()
    dense_a = a.matrix.toarray()
    dense_b = b.matrix.toarray()[:, :keep.sum()]
    full = (dense_a[:, ~keep] == 0).all(1) & a.mask.ravel()
    assert full.sum() > 100
    np.testing.assert_allclose(dense_b[full], dense_a[full][:, keep], atol=1e-6)


def test_the_left_occipital_pole_lands_left_of_the_middle():
    from tests.surface_fixture import patch_vertices

    hemi, vertex = every_vertex()
    mapping = flatmap_mapping(surface_info(hemi, vertex), 64)
    values = np.zeros(len(hemi))
    values[patch_vertices()] = 1.0  # left hemisphere's first block of columns
    image = mapping.to_flatmaps(values[None])[0]
    rows, cols = np.nonzero(image > 0.5)
    assert len(cols) > 5 and cols.max() < 32 and cols.min() > 16  # left half, near the middle


def test_mapping_round_trips_and_refuses_pycortex_options(tmp_path):
    from tests.surface_fixture import visual_labels

    general = [np.nonzero(visual_labels(h)[0])[0] for h in ("lh", "rh")]
    hemi = np.repeat([0, 1], [len(g) for g in general])
    info = surface_info(hemi, np.concatenate(general), path=tmp_path / "x.h5")
    mapping = flatmap_mapping(info, 32)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        write_mapping(f.create_group("mapping"), mapping)
    with h5py.File(tmp_path / "m.h5") as f:
        back = read_mapping(f["mapping"])
    assert back.mesh == "fsaverage" and back.bbox == visual_crop() and back.pycortex_subject == ""
    assert (back.matrix != mapping.matrix).nnz == 0
    with pytest.raises(InputError, match="apply to volume datasets"):
        flatmap_mapping(info, 32, pycortex_subject="S1")


def test_cache_of_a_surface_dataset(tmp_path):
    from fmrikit.data.flatmaps.cache import flatmap_dataset, read_flatmap_info
    from fmrikit.data.surface import preprocess_nsd_surface
    from tests.surface_fixture import write_tree

    tree = write_tree(tmp_path / "nsd")
    result = preprocess_nsd_surface(tree, 2, root=tmp_path / "proj", flatmap=False)
    path = flatmap_dataset(2, root=tmp_path / "proj", size=32)
    info = read_flatmap_info(path)
    with h5py.File(result.betas) as f, h5py.File(path) as c:
        np.testing.assert_allclose(c["flatmaps"][:3], info.mapping.to_flatmaps(f["betas"][:3]), atol=2e-2)
    params = json.loads(path.with_suffix(".json").read_text())["parameters"]
    assert "visual_crop" in params["mesh"] and "pycortex_subject" not in params
    assert flatmap_dataset(2, root=tmp_path / "proj", size=32) == path  # up to date: kept
