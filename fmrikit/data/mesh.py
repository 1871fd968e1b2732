"""Distances along the cortical surface and Gaussian smoothing of per-vertex values (TROI's low-pass on a mesh).

The distance between two vertices is the shortest path along the mesh's edges (the neighbour graph, edges
weighted by their length in mm) of the mid-thickness (or white) surface. A Gaussian of ``sigma`` mm over that
distance, cut at ``truncate * sigma``, weighs every pair of a dataset's columns in one hemisphere; smoothing
is the normalised convolution ``(K v) / (K 1)`` over the columns, as the volume low-pass normalises over
the region's voxels.

Shortest paths come from scipy's Dijkstra run on small pieces of the mesh: a path no longer than the cut
never leaves the ball of that radius (straight-line distance) around its source, so the sources are taken
in spatially sorted blocks and each block searched within the union of its balls only.
"""

from __future__ import annotations

import numpy as np

from fmrikit.data.dataset import DatasetInfo, require_mesh
from fmrikit.errors import InputError, MissingInputError
from fmrikit.io.fsaverage import FSAVERAGE5_VERTICES, fsaverage5_mesh, read_freesurfer_surface
from fmrikit.io.surface import HEMIS

#: Gaussian weights are cut at this many sigmas.
TRUNCATE = 4.0
_BLOCK = 256


def edge_graph(coords: np.ndarray, faces: np.ndarray):
    """The mesh's neighbour graph: a symmetric CSR matrix (n, n) of edge lengths (mm)."""
    from scipy import sparse

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    length = np.linalg.norm(coords[edges[:, 0]] - coords[edges[:, 1]], axis=1)
    n = len(coords)
    graph = sparse.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n))
    return (graph + graph.T).tocsr()


def gaussian_kernel(coords: np.ndarray, faces: np.ndarray, vertices: np.ndarray, sigma_mm: float,
                    truncate: float = TRUNCATE):
    """Gaussian weights over surface distance between given vertices of one mesh.

    Parameters
    ----------
    coords : ndarray, shape (n, 3)
        Vertex positions (mm).
    faces : ndarray of int, shape (m, 3)
    vertices : ndarray of int, shape (V,)
        The vertices to weigh (distinct); paths may pass through any vertex of the mesh.
    sigma_mm : float
    truncate : float
        Pairs further apart than ``truncate * sigma_mm`` get no weight.

    Returns
    -------
    scipy.sparse.csr_matrix of float64, shape (V, V)
        ``exp(-d^2 / (2 sigma^2))`` for surface distance ``d`` within the cut (1 on the diagonal).
    """
    from scipy import sparse
    from scipy.sparse.csgraph import dijkstra
    from scipy.spatial import cKDTree

    if not sigma_mm > 0 or not truncate > 0:
        raise InputError("the smoothing kernel needs sigma > 0 and truncate > 0",
                         found=f"sigma {sigma_mm}, truncate {truncate}")
    vertices = np.asarray(vertices, np.int64)
    limit = truncate * sigma_mm
    graph = edge_graph(coords, faces)
    column = np.full(len(coords), -1, np.int64)
    column[vertices] = np.arange(len(vertices))
    cells = np.floor(coords[vertices] / limit).astype(np.int64)
    order = np.lexsort(cells.T[::-1])  # neighbouring sources end up in the same block
    tree = cKDTree(coords)
    rows, cols, vals = [], [], []
    for start in range(0, len(vertices), _BLOCK):
        sources = vertices[order[start:start + _BLOCK]]
        near = np.unique(np.concatenate(tree.query_ball_point(coords[sources], limit)))
        dist = dijkstra(graph[near][:, near], indices=np.searchsorted(near, sources), limit=limit)
        r, c = np.nonzero(np.isfinite(dist))
        target = column[near[c]]
        keep = target >= 0
        rows.append(column[sources[r[keep]]])
        cols.append(target[keep])
        vals.append(np.exp(-0.5 * (dist[r[keep], c[keep]] / sigma_mm) ** 2))
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(len(vertices), len(vertices)))


