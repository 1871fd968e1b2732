"""Do the flatmaps of two simulated subjects show the same cortex at the same pixel?

NeuroPictor trains one model on every subject's flatmaps on the premise that a pixel means the same place of
cortex in every subject. On a simulated world the truth says how far that holds: each subject's true visual areas,
pRF centres and noise-free responses are projected with its own flatmap operator, and the same pixels are compared
across subjects.

* **Area agreement**: the share of pixels, inside both subjects' maps and labelled in both, whose majority true
  area (V1, V2, V3, hV4, FFA, PPA, ...) is the same; chance is ``sum_a p1(a) p2(a)`` of the two label shares.
* **Response correlation**: per pixel, Pearson r across images between the two subjects' noise-free flatmaps
  (pixels with signal in both), its median over pixels, at the same pixel and with the second subject's map
  displaced by up to ``max_shift`` pixels; the displacement of the highest median is the apparent misalignment.
* **pRF distance**: the median distance (deg) between the two subjects' pRF centres at the same early-visual pixel.
"""

from __future__ import annotations

import os
from itertools import combinations
from typing import Any

import numpy as np

from fmrikit.data.flatmaps.operator import FlatmapMapping
from fmrikit.errors import DataValueError, InputError

#: Share of a pixel's weight that must fall on labelled / signal-carrying voxels for it to count.
COVERAGE = 0.5


def flatmap_alignment(nsd_root: str | os.PathLike, subjects: list[int], mappings: list[FlatmapMapping],
                      stim_ids: np.ndarray, max_shift: int = 3) -> dict[str, Any]:
    """Cross-subject alignment of flatmaps on a simulated world.

    Parameters
    ----------
    nsd_root : path-like
        The simulated tree (its ``simulation_truth.h5``).
    subjects : list of int
        At least two subjects.
    mappings : list of FlatmapMapping
        Each subject's flatmap operator (:func:`~fmrikit.data.flatmaps.flatmap_mapping`, or a cache's
        ``read_flatmap_info(path).mapping``), all of one size.
    stim_ids : ndarray of int, shape (n_images,)
        0-based stimulus ids whose noise-free responses are compared (at least 3).
    max_shift : int
        Largest displacement (pixels, per axis) of the second subject's map that is tried.

    Returns
    -------
    dict
        Per pair ``"sub-01~sub-02"`` and as the mean over pairs (``"mean"``): ``area_agreement``,
        ``area_agreement_chance``, ``n_area_pixels``, ``response_r`` (median r at the same pixel),
        ``response_r_best`` and ``best_shift`` ([dy, dx] pixels of the highest median r),
        ``response_r_by_shift`` (shift -> median r), ``n_response_pixels``, ``prf_distance_deg``,
        ``n_prf_pixels``; and ``size``, ``n_images``, ``max_shift``.

    Raises
    ------
    InputError
        Fewer than two subjects, mappings of different sizes or counts, or fewer than 3 images.
    """
    from fmrikit.data.world.truth import read_noise_free, read_truth

    if len(subjects) < 2 or len(mappings) != len(subjects):
        raise InputError("alignment needs two or more subjects, one mapping each",
                         found=f"{len(subjects)} subjects, {len(mappings)} mappings")
    if len({m.size for m in mappings}) > 1:
        raise InputError("flatmaps of different sizes", found=str([m.size for m in mappings]))
    stim_ids = np.asarray(stim_ids, dtype=np.int64)
    if stim_ids.size < 3:
        raise InputError("response correlations need at least 3 images", found=str(stim_ids.size))
    maps = {}
    for s, mapping in zip(subjects, mappings):
        truth = read_truth(nsd_root, s)
        resp, has = read_noise_free(nsd_root, s, stim_ids, mapping.ijk)
        row = _truth_rows(truth.ijk, mapping.ijk)
        area = np.where(row >= 0, truth.area[np.maximum(row, 0)], 0)
        prf = np.where(row[:, None] >= 0, truth.prf[np.maximum(row, 0), :2], np.nan)
        maps[s] = {"mask": mapping.mask, "responses": mapping.to_flatmaps(resp),
                   "signal": _pixel_share(mapping, has.astype(np.float32)) >= COVERAGE,
                   "area": _pixel_labels(mapping, area, len(truth.areas)),
                   "prf": _pixel_prf(mapping, prf)}
    out: dict[str, Any] = {}
    for a, b in combinations(subjects, 2):
        out[f"sub-{a:02d}~sub-{b:02d}"] = _pair(maps[a], maps[b], max_shift)
    pairs = list(out.values())
    out["mean"] = {k: float(np.mean([p[k] for p in pairs])) for k in pairs[0]
                   if isinstance(pairs[0][k], float)}
    out.update(size=int(mappings[0].size), n_images=int(stim_ids.size), max_shift=int(max_shift))
    return out


