"""Gaussian smoothing over surface distance, against a brute-force all-pairs shortest path on a small mesh."""

import numpy as np
import pytest

from fmrikit.data.mesh import edge_graph, gaussian_kernel, mesh_kernel, smooth
from fmrikit.io.fsaverage import fsaverage5_mesh


@pytest.fixture(scope="module")
def small_mesh():
    """The fsaverage5 mid-thickness faces within 22 mm of the left occipital pole, renumbered."""
    white, faces = fsaverage5_mesh("white", "lh")
    pial, _ = fsaverage5_mesh("pial", "lh")
    coords = (white + pial) / 2
    pole = coords[np.argmin(coords[:, 1])]
    near = np.linalg.norm(coords - pole, axis=1) < 22
    faces = faces[near[faces].all(1)]
    used = np.unique(faces)
    renumber = np.full(len(coords), -1)
    renumber[used] = np.arange(len(used))
    return coords[used], renumber[faces]


def brute_force_distances(coords, faces):
    """Floyd-Warshall over the edges of the faces, dense (independent of scipy's graph code)."""
    n = len(coords)
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dist, 0)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        i, j = faces[:, a], faces[:, b]
        d = np.linalg.norm(coords[i] - coords[j], axis=1)
        dist[i, j] = dist[j, i] = d
    for k in range(n):
        np.minimum(dist, dist[:, k:k + 1] + dist[k:k + 1, :], out=dist)
    return dist


@pytest.mark.parametrize("block", [7, 256])
def test_kernel_matches_brute_force_surface_distances(small_mesh, block, monkeypatch):
    monkeypatch.setattr("fmrikit.data.mesh._BLOCK", block)  # sources searched in pieces of the mesh, or all at once
    coords, faces = small_mesh
    assert 60 < len(coords) < 400
    dist = brute_force_distances(coords, faces)
    rng = np.random.default_rng(0)
    vertices = np.sort(rng.choice(len(coords), len(coords) * 2 // 3, replace=False))
    sigma = 3.0
    full = np.exp(-0.5 * (dist[np.ix_(vertices, vertices)] / sigma) ** 2)
    kernel = gaussian_kernel(coords, faces, vertices, sigma, truncate=50).toarray()  # no cut on this mesh
    np.testing.assert_allclose(kernel, full, rtol=1e-9, atol=1e-12)
    cut = gaussian_kernel(coords, faces, vertices, sigma, truncate=2.0).toarray()
    within = dist[np.ix_(vertices, vertices)] <= 2.0 * sigma
    np.testing.assert_allclose(cut[within], full[within], rtol=1e-9)
    assert (cut[~within] == 0).all() and (~within).any()
    values = rng.normal(size=len(vertices))
    np.testing.assert_allclose(smooth(values, gaussian_kernel(coords, faces, vertices, sigma, truncate=50)),
                               full @ values / full.sum(1), rtol=1e-9)


def test_surface_distance_is_longer_than_the_straight_line_across_a_sulcus(small_mesh):
    coords, faces = small_mesh
    graph = edge_graph(coords, faces)
    assert (graph != graph.T).nnz == 0
    dist = brute_force_distances(coords, faces)
    straight = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    assert (dist >= straight - 1e-9).all() and (dist > 1.5 * straight + 1).any()


def test_dataset_kernel_keeps_hemispheres_apart():
    from fmrikit.data.dataset import DatasetInfo

    ijk = np.array([[0, 5, 0], [1, 5, 0], [0, 6, 0], [1, 9000, 0]])
    info = DatasetInfo(path=None, subject=1, stim_id=np.zeros(0), session=np.zeros(0), shared=np.zeros(0, bool),
                       ijk=ijk, affine=None, volume_shape=(2, 10242, 1), stimuli_path="", stimuli_dataset="",
                       pycortex_subject="", pycortex_xfm="", ncsnr=None, mesh="fsaverage")
    kernel = mesh_kernel(info, ijk, sigma_mm=50.0).toarray()
    assert kernel[0, 1] == 0 and kernel[1, 0] == 0 and kernel[0, 2] > 0 and kernel[1, 3] > 0
    np.testing.assert_allclose(np.diag(kernel), 1)


def test_full_fsaverage_geometry_comes_from_the_nsd_tree(tmp_path):
    """nilearn ships only fsaverage5: a 163,842-vertex dataset reads nsddata/freesurfer/fsaverage/surf/."""
    import nibabel as nib

    from fmrikit.data.dataset import DatasetInfo
    from fmrikit.data.mesh import surface_geometry
    from fmrikit.errors import DataValueError, MissingInputError

    n = 163842
    rng = np.random.default_rng(0)
    faces = rng.integers(0, n, (50, 3))
    surf = tmp_path / "nsd/nsddata/freesurfer/fsaverage/surf"
    surf.mkdir(parents=True)
    (tmp_path / "nsd/nsddata/ppdata").mkdir(parents=True)
    white, pial = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    for name, coords in (("white", white), ("pial", pial)):
        nib.freesurfer.write_geometry(str(surf / f"rh.{name}"), coords, faces)

    def info(nsd_root, vertices=n):
        return DatasetInfo(path=tmp_path / "d.h5", subject=1, stim_id=np.zeros(0), session=np.zeros(0),
                           shared=np.zeros(0, bool), ijk=np.zeros((1, 3), int), affine=None,
                           volume_shape=(2, vertices, 1), stimuli_path="", stimuli_dataset="", pycortex_subject="",
                           pycortex_xfm="", ncsnr=None, nsd_root=nsd_root, mesh="fsaverage")

    coords, got_faces = surface_geometry(info(str(tmp_path / "nsd")), "rh")
    np.testing.assert_allclose(coords, (white + pial) / 2, atol=1e-4)  # FreeSurfer stores float32
    np.testing.assert_array_equal(got_faces, faces)
    with pytest.raises(MissingInputError, match="need its surfaces"):
        surface_geometry(info(""), "rh")
    with pytest.raises(DataValueError, match="another vertex count"):
        surface_geometry(info(str(tmp_path / "nsd"), 40962), "rh")
