"""One simulated subject's functional layout: the template read through a small warp.

Each flatmap pixel reads the template (:mod:`~fmrikit.data.world.atlas`) at its warped position;
each cortical voxel then takes what its pixels show, weighted as pycortex maps pixels to voxels.
Areas, pRFs, category regions and the signal-to-noise map follow the subject's warp; the
annotated region ``nsdgeneral`` and the ``streams`` atlas are anatomical (drawn on the template,
as NSD draws them on fsaverage), so they do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmrikit.data.anatomy import Anatomy
from fmrikit.data.world import params as P
from fmrikit.data.world.atlas import Template
from fmrikit.data.world.fields import smooth_field

#: Non-early regions in the order that decides a pixel claimed by two of them.
REGION_PRIORITY: tuple[str, ...] = ("VWFA", "food", "FFA", "OFA", "EBA", "PPA", "OPA", "RSC", "LO", "IPS")
#: NSD ``streams`` label of each area (1 early, 2 midventral, 3 midlateral, 4 midparietal, 5 ventral,
#: 6 lateral, 7 parietal).
STREAM_OF: dict[str, int] = {"V1": 1, "V2": 1, "V3": 1, "hV4": 2, "LO": 3, "V3AB": 4, "FFA": 5, "VWFA": 5,
                             "food": 5, "PPA": 5, "OFA": 6, "EBA": 6, "OPA": 7, "IPS": 7, "RSC": 7}
STREAM_NAMES = ["early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"]
#: NSD ``prf-visualrois`` names (label = position + 1).
PRF_ROIS = ["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"]


@dataclass(frozen=True)
class SubjectLayout:
    """Per cortical voxel (the rows of :attr:`Anatomy.cortex_ijk`).

    Attributes
    ----------
    area : ndarray of int64, shape (n_cortex,)
        Index into :data:`~fmrikit.data.world.params.AREAS`.
    position : ndarray, shape (n_cortex, 2)
        Warped template position on the flatmap (mm).
    membership : ndarray, shape (n_cortex, len(REGION_PRIORITY))
        How much of each region's preference reaches the voxel (1 inside, falling off outside).
    prf : ndarray, shape (n_cortex, 4)
        pRF centre x, y (deg; y up, x right), linear sigma (deg) and CSS exponent; NaN outside
        early areas. pRF size (sd of the point response) is sigma / sqrt(exponent).
    ncsnr : ndarray, shape (n_cortex,)
        True noise-ceiling SNR (signal sd / noise sd); 0 for voxels without signal.
    nsdgeneral : ndarray of bool, shape (n_cortex,)
    streams : ndarray of int64, shape (n_cortex,)
        NSD ``streams`` label, 0 outside.
    prf_label : ndarray of int64, shape (n_cortex,)
        NSD ``prf-visualrois`` label (1..7 = :data:`PRF_ROIS`), 0 outside.
    """

    area: np.ndarray
    position: np.ndarray
    membership: np.ndarray
    prf: np.ndarray
    ncsnr: np.ndarray
    nsdgeneral: np.ndarray
    streams: np.ndarray
    prf_label: np.ndarray

    @property
    def early(self) -> np.ndarray:
        """Voxels of V1, V2, V3, hV4 and V3A/B, (n_cortex,) bool."""
        return (self.area >= 1) & (self.area <= len(P.EARLY_AREAS))

    @property
    def higher(self) -> np.ndarray:
        """Visual voxels beyond the early areas, (n_cortex,) bool."""
        return self.area > len(P.EARLY_AREAS)

    @property
    def voxel_class(self) -> np.ndarray:
        """Index into :data:`~fmrikit.data.world.params.VOXEL_CLASSES` (0 for voxels without signal)."""
        out = np.zeros(len(self.area), dtype=np.int64)
        names = np.array(P.AREAS)[self.area]
        out[self.early] = P.VOXEL_CLASSES.index("early")
        out[self.higher] = P.VOXEL_CLASSES.index("visual")
        for region, category in P.CATEGORY_OF.items():
            out[names == region] = P.VOXEL_CLASSES.index(category)
        out[self.ncsnr <= 0] = 0
        return out


def subject_layout(anat: Anatomy, template: Template, rng: np.random.Generator) -> SubjectLayout:
    """Draw a subject's warp, region jitter, pRF scatter and signal-to-noise map.

    Parameters
    ----------
    anat : Anatomy
    template : Template
    rng : numpy.random.Generator
        The subject's own stream.
    """
    mm = template.mm_per_pixel
    pix = anat.pixel_xy.astype(np.float64)
    warp = smooth_field(rng, 2, 2, (P.WARP_WAVELENGTH_MM / mm, 2 * P.WARP_WAVELENGTH_MM / mm), 8)
    shift = warp(pix)
    shift *= P.WARP_RMS_MM / mm / np.sqrt((shift ** 2).sum(1).mean())
    jitter = rng.normal(0, P.REGION_JITTER_MM / mm, (len(REGION_PRIORITY), 2))
    labels, ecc_xy, membership, depth = _read_template(template, pix + shift, jitter)
    weights = anat.pixel_map  # (n_pixels, n_cortex), rows sum to 1
    total = np.asarray(weights.sum(0)).ravel()

    def per_voxel(values):
        return np.asarray(weights.T @ values) / total.reshape((-1,) + (1,) * (np.ndim(values) - 1))

    area = per_voxel(np.eye(len(P.AREAS))[labels]).argmax(1)
    position = per_voxel(pix + shift) * mm
    member = per_voxel(membership)
    depth_mm = per_voxel(depth) * mm

    # pRFs of early voxels: the mean visual-field position of the voxel's early pixels
    early_pix = (labels >= 1) & (labels <= len(P.EARLY_AREAS))
    with np.errstate(invalid="ignore", divide="ignore"):
        xy = np.asarray(weights.T @ (ecc_xy * early_pix[:, None])) / np.asarray(weights.T @ early_pix)[:, None]
    prf = np.full((len(area), 4), np.nan)
    early = (area >= 1) & (area <= len(P.EARLY_AREAS))
    names = np.array(P.AREAS)[area]
    size = np.zeros(len(area))
    exponent = np.ones(len(area))
    for name in P.EARLY_AREAS:
        sel = names == name
        intercept, slope = P.PRF_SIZE[name]
        size[sel] = intercept + slope * np.hypot(*xy[sel].T)
        exponent[sel] = P.CSS_EXPONENT[name]
    scatter = rng.normal(0, P.PRF_SCATTER, (len(area), 2)) * size[:, None]
    prf[early, :2] = xy[early] + scatter[early]
    prf[early, 2] = size[early] * np.sqrt(exponent[early])
    prf[early, 3] = exponent[early]

    ncsnr = _ncsnr(area, position, depth_mm, prf, rng)
    nsdgeneral = per_voxel(template.nsdgeneral[tuple(anat.pixel_xy.T)].astype(np.float64)) > 0.5
    template_labels, _, _, template_depth = _read_template(template, pix, np.zeros_like(jitter))
    streams = _streams(template, pix, template_labels, template_depth, per_voxel)
    prf_label = np.zeros(len(area), dtype=np.int64)
    upper = prf[:, 1] > 0
    for k, name in enumerate(("V1", "V2", "V3")):
        prf_label[(names == name) & upper] = 2 * k + 1
        prf_label[(names == name) & ~upper] = 2 * k + 2
    prf_label[names == "hV4"] = 7
    return SubjectLayout(area=area, position=position, membership=member, prf=prf, ncsnr=ncsnr,
                         nsdgeneral=nsdgeneral, streams=streams, prf_label=prf_label)


def _read_template(template: Template, points: np.ndarray, jitter: np.ndarray):
    """Template values at flatmap ``points`` (n, 2) pixels, category regions shifted by ``jitter``.

    Returns area label (n,), visual-field position (n, 2) deg, region membership (n, n_regions) and
    visual depth (n,) pixels.
    """
    shape = template.early.shape
    width = shape[0]

    def at(raster, pts):
        i = np.clip(np.rint(pts).astype(np.int64), 0, np.array(shape) - 1)
        return raster[i[:, 0], i[:, 1]]

    early = at(template.early, points).astype(np.int64)
    t, s = at(template.band_t, points), at(template.band_s, points)
    falloff = P.CATEGORY_FALLOFF_MM / template.mm_per_pixel
    dist = np.stack([at(template.region_dist[name], points - jitter[k]) for k, name in enumerate(REGION_PRIORITY)], 1)
    membership = np.exp(-0.5 * (dist / falloff) ** 2)
    depth = at(template.visual_depth, points)
    labels = np.where(depth > 0, P.AREAS.index("visual"), 0)
    for k in range(len(REGION_PRIORITY) - 1, -1, -1):  # the first region in the priority wins
        labels = np.where(dist[:, k] < 0.5, P.AREAS.index(REGION_PRIORITY[k]), labels)
    labels = np.where(early > 0, early, labels)

    # mirrored hemifield maps: polar angle runs -90..90 deg across V1, back across V2, and so on
    rising = np.isin(early, [P.AREAS.index("V1"), P.AREAS.index("V3")])
    angle = np.where(rising, -90 + 180 * t, 90 - 180 * t)
    ecc = P.HH_E2_DEG * ((1 + P.MAX_ECC_DEG / P.HH_E2_DEG) ** s - 1)
    side = np.where(points[:, 0] < width / 2, 1.0, -1.0)  # the left hemisphere sees the right hemifield
    xy = np.stack([side * ecc * np.cos(np.deg2rad(angle)), ecc * np.sin(np.deg2rad(angle))], 1)
    xy[early == 0] = 0
    return labels, np.nan_to_num(xy), membership, depth


def _streams(template: Template, pix: np.ndarray, labels: np.ndarray, depth: np.ndarray, per_voxel) -> np.ndarray:
    """NSD ``streams`` on the template: each area's stream; other visual cortex takes its nearest region's."""
    i = np.rint(pix).astype(np.int64)
    dist = np.stack([template.region_dist[name][i[:, 0], i[:, 1]] for name in REGION_PRIORITY], 1)
    nearest = np.array([STREAM_OF[REGION_PRIORITY[k]] for k in dist.argmin(1)])
    names = np.array(P.AREAS)[labels]
    stream = np.array([STREAM_OF.get(n, 0) for n in P.AREAS])[labels]
    stream = np.where((names == "visual") & (depth > 0), nearest, stream)
    return per_voxel(np.eye(len(STREAM_NAMES) + 1)[stream]).argmax(1)


def _ncsnr(area: np.ndarray, position: np.ndarray, depth_mm: np.ndarray, prf: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """True ncsnr: the area's typical value x a smooth gain x a taper at the region's edge x the share of
    the pRF on the image (early areas); a few smooth patches without response; a soft cap."""
    gain = np.array([P.NCSNR_GAIN.get(n, 0.0) for n in P.AREAS])[area]
    fields = smooth_field(rng, 2, 2, P.GAIN_WAVELENGTH_MM)(position)
    value = gain * np.exp(P.GAIN_LOG_SD * fields[:, 0] + rng.normal(0, P.SUBJECT_LOG_SD))
    value *= np.clip(depth_mm / (2 * P.FRINGE_MM), 0.1, 1.0)
    early = np.isfinite(prf[:, 0])
    value[early] *= np.sqrt(prf_share_on_image(prf[early]))
    visual = area > 0
    if visual.any():
        value[visual & (fields[:, 1] < np.quantile(fields[visual, 1], P.DEAD_SHARE))] = 0
    value[~visual] = 0
    return value / (1 + (value / P.NCSNR_MAX) ** 4) ** 0.25


def prf_share_on_image(prf: np.ndarray) -> np.ndarray:
    """Share of each Gaussian pRF (x, y, sigma in deg) that falls on the image, (n,)."""
    from scipy.special import ndtr

    x, y, sigma = prf[:, 0], prf[:, 1], prf[:, 2]
    h = P.IMAGE_HALF_DEG

    def inside(c):
        return ndtr((h - c) / sigma) - ndtr((-h - c) / sigma)

    return inside(x) * inside(y)
