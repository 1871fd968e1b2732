"""The template layout: S1's visual areas and category regions drawn on its flatmap.

pycortex ships S1's localiser regions in ``overlays.svg``: V1, V2, V3 as bands, FFA, OFA, PPA,
OPA, RSC, EBA and IPS as patches (V4, V3A/B, V7 and LO are named there but not drawn). They are
rasterised on the flatmap's pixel grid; hV4 and V3A/B are drawn as bands beyond the ventral and
the dorsal half of V3, LO beyond those, a word patch lateral to FFA (VWFA) and a food patch
between FFA and PPA (:mod:`~fmrikit.data.world.params` cites each choice). Every simulated subject
reads this template through its own small warp (:mod:`~fmrikit.data.world.layout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fmrikit.data.anatomy import Anatomy
from fmrikit.data.world import params as P


@dataclass(frozen=True)
class Template:
    """Maps on the flatmap pixel grid, arrays of shape (width, height) indexed ``[x, y]``.

    Attributes
    ----------
    early : ndarray of int8
        Index into :data:`~fmrikit.data.world.params.AREAS` of V1, V2, V3, hV4, V3AB; 0 elsewhere.
    band_t : ndarray of float32
        Position across an early area's band, 0 at its inner border (towards V1) to 1 at its
        outer border; NaN outside early areas.
    band_s : ndarray of float32
        Position along the band, 0 at the end nearest the occipital pole to 1 at the far end.
    region_dist : dict of str to ndarray of float32
        Distance (pixels) to each other region of :data:`~fmrikit.data.world.params.AREAS`
        (LO, OFA, ..., IPS), 0 inside it.
    visual_depth : ndarray of float32
        Distance (pixels) inside the visually driven region; 0 outside.
    nsdgeneral : ndarray of bool
        The annotated region, drawn on the template (a fringe of driven cortex lies outside it).
    mm_per_pixel : float
    """

    early: np.ndarray
    band_t: np.ndarray
    band_s: np.ndarray
    region_dist: dict[str, np.ndarray]
    visual_depth: np.ndarray
    nsdgeneral: np.ndarray
    mm_per_pixel: float


def s1_region_masks(anat: Anatomy) -> dict[str, np.ndarray]:
    """Rasterise S1's drawn regions (:data:`~fmrikit.data.world.params.S1_REGIONS`) on the flatmap grid.

    Returns
    -------
    dict of str to ndarray of bool, shape (width, height)
    """
    from fmrikit.io.pycortex import import_cortex, quiet_pycortex

    cortex = import_cortex()
    with quiet_pycortex():
        svg = cortex.db.get_overlay("S1")
    width, height = anat.flat_size
    gx, gy = np.mgrid[0:width, 0:height]
    # the svg's vertex coordinates are the flat surface scaled to the svg's size (pycortex's convention)
    vts = np.stack([gx.ravel() / width * svg.svgshape[0], gy.ravel() / height * svg.svgshape[1]], 1)
    masks = {}
    for name in P.S1_REGIONS:
        mask = np.zeros(width * height, dtype=bool)
        mask[svg.rois.shapes[name].get_mask(vts.copy())] = True
        masks[name] = mask.reshape(width, height)
    return masks


@lru_cache(maxsize=1)
def build_template() -> Template:
    """Draw the template layout on S1's flatmap (a few seconds; cached per process)."""
    from scipy import ndimage

    from fmrikit.data.anatomy import load_anatomy

    anat = load_anatomy()
    width, height = anat.flat_size
    mm = anat.mm_per_pixel
    shown = np.zeros((width, height), dtype=bool)
    shown[tuple(anat.pixel_xy.T)] = True
    masks = {name: mask & shown for name, mask in s1_region_masks(anat).items()}
    right = np.zeros((width, height), dtype=bool)
    right[width // 2:] = True

    def dist(mask):
        return ndimage.distance_transform_edt(~mask).astype(np.float32) if mask.any() else \
            np.full(mask.shape, np.inf, np.float32)

    v1 = masks["V1"]
    v2 = masks["V2"] & ~v1
    v3 = masks["V3"] & ~v1 & ~v2
    early_union = v1 | v2 | v3
    d1, d2, d3 = dist(v1), dist(v2), dist(v3)
    band = P.DERIVED_BAND_MM / mm
    early = np.zeros((width, height), dtype=np.int8)
    band_t = np.full((width, height), np.nan, dtype=np.float32)
    areas = {name: np.zeros((width, height), dtype=bool) for name in ("hV4", "V3AB", "LO", "VWFA", "food")}
    beyond = shown & ~early_union & (d3 < d2) & (d3 < d1)
    for hemi in (~right, right):
        ys = np.nonzero(v3 & hemi)[1]
        lo, hi = np.percentile(ys, [2, 98])
        mid = (lo + hi) / 2  # flatmap y grows from ventral to dorsal cortex
        y = np.broadcast_to(np.arange(height)[None, :], (width, height))
        inside = beyond & hemi & (y >= lo) & (y <= hi)
        areas["hV4"] |= inside & (d3 <= band) & (y < mid)
        areas["V3AB"] |= inside & (d3 <= band) & (y >= mid)
        areas["LO"] |= inside & (d3 > band) & (d3 <= 2 * band) & (np.abs(y - mid) <= (hi - lo) / 6)
        # word and food patches from the FFA and PPA of this hemisphere
        ffa = np.argwhere(masks["FFA"] & hemi).mean(0)
        ppa = np.argwhere(masks["PPA"] & hemi).mean(0)
        lateral = np.array([1.0 if hemi is right else -1.0, 0.0])
        gx, gy = np.mgrid[0:width, 0:height]
        for name, centre in (("VWFA", ffa + lateral * P.VWFA_LATERAL_MM / mm), ("food", (ffa + ppa) / 2)):
            areas[name] |= shown & hemi & (np.hypot(gx - centre[0], gy - centre[1]) <= P.PATCH_RADIUS_MM / mm)

    d_not12 = dist(~(v1 | v2))
    d_outer = dist(~early_union)
    for name, mask, d_in, d_out in (("V1", v1, d_not12, d2), ("V2", v2, d1, d3), ("V3", v3, d2, d_outer)):
        early[mask] = P.AREAS.index(name)
        band_t[mask] = d_in[mask] / np.maximum(d_in[mask] + d_out[mask], 1e-6)
    for name in ("hV4", "V3AB"):
        mask = areas[name]
        early[mask] = P.AREAS.index(name)
        band_t[mask] = np.clip(d3[mask] / band, 0, 1)

    band_s = np.full((width, height), np.nan, dtype=np.float32)
    posterior = np.quantile(anat.world[:, 1], 0.02)
    for hemi_index, hemi in enumerate((~right, right)):
        # the occipital pole: the flatmap position of the most posterior cortex of this hemisphere
        back = (anat.hemisphere == hemi_index) & (anat.world[:, 1] <= posterior + 8.0)
        pole = anat.flat_xy[back].mean(0)
        gx, gy = np.mgrid[0:width, 0:height]
        d_pole = np.hypot(gx - pole[0], gy - pole[1])
        for index in range(1, len(P.EARLY_AREAS) + 1):
            mask = (early == index) & hemi
            if mask.any():
                near, far = np.percentile(d_pole[mask], [1, 99])
                band_s[mask] = np.clip((d_pole[mask] - near) / max(far - near, 1e-6), 0, 1)

    regions = {"OFA": masks["OFA"], "FFA": masks["FFA"], "PPA": masks["PPA"], "OPA": masks["OPA"],
               "RSC": masks["RSC"], "EBA": masks["EBA"], "IPS": masks["IPS"], "LO": areas["LO"],
               "VWFA": areas["VWFA"], "food": areas["food"]}
    region_dist = {name: dist(mask & ~(early > 0)) for name, mask in regions.items()}

    core = early > 0
    for mask in regions.values():
        core |= mask
    close = P.DERIVED_BAND_MM * 2 / mm  # fills the gaps between neighbouring regions, like a hand-drawn outline
    general = np.zeros_like(core)
    for hemi in (~right, right):
        grown = dist(core & hemi) <= close
        closed = ndimage.distance_transform_edt(grown) > close
        general |= closed | (core & hemi)
    general = (ndimage.gaussian_filter(general.astype(np.float32), 2.0 / mm) > 0.5) & shown
    visual = (dist(general) <= P.FRINGE_MM / mm) & shown
    depth = ndimage.distance_transform_edt(visual).astype(np.float32)
    return Template(early=early, band_t=band_t, band_s=band_s, region_dist=region_dist, visual_depth=depth,
                    nsdgeneral=general, mm_per_pixel=mm)
