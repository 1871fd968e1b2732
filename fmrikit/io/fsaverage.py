"""fsaverage meshes without any download, and the flat plane both hemispheres share.

nilearn ships fsaverage5 in its package data (pial, white, inflated, sphere, flat, sulcal depth).
fsaverage's vertices are in icosahedral order: each subdivision appends the midpoints of the previous
level's edges, so fsaverage5's 10,242 vertices per hemisphere are the first 10,242 of fsaverage's 163,842,
and a full-fsaverage vector is drawn on fsaverage5 by taking them. Full-resolution geometry (for distances
on fsaverage itself) comes from an NSD tree's ``nsddata/freesurfer/fsaverage/surf/`` when needed.

The flat plane: nilearn's flat patches in millimetres (dorsal up), the left hemisphere on the left and the
right one on the right with their occipital poles facing each other across :data:`FLAT_GAP_MM`, as a
pycortex flatmap shows them. :func:`visual_crop` is the fixed square of that plane every fsaverage
picture and flatmap operator shows, so one pixel is one piece of cortex for every subject.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError
from fmrikit.io.surface import HEMIS

#: Vertices per hemisphere of fsaverage5 (icosahedron order 5) and fsaverage (order 7).
FSAVERAGE5_VERTICES = 10242
FSAVERAGE_VERTICES = 163842
#: Vertices of the icosahedron subdivided k times, k = 0..7: 10 * 4**k + 2.
ICO_VERTICES = tuple(10 * 4**k + 2 for k in range(8))
#: Millimetres between the two hemispheres' occipital ends on the flat plane.
FLAT_GAP_MM = 10.0
#: The visual crop holds the cortex posterior to this y (mm, fsaverage's pial surface, MNI305 space):
#: the occipital lobe with the posterior parietal and ventral temporal cortex, where NSD's nsdgeneral lies.
VISUAL_Y_MM = -30.0

_NILEARN_PART = {"pial": "pial", "white": "white", "inflated": "infl", "sphere": "sphere", "flat": "flat"}
_NILEARN_HEMI = {"lh": "left", "rh": "right"}
SURFACES = ("pial", "white", "midthickness", "inflated", "sphere", "flat")


def check_hemi(hemi: str) -> str:
    if hemi not in HEMIS:
        raise InputError("unknown hemisphere", expected="lh or rh", found=repr(hemi))
    return hemi


@lru_cache(maxsize=None)
def fsaverage5_mesh(surface: str, hemi: str) -> tuple[np.ndarray, np.ndarray]:
    """A fsaverage5 surface from nilearn's package data.

    Parameters
    ----------
    surface : {"pial", "white", "midthickness", "inflated", "sphere", "flat"}
        ``midthickness`` is the vertex-wise mean of white and pial; ``flat`` holds only the patch's faces
        (the cut medial wall is off the plane and in none).
    hemi : {"lh", "rh"}

    Returns
    -------
    coords : ndarray of float64, shape (10242, 3)
        Millimetres (read-only).
    faces : ndarray of int64, shape (n_faces, 3)
    """
    check_hemi(hemi)
    if surface == "midthickness":
        (white, faces), (pial, _) = fsaverage5_mesh("white", hemi), fsaverage5_mesh("pial", hemi)
        coords = (white + pial) / 2
    else:
        if surface not in _NILEARN_PART:
            raise InputError("unknown surface", expected=", ".join(SURFACES), found=repr(surface))
        coords, faces = _nilearn_gifti(_NILEARN_PART[surface], hemi)
        coords, faces = np.asarray(coords, np.float64), np.asarray(faces, np.int64)
    coords.flags.writeable = False
    faces.flags.writeable = False
    return coords, faces


@lru_cache(maxsize=None)
def fsaverage5_sulc(hemi: str) -> np.ndarray:
    """Sulcal depth of fsaverage5, shape (10242,) (positive in sulci), for picture backgrounds."""
    return np.asarray(_nilearn_gifti("sulc", check_hemi(hemi)), np.float64).ravel()


def _nilearn_gifti(part: str, hemi: str):
    """``agg_data()`` of nilearn's shipped ``fsaverage5/<part>_<left|right>.gii.gz`` (read with nibabel, so
    nilearn's heavy ``datasets`` package is not imported)."""
    import importlib.util

    import nibabel as nib

    spec = importlib.util.find_spec("nilearn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "fsaverage5" / \
        f"{part}_{_NILEARN_HEMI[hemi]}.gii.gz"
    if not path.is_file():
        raise MissingInputError("nilearn's fsaverage5 data not found", path=path,
                                expected="nilearn >= 0.10 with its package data")
    return nib.load(str(path)).agg_data()


def read_freesurfer_surface(path: str | os.PathLike, n_vertices: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A FreeSurfer surface file (``lh.white``...) as (coords (n, 3) mm, faces (m, 3)).

    Raises
    ------
    MissingInputError, CorruptFileError
    DataValueError
        Another vertex count than ``n_vertices``.
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise MissingInputError("surface not found", path=path, expected="a FreeSurfer surface file")
    try:
        coords, faces = nib.freesurfer.read_geometry(str(path))
    except Exception as exc:
        raise CorruptFileError("not a FreeSurfer surface", path=path, found=f"{type(exc).__name__}: {exc}") from exc
    if n_vertices is not None and len(coords) != n_vertices:
        raise DataValueError("the surface has another vertex count", path=path, expected=str(n_vertices),
                             found=str(len(coords)))
    return np.asarray(coords, np.float64), np.asarray(faces, np.int64)


def check_vertex_count(n_vertices: int, where=None) -> int:
    """A per-hemisphere vertex count of the fsaverage family (icosahedral order), returned as int.

    Raises
    ------
    DataValueError
        Not 10 * 4**k + 2.
    """
    if int(n_vertices) not in ICO_VERTICES:
        raise DataValueError("not an fsaverage vertex count", path=where,
                             expected="10 * 4**k + 2 vertices per hemisphere (10242 fsaverage5, 163842 fsaverage)",
                             found=str(n_vertices))
    return int(n_vertices)


@lru_cache(maxsize=None)
def flat_layout() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both hemispheres' fsaverage5 flat patches placed on one plane.

    Returns
    -------
    dict
        Per hemisphere ``(xy, faces)``: xy float64 (10242, 2) in mm (x to the right, y dorsal), faces of the
        patch (int64 (n_faces, 3)). Vertices in no face (the cut medial wall) have meaningless positions.
    """
    out = {}
    for hemi in HEMIS:
        coords, faces = fsaverage5_mesh("flat", hemi)
        xy = np.array(coords[:, :2])
        used = np.unique(faces)
        # the left patch's occipital end is at +x, the right one's at -x: put them face to face at x = 0
        xy[:, 0] -= (xy[used, 0].max() + FLAT_GAP_MM / 2) if hemi == "lh" else (xy[used, 0].min() - FLAT_GAP_MM / 2)
        xy.flags.writeable = False
        out[hemi] = (xy, faces)
    return out


@lru_cache(maxsize=None)
def visual_crop() -> tuple[int, int, int, int]:
    """The fixed square of the flat plane around the visual cortex: ``(x0, x1, y0, y1)`` in whole mm.

    The bounding box of every patch vertex behind :data:`VISUAL_Y_MM` in both hemispheres, rounded out to
    millimetres and padded to a square about its centre. It depends on the meshes only, never on a dataset.
    """
    points = []
    for hemi, (xy, faces) in flat_layout().items():
        used = np.unique(faces)
        pial, _ = fsaverage5_mesh("pial", hemi)
        points.append(xy[used[pial[used, 1] < VISUAL_Y_MM]])
    points = np.concatenate(points)
    lo, hi = np.floor(points.min(0)).astype(int), np.ceil(points.max(0)).astype(int)
    side = int((hi - lo).max())
    lo = lo - (side - (hi - lo)) // 2
    return (int(lo[0]), int(lo[0] + side), int(lo[1]), int(lo[1] + side))