def surface_geometry(info: DatasetInfo, hemi: str, surface: str = "midthickness") -> tuple[np.ndarray, np.ndarray]:
    """A surface of a dataset's mesh: fsaverage5 from nilearn for 10,242 vertices per hemisphere, otherwise the
    fsaverage surfaces of the dataset's NSD tree (``nsddata/freesurfer/fsaverage/surf/{lh,rh}.{white,pial}``).

    Parameters
    ----------
    info : DatasetInfo
        A surface dataset.
    hemi : {"lh", "rh"}
    surface : {"midthickness", "white"}
        ``midthickness``: the mean of white and pial.

    Raises
    ------
    MissingInputError
        A full-fsaverage dataset without the fsaverage surfaces (nilearn ships only fsaverage5).
    """
    require_mesh(info, "surface distances")
    if surface not in ("midthickness", "white"):
        raise InputError("unknown surface for distances", expected="midthickness or white", found=repr(surface))
    n = info.n_mesh_vertices
    if n == FSAVERAGE5_VERTICES:
        return fsaverage5_mesh(surface, hemi)
    from fmrikit.io.nsd import NSDLayout
    from fmrikit.io.nsd_surface import fsaverage_surface_path

    if not info.nsd_root:
        raise MissingInputError("distances on full fsaverage need its surfaces", path=info.path,
                                expected="a dataset of an NSD tree with nsddata/freesurfer/fsaverage/surf/ "
                                         "(nilearn ships only fsaverage5)", found=f"{n} vertices per hemisphere")
    layout = NSDLayout(info.nsd_root)
    white, faces = read_freesurfer_surface(fsaverage_surface_path(layout, hemi, "white"), n)
    if surface == "white":
        return white, faces
    pial, _ = read_freesurfer_surface(fsaverage_surface_path(layout, hemi, "pial"), n)
    return (white + pial) / 2, faces


def mesh_kernel(info: DatasetInfo, columns_ijk: np.ndarray, sigma_mm: float, surface: str = "midthickness",
                truncate: float = TRUNCATE):
    """The Gaussian kernel over surface distance between a surface dataset's columns (no weight across
    hemispheres).

    Parameters
    ----------
    info : DatasetInfo
    columns_ijk : ndarray of int, shape (V, 3)
        The columns' addresses (hemi, vertex, 0), e.g. ``SubjectData.ijk``.
    sigma_mm : float
    surface : {"midthickness", "white"}
    truncate : float

    Returns
    -------
    scipy.sparse.csr_matrix, shape (V, V)
    """
    from scipy import sparse

    columns_ijk = np.asarray(columns_ijk)
    blocks = []
    for h, hemi in enumerate(HEMIS):
        sel = np.nonzero(columns_ijk[:, 0] == h)[0]
        if len(sel):
            coords, faces = surface_geometry(info, hemi, surface)
            kernel = gaussian_kernel(coords, faces, columns_ijk[sel, 1], sigma_mm, truncate).tocoo()
            blocks.append((sel[kernel.row], sel[kernel.col], kernel.data))
    rows, cols, vals = (np.concatenate(parts) for parts in zip(*blocks))
    return sparse.csr_matrix((vals, (rows, cols)), shape=(len(columns_ijk), len(columns_ijk)))


def smooth(values: np.ndarray, kernel) -> np.ndarray:
    """Normalised convolution ``(K v) / (K 1)`` of per-column values (columns at the region's edge are not pulled
    towards zero by the cortex beyond it).

    Parameters
    ----------
    values : ndarray, shape (V,)
    kernel : sparse matrix, shape (V, V)

    Returns
    -------
    ndarray of float64, shape (V,)
    """
    return (kernel @ np.asarray(values, np.float64)) / np.asarray(kernel.sum(1)).ravel()
