"""Noise-free responses of a simulated subject's voxels to images.

Early voxels (V1, V2, V3, hV4, V3A/B): a Gaussian pRF pools four maps of the image on a
:data:`~fmrikit.data.world.params.FEATURE_GRID` grid: contrast energy, passed through the CSS
power law, and three signed first-order maps, local luminance relative to the image mean and the
cone-opponent L-M and S-(L+M) signals. Each term is standardised over the image set and mixed
with the voxel's signed weights.

Higher voxels: a rectified (softplus) weighted sum of the image's description (category,
subtype, object size, position, count, colour, overall contrast and brightness, z-scored over
the image set), divided by the mean drive of the subject's higher visual voxels plus its median
(divisive normalisation). Weights come from smooth maps shared by every subject of a world, evaluated at
the voxel's warped template position, plus each voxel's own deviation and the preference of the
category region it sits in.

Every voxel's response is standardised over the world's images and scaled by its amplitude
(ncsnr x noise sd, % signal change).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmrikit.data.stimuli import CATEGORIES, SUBTYPES, StimulusSet
from fmrikit.data.world import params as P
from fmrikit.data.world.fields import SmoothField, smooth_field
from fmrikit.data.world.layout import REGION_PRIORITY, SubjectLayout


@dataclass(frozen=True)
class ImageFeatures:
    """What the world's voxels see of each image.

    Attributes
    ----------
    maps : ndarray of float32, shape (4, n_images, grid * grid)
        Contrast energy, luminance minus the image mean, L-M and S-(L+M) pooled per cell
        (rows of the grid from the image top).
    description : ndarray of float64, shape (n_images, n_features)
        Z-scored description; columns named by ``names``.
    names : list of str
    """

    maps: np.ndarray
    description: np.ndarray
    names: list[str]


def image_features(stimuli: StimulusSet, grid: int = P.FEATURE_GRID) -> ImageFeatures:
    """Feature maps and the z-scored description of every image of ``stimuli``."""
    from scipy import ndimage

    images = stimuli.images.astype(np.float32) / 255.0
    n, size = len(images), images.shape[1]
    linear = np.where(images <= 0.04045, images / 12.92, ((images + 0.055) / 1.055) ** 2.4)
    lms = linear @ (P.RGB_TO_LMS / P.RGB_TO_LMS.sum(1, keepdims=True)).T.astype(np.float32)  # white = (1, 1, 1)
    lum = linear @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    scale = size / 64  # filter widths in pixels of a 64-pixel image
    band = lum - ndimage.gaussian_filter(lum, sigma=(0, 1.5 * scale, 1.5 * scale))
    energy = ndimage.gaussian_filter(band ** 2, sigma=(0, scale, scale))
    planes = [energy, lum - lum.mean((1, 2), keepdims=True), lms[..., 0] - lms[..., 1],
              lms[..., 2] - (lms[..., 0] + lms[..., 1]) / 2]
    pool = _pooling(size, grid)
    maps = np.stack([(pool @ plane @ pool.T).reshape(n, -1) for plane in planes])

    names, columns = [], []
    for k, cat in enumerate(CATEGORIES):
        names.append(f"category:{cat}")
        columns.append(stimuli.category == k)
    for k, cat in enumerate(CATEGORIES):
        for j, sub in enumerate(SUBTYPES[cat]):
            names.append(f"subtype:{cat}:{sub}")
            columns.append((stimuli.category == k) & (stimuli.subtype == j))
    colour_lin = np.where(stimuli.colour <= 0.04045, stimuli.colour / 12.92, ((stimuli.colour + 0.055) / 1.055) ** 2.4)
    colour = colour_lin @ (P.RGB_TO_LMS / P.RGB_TO_LMS.sum(1, keepdims=True)).T
    l_m, s_lm = colour[:, 0] - colour[:, 1], colour[:, 2] - (colour[:, 0] + colour[:, 1]) / 2
    extra = {"size": stimuli.object_size, "x": 2 * stimuli.object_xy[:, 0] - 1, "y": 1 - 2 * stimuli.object_xy[:, 1],
             "count": np.log1p(stimuli.count), "colour_luminance": colour_lin @ np.array([0.2126, 0.7152, 0.0722]),
             "colour_l_minus_m": l_m, "colour_s_minus_lm": s_lm, "colour_saturation": np.hypot(l_m, s_lm),
             "contrast": energy.mean((1, 2)), "brightness": lum.mean((1, 2))}
    names += list(extra)
    columns += list(extra.values())
    x = np.stack(columns, 1).astype(np.float64)
    sd = x.std(0)
    return ImageFeatures(maps=maps, description=(x - x.mean(0)) / np.where(sd > 0, sd, 1), names=names)


def semantic_maps(rng: np.random.Generator, n_features: int) -> SmoothField:
    """The smooth tuning maps every subject of a world shares (flatmap mm -> one weight per feature)."""
    return smooth_field(rng, 2, n_features, P.MAP_WAVELENGTH_MM, P.MAP_COMPONENTS)


@dataclass(frozen=True)
class Tuning:
    """The response parameters of a subject's informative voxels.

    Attributes
    ----------
    voxels : ndarray of int64, shape (n_inf,)
        Indices into the cortical voxels.
    term_weights : ndarray, shape (n_inf, 4)
        Signed weights of :data:`~fmrikit.data.world.params.TERM_NAMES` (response sd per term sd);
        NaN for higher voxels.
    semantic : ndarray, shape (n_inf, n_features)
        Weights on the z-scored description; NaN for early voxels.
    amplitude : ndarray, shape (n_inf,)
        Response sd (% signal change).
    """

    voxels: np.ndarray
    term_weights: np.ndarray
    semantic: np.ndarray
    amplitude: np.ndarray


def subject_tuning(layout: SubjectLayout, maps: SmoothField, names: list[str], noise_sd: np.ndarray,
                   hemisphere: np.ndarray, rng: np.random.Generator) -> Tuning:
    """Draw each informative voxel's weights.

    Parameters
    ----------
    layout : SubjectLayout
    maps : SmoothField
        The world's shared semantic maps (:func:`semantic_maps`).
    names : list of str
        Description feature names (:attr:`ImageFeatures.names`).
    noise_sd : ndarray, shape (n_cortex,)
        Trial noise sd of each cortical voxel (% signal change).
    hemisphere : ndarray, shape (n_cortex,)
        0 left, 1 right.
    rng : numpy.random.Generator
    """
    voxels = np.nonzero(layout.ncsnr > 0)[0]
    area = np.array(P.AREAS)[layout.area[voxels]]
    early = layout.early[voxels]
    terms = np.full((len(voxels), len(P.TERM_NAMES)), np.nan)
    for name in P.EARLY_AREAS:
        sel = area == name
        shares = rng.dirichlet(P.TERM_CONCENTRATION * np.array(P.TERM_SHARES[name]), sel.sum())
        signs = np.where(rng.random((sel.sum(), 3)) < P.P_POSITIVE_SIGN, 1.0, -1.0)
        terms[sel] = np.sqrt(shares) * np.c_[np.ones(sel.sum()), signs]

    column = {n: k for k, n in enumerate(names)}
    member = layout.membership[voxels]
    semantic = P.MAP_SD * maps(layout.position[voxels]) + P.VOXEL_SD * rng.standard_normal((len(voxels), len(names)))
    for k, region in enumerate(REGION_PRIORITY):
        m = member[:, k]
        if region in P.CATEGORY_OF:
            strength = np.where((region == "VWFA") & (hemisphere[voxels] == 1), P.VWFA_RIGHT, 1.0)
            for cat in CATEGORIES:
                own = cat == P.CATEGORY_OF[region]
                semantic[:, column[f"category:{cat}"]] += (P.CATEGORY_BOOST if own else -0.2) * strength * m
        boosts = {"PPA": {"size": 0.5}, "OPA": {"size": 0.4}, "RSC": {"size": 0.4}, "FFA": {"size": -0.3},
                  "EBA": {"size": -0.3}, "LO": {"size": -0.3, "category:scene": -0.8, "contrast": 0.5},
                  "IPS": {"count": 1.0}, "food": {"colour_saturation": 0.8}}.get(region, {})
        for feature, value in boosts.items():
            semantic[:, column[feature]] += value * m
    semantic[:, column["x"]] += np.where(hemisphere[voxels] == 0, 0.4, -0.4)  # contralateral preference
    semantic[early] = np.nan
    return Tuning(voxels=voxels, term_weights=terms, semantic=semantic,
                  amplitude=layout.ncsnr[voxels] * noise_sd[voxels])


def noise_free_responses(layout: SubjectLayout, tuning: Tuning, features: ImageFeatures) -> np.ndarray:
    """Noise-free responses of the informative voxels to every image.

    Returns
    -------
    ndarray of float32, shape (n_images, n_inf)
        % signal change around each voxel's mean; column sd = the voxel's amplitude.
    """
    n_images = features.description.shape[0]
    out = np.zeros((n_images, len(tuning.voxels)), dtype=np.float32)
    early = np.nonzero(layout.early[tuning.voxels])[0]
    if len(early):
        prf = layout.prf[tuning.voxels[early]]
        weights = prf_weights(prf, int(np.sqrt(features.maps.shape[2]))).T  # (cells, n_early)
        drive = [(features.maps[0] @ weights) ** prf[:, 3]] + [features.maps[k] @ weights for k in (1, 2, 3)]
        mixed = sum(_zscore(d) * tuning.term_weights[early, k] for k, d in enumerate(drive))
        out[:, early] = _zscore(mixed)
    higher = np.nonzero(~layout.early[tuning.voxels])[0]
    if len(higher):
        drive = np.logaddexp(0, features.description @ tuning.semantic[higher].T)  # softplus
        pool = drive.mean(1, keepdims=True)  # the whole higher visual population
        out[:, higher] = _zscore(drive / (np.median(pool) + pool))
    return out * tuning.amplitude.astype(np.float32)


def prf_weights(prf: np.ndarray, grid: int) -> np.ndarray:
    """Share of each Gaussian pRF (x, y, sigma deg; y up) in each grid cell, (n_voxels, grid * grid).

    Rows sum to the share of the pRF on the image. Cells run over image rows from the top.
    """
    from scipy.special import ndtr

    edges = np.linspace(-P.IMAGE_HALF_DEG, P.IMAGE_HALF_DEG, grid + 1)
    x, y, sigma = prf[:, :1], prf[:, 1:2], prf[:, 2:3]
    wx = np.diff(ndtr((edges[None] - x) / sigma), axis=1)
    wy = np.diff(ndtr((edges[None] - y) / sigma), axis=1)[:, ::-1]  # image rows run downwards
    return (wy[:, :, None] * wx[:, None, :]).reshape(len(prf), -1)


def _pooling(size: int, grid: int) -> np.ndarray:
    """Area-weighted pooling of ``size`` pixels into ``grid`` equal cells, (grid, size); rows sum to 1."""
    edges = np.arange(size + 1) / size
    cells = np.arange(grid + 1) / grid
    overlap = np.clip(np.minimum(edges[None, 1:], cells[1:, None]) - np.maximum(edges[None, :-1], cells[:-1, None]),
                      0, None)
    return (overlap * grid).astype(np.float32)


def _zscore(x: np.ndarray) -> np.ndarray:
    """Columns standardised (mean 0, sd 1); constant columns become 0."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0)
    return ((x - x.mean(0)) / np.where(sd > 1e-12, sd, np.inf)).astype(np.float32)
