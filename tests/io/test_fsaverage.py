import numpy as np
import pytest

from fmrikit.io.fsaverage import (FSAVERAGE5_VERTICES, ICO_VERTICES, check_vertex_count, flat_layout, fsaverage5_mesh,
                                  fsaverage5_sulc, visual_crop)
from fmrikit.errors import DataValueError


@pytest.mark.parametrize("hemi", ["lh", "rh"])
def test_fsaverage5_vertices_are_the_icosahedral_order_fsaverage_continues(hemi):
    """The shipped sphere is the icosahedron subdivided five times, vertices in subdivision order: the first 12 are
    the icosahedron and each level appends the midpoints of the previous level's edges. fsaverage (ico7) appends two
    more levels, so fsaverage5's vertices are fsaverage's first 10,242."""
    coords, faces = fsaverage5_mesh("sphere", hemi)
    assert coords.shape == (FSAVERAGE5_VERTICES, 3) and ICO_VERTICES[5] == FSAVERAGE5_VERTICES
    unit = coords / np.linalg.norm(coords, axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(unit[:12] @ unit[:12].T, -1, 1)))
    off = angle[~np.eye(12, dtype=bool)]
    # regular icosahedron: each vertex has 5 neighbours at 63.43 deg, 5 at 116.57 deg and its antipode
    assert np.allclose(np.sort(off.reshape(12, 11), axis=1)[:, :5], 63.435, atol=0.05)
    assert np.allclose(off.max(), 180, atol=0.05)
    for level in range(1, 6):
        old, new = unit[:ICO_VERTICES[level - 1]], unit[ICO_VERTICES[level - 1]:ICO_VERTICES[level]]
        parents = np.argsort(-(new @ old.T), axis=1)[:, :2]
        mid = old[parents[:, 0]] + old[parents[:, 1]]
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        error = np.degrees(np.arccos(np.clip((mid * new).sum(1), -1, 1)))
        assert error.max() < 0.1, level
        # the parents are one edge of the previous level apart: the level's edge length
        edge = np.degrees(np.arccos(np.clip((old[parents[:, 0]] * old[parents[:, 1]]).sum(1), -1, 1)))
        assert edge.max() < 1.3 * np.median(edge) and edge.min() > 0.7 * np.median(edge), level
    # the finest faces join each level-5 vertex to 6 neighbours
    degree = np.bincount(faces.ravel(), minlength=FSAVERAGE5_VERTICES)
    assert (degree[12:] == 6).all() and (degree[:12] == 5).all()


def test_flat_plane_puts_the_hemispheres_side_by_side_occipital_poles_facing():
    layout = flat_layout()
    for hemi, sign in (("lh", -1), ("rh", 1)):
        xy, faces = layout[hemi]
        used = np.unique(faces)
        assert (np.sign(xy[used, 0]) == sign).all()
        pial, _ = fsaverage5_mesh("pial", hemi)
        pole = used[np.argsort(pial[used, 1])[:20]]  # most posterior vertices
        assert np.abs(xy[pole, 0]).max() < 40  # next to the midline of the plane
        posterior = used[pial[used, 1] < -60]
        assert np.corrcoef(xy[posterior, 1], pial[posterior, 2])[0, 1] > 0.5  # dorsal is up
    x0, x1, y0, y1 = visual_crop()
    assert x1 - x0 == y1 - y0 and all(isinstance(v, int) for v in (x0, x1, y0, y1))
    assert x0 < -100 and x1 > 100  # both hemispheres' visual cortex
    assert fsaverage5_sulc("lh").shape == (FSAVERAGE5_VERTICES,)



def test_vertex_counts_of_the_fsaverage_family():
    assert check_vertex_count(163842) == 163842 and check_vertex_count(np.int64(10242)) == 10242
    with pytest.raises(DataValueError, match="10 \\* 4\\*\\*k"):
        check_vertex_count(10000)