def _truth_rows(truth_ijk: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """Row of each voxel of ``ijk`` among the truth's informative voxels, -1 where it has none."""
    shape = tuple(int(v) + 1 for v in np.maximum(truth_ijk.max(0), np.asarray(ijk).max(0)))
    lookup = np.full(int(np.prod(shape)), -1, np.int64)
    lookup[np.ravel_multi_index(tuple(truth_ijk.T), shape)] = np.arange(len(truth_ijk))
    return lookup[np.ravel_multi_index(tuple(np.asarray(ijk).T), shape)]


def _pixel_share(mapping: FlatmapMapping, values: np.ndarray) -> np.ndarray:
    """Weighted mean of per-voxel values at each pixel, (size, size); 0 outside the mask."""
    return np.asarray(mapping.matrix @ values).reshape(mapping.size, mapping.size)


def _pixel_labels(mapping: FlatmapMapping, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Majority label per pixel (size, size) among labels > 0 covering >= COVERAGE of its weight; 0 elsewhere."""
    onehot = np.zeros((len(labels), n_labels), np.float32)
    onehot[np.arange(len(labels)), labels] = 1.0
    weight = np.asarray(mapping.matrix @ onehot)  # (size * size, n_labels)
    weight[:, 0] = 0.0
    best = weight.argmax(1)
    best[weight.max(1) < COVERAGE] = 0
    return best.reshape(mapping.size, mapping.size)


def _pixel_prf(mapping: FlatmapMapping, prf: np.ndarray) -> np.ndarray:
    """Mean pRF centre (deg) per pixel (size, size, 2) over its early voxels; NaN where they cover < COVERAGE."""
    early = np.isfinite(prf[:, 0]).astype(np.float32)
    share = _pixel_share(mapping, early)
    with np.errstate(invalid="ignore", divide="ignore"):
        xy = np.stack([_pixel_share(mapping, np.nan_to_num(prf[:, k]) * early) / share for k in (0, 1)], -1)
    xy[share < COVERAGE] = np.nan
    return xy


def _pair(a: dict, b: dict, max_shift: int) -> dict[str, Any]:
    both = a["mask"] & b["mask"]
    labelled = both & (a["area"] > 0) & (b["area"] > 0)
    if not labelled.any():
        raise DataValueError("the two subjects' flatmaps share no labelled pixel", expected="overlapping maps")
    la, lb = a["area"][labelled], b["area"][labelled]
    n_labels = int(max(la.max(), lb.max())) + 1
    pa, pb = np.bincount(la, minlength=n_labels) / la.size, np.bincount(lb, minlength=n_labels) / lb.size
    by_shift = {}
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            by_shift[(dy, dx)] = _shifted_r(a, b, dy, dx)
    best = max(by_shift, key=lambda k: -np.inf if np.isnan(by_shift[k][0]) else by_shift[k][0])
    prf = both & np.isfinite(a["prf"][..., 0]) & np.isfinite(b["prf"][..., 0])
    distance = np.linalg.norm(a["prf"][prf] - b["prf"][prf], axis=1)
    return {"area_agreement": float((la == lb).mean()), "area_agreement_chance": float(pa @ pb),
            "n_area_pixels": int(labelled.sum()), "response_r": by_shift[(0, 0)][0],
            "response_r_best": by_shift[best][0], "best_shift": [int(best[0]), int(best[1])],
            "response_r_by_shift": {f"{dy},{dx}": v[0] for (dy, dx), v in by_shift.items()},
            "n_response_pixels": by_shift[(0, 0)][1],
            "prf_distance_deg": float(np.median(distance)) if distance.size else float("nan"),
            "n_prf_pixels": int(prf.sum())}


def _shifted_r(a: dict, b: dict, dy: int, dx: int) -> tuple[float, int]:
    """Median over pixels of r across images between a's map at (y, x) and b's at (y + dy, x + dx)."""
    size = a["mask"].shape[0]
    ya, yb = slice(max(0, -dy), size - max(0, dy)), slice(max(0, dy), size - max(0, -dy))
    xa, xb = slice(max(0, -dx), size - max(0, dx)), slice(max(0, dx), size - max(0, -dx))
    keep = (a["mask"] & a["signal"])[ya, xa] & (b["mask"] & b["signal"])[yb, xb]
    if not keep.any():
        return float("nan"), 0
    ra, rb = a["responses"][:, ya, xa][:, keep], b["responses"][:, yb, xb][:, keep]
    ra, rb = ra - ra.mean(0), rb - rb.mean(0)
    denom = np.sqrt((ra ** 2).sum(0) * (rb ** 2).sum(0))
    r = np.divide((ra * rb).sum(0), denom, out=np.full(denom.shape, np.nan), where=denom > 0)
    return float(np.nanmedian(r)), int(keep.sum())
