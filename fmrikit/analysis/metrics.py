"""The field's evaluation metrics as pure array functions (see shared/docs/metrics.md).

Reconstruction: :func:`resize_images`, :func:`pixcorr`, :func:`ssim`,
:func:`two_way_identification`, :func:`correlation_distance`. Retrieval: :func:`retrieval`.
Encoding: :func:`voxel_pearson`, :func:`noise_ceiling_nsd`, :func:`noise_ceiling_algonauts`,
:func:`noise_normalized_score`, :func:`summarize`. Masks and parcellations:
:func:`mask_overlap`, :func:`label_agreement`.

Every function checks its inputs (shapes, counts, finite values) and raises
:class:`~fmrikit.errors.DataValueError` or :class:`~fmrikit.errors.InputError` on bad input;
scores are returned as Python floats or float64 arrays.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fmrikit.errors import DataValueError, InputError
from fmrikit.checks import check_option

#: ``torch.nn.functional.interpolate`` modes accepted by :func:`resize_images`.
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "nearest-exact")

#: Low-pass filtering when a linear resize shrinks, the protocol's choice: what torchvision's ``Resize`` does on
#: tensors from version 0.17 on (MindEye2's ``final_evaluations.ipynb`` calls ``transforms.Resize`` without
#: ``antialias`` and pins torchvision 0.17.0) and what PIL's ``BILINEAR`` always does; torchvision before 0.17 did
#: not filter tensors (``antialias=False``). Enlarging is the same either way.
PROTOCOL_ANTIALIAS = True

#: Smallest image side accepted by :func:`ssim` (its Gaussian window is 11 pixels wide).
SSIM_MIN_SIDE = 11

#: A noise ceiling of 0 in :func:`noise_normalized_score` becomes this fraction (the Algonauts 2023 code's choice,
#: not NaN), so the voxel still counts: 100 % when r > 0, else 0.
NC_ZERO = 1e-14


# -- reconstruction --------------------------------------------------------------------------

def resize_images(images: np.ndarray, size: int, interpolation: str = "bilinear",
                  antialias: bool = PROTOCOL_ANTIALIAS) -> np.ndarray:
    """Resize RGB images to ``size`` x ``size`` the way torchvision's tensor ``Resize`` does.

    Calls ``torch.nn.functional.interpolate`` on NCHW float32 tensors with ``align_corners=False`` and, for
    the linear modes, ``antialias`` (default :data:`PROTOCOL_ANTIALIAS`: torchvision >= 0.17's ``Resize``, which
    matches PIL's resize when shrinking).

    Parameters
    ----------
    images : ndarray, shape (N, H, W, 3)
        uint8 in [0, 255] or float in [0, 1].
    size : int
        Output side in pixels.
    interpolation : {"bilinear", "bicubic", "nearest", "nearest-exact"}
    antialias : bool
        Low-pass filter when shrinking ("bilinear" and "bicubic" only; no effect when enlarging).

    Returns
    -------
    ndarray of float32, shape (N, size, size, 3)
        Values clipped to [0, 1].

    Raises
    ------
    DataValueError
        Wrong shape or dtype, non-finite values, float values outside [0, 1].
    InputError
        Unknown interpolation or size < 1.
    """
    images = np.asarray(images)
    _check_rgb(images, "images")
    check_option("interpolation", interpolation, INTERPOLATIONS)
    if int(size) != size or size < 1:
        raise InputError("resize size must be a positive integer", expected="size >= 1", found=str(size))
    if images.dtype == np.uint8:
        x = images.astype(np.float32) / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        _check_finite(images, "images")
        if images.size and (images.min() < 0 or images.max() > 1):
            raise DataValueError("float images must lie in [0, 1]", expected="values in [0, 1]",
                                 found=f"range [{images.min():.4g}, {images.max():.4g}]")
        x = images.astype(np.float32)
    else:
        raise DataValueError("unsupported image dtype", expected="uint8 or float", found=str(images.dtype))

    import torch
    import torch.nn.functional as F

    linear = interpolation in ("bilinear", "bicubic")
    options = {"align_corners": False, "antialias": bool(antialias)} if linear else {}
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    out = F.interpolate(t, size=(int(size), int(size)), mode=interpolation, **options)
    return np.clip(out.permute(0, 2, 3, 1).numpy(), 0.0, 1.0).astype(np.float32, copy=False)


def pixcorr(gt: np.ndarray, rec: np.ndarray) -> float:
    """PixCorr: Pearson r between each ground-truth image and its reconstruction, averaged.

    Each image is flattened with its three channels before the correlation.

    Parameters
    ----------
    gt, rec : ndarray, shape (N, H, W, 3)
        Images on the same scale (e.g. float in [0, 1]); row k of ``rec`` reconstructs row k of ``gt``.

    Returns
    -------
    float
        Mean over the N pairs of Pearson r, in [-1, 1].

    Raises
    ------
    DataValueError
        Shapes differ, non-finite values, or a constant image (r undefined).
    """
    gt, rec = np.asarray(gt), np.asarray(rec)
    _check_rgb(gt, "gt")
    _check_same_shape(gt, rec, "gt", "rec")
    a, b = _flat_pair(gt, rec, "gt", "rec", min_n=1)
    return float(np.mean(_paired_pearson(a, b, "gt", "rec")))


def ssim(gt: np.ndarray, rec: np.ndarray) -> float:
    """SSIM of each grayscale ground-truth image with its reconstruction, averaged.

    Images go through ``skimage.color.rgb2gray``, then ``structural_similarity`` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0``.

    Parameters
    ----------
    gt, rec : ndarray, shape (N, H, W, 3)
        Float images in [0, 1], H and W at least 11.

    Returns
    -------
    float
        Mean SSIM over the N pairs (1 for identical images).

    Raises
    ------
    DataValueError
        Shapes differ, images smaller than 11 pixels, values non-finite or outside [0, 1].
    """
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    gt, rec = np.asarray(gt), np.asarray(rec)
    _check_rgb(gt, "gt")
    _check_same_shape(gt, rec, "gt", "rec")
    _check_min_items(len(gt), 1, "images")
    for name, x in (("gt", gt), ("rec", rec)):
        _check_finite(x, name)
        if x.min() < 0 or x.max() > 1:
            raise DataValueError(f"{name} must lie in [0, 1] (data_range=1.0)", expected="values in [0, 1]",
                                 found=f"range [{x.min():.4g}, {x.max():.4g}]")
    if min(gt.shape[1:3]) < SSIM_MIN_SIDE:
        raise DataValueError("images too small for the 11-pixel Gaussian SSIM window",
                             expected=f"H, W >= {SSIM_MIN_SIDE}", found=f"{gt.shape[1]}x{gt.shape[2]}")
    g, r = rgb2gray(gt.astype(np.float64)), rgb2gray(rec.astype(np.float64))
    scores = [structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=1.0) for a, b in zip(g, r)]
    return float(np.mean(scores))


def two_way_identification(feat_gt: np.ndarray, feat_rec: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Two-way identification: how often a reconstruction is closer to its own image than to another.

    With R[i, j] = Pearson r(gt_i, rec_j) (``np.corrcoef(F_gt, F_rec)[:N, N:]``), reconstruction
    j wins against ground truth i != j when R[i, j] < R[j, j]; ties count as failures. The score
    is the mean over j of the fraction of the N - 1 comparisons won.

    Parameters
    ----------
    feat_gt, feat_rec : ndarray, shape (N, ...)
        Network features of the ground-truth images and of their reconstructions, flattened to (N, D).
    groups : ndarray, shape (N,), optional
        Stimulus of each pair, when a stimulus has several reconstructions (one per trial): reconstruction
        j is then compared only with the ground truths of the other stimuli (the same image would tie).

    Returns
    -------
    float
        Fraction in [0, 1]; chance is 0.5.

    Raises
    ------
    DataValueError
        Shapes differ, N < 2 (fewer than 2 stimuli with ``groups``), non-finite values, or a constant
        feature row.
    """
    a, b = _flat_pair(feat_gt, feat_rec, "feat_gt", "feat_rec", min_n=2)
    r = _standardize_rows(a, "feat_gt") @ _standardize_rows(b, "feat_rec").T
    n = len(r)
    if groups is None:
        wins = (r < np.diag(r)[None, :]).sum(axis=0)  # the diagonal never beats itself: R[j, j] < R[j, j] is False
        return float(np.mean(wins / (n - 1)))
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise DataValueError("one group per pair is needed", expected=f"shape ({n},)", found=f"shape {groups.shape}")
    other = groups[:, None] != groups[None, :]
    n_other = other.sum(axis=0)
    if not n_other.all():
        raise DataValueError("two-way identification needs at least two stimuli", expected=">= 2 distinct groups",
                             found="1")
    wins = ((r < np.diag(r)[None, :]) & other).sum(axis=0)
    return float(np.mean(wins / n_other))


def correlation_distance(feat_gt: np.ndarray, feat_rec: np.ndarray) -> float:
    """Mean correlation distance 1 - r between paired feature vectors (lower is better).

    Parameters
    ----------
    feat_gt, feat_rec : ndarray, shape (N, ...)
        Paired features, flattened to (N, D).

    Returns
    -------
    float
        Mean over the N pairs of 1 - Pearson r, in [0, 2].

    Raises
    ------
    DataValueError
        Shapes differ, non-finite values, or a constant feature row.
    """
    a, b = _flat_pair(feat_gt, feat_rec, "feat_gt", "feat_rec", min_n=1)
    return float(np.mean(1.0 - _paired_pearson(a, b, "feat_gt", "feat_rec")))


# -- retrieval -------------------------------------------------------------------------------

def retrieval(brain: np.ndarray, image: np.ndarray, n_candidates: int = 300, n_draws: int = 30,
              seed: int = 42) -> dict:
    """Top-1 retrieval among random subsets of candidates, in both directions (MindEye2 protocol).

    Rows are flattened and L2-normalised. Each of ``n_draws`` rounds draws ``n_candidates`` of
    the N items without replacement (``rng = np.random.default_rng(seed)``, one
    ``rng.choice(N, n_candidates, replace=False)`` per round) and forms the cosine similarity
    S = brain_sub @ image_sub.T. Image retrieval: for each brain row, the most similar image
    (``argmax`` over the row) is its own. Brain retrieval: for each image (column), the most
    similar brain row is its own. Ties go to the first maximum.

    Parameters
    ----------
    brain, image : ndarray, shape (N, ...)
        Paired embeddings (row k of ``brain`` was recorded while seeing image k).
    n_candidates : int
        Items per round (chance = 1 / n_candidates).
    n_draws : int
        Number of rounds, at least 2.
    seed : int

    Returns
    -------
    dict
        ``{"image_retrieval": {"mean", "ci95": [lo, hi], "per_draw": [...]}, "brain_retrieval": {...},
        "n_candidates", "n_draws", "seed", "chance"}``. Accuracies are fractions in [0, 1];
        ``ci95`` is the normal-approximation 95% interval of the mean over draws,
        mean +- 1.96 * std(ddof=1) / sqrt(n_draws).

    Raises
    ------
    InputError
        N < n_candidates, n_candidates < 2 or n_draws < 2.
    DataValueError
        Shapes differ, non-finite values, or an all-zero row.
    """
    a, b = _flat_pair(brain, image, "brain", "image", min_n=1)
    _check_draws(len(a), n_candidates, n_draws)
    a, b = _unit_rows(a, "brain"), _unit_rows(b, "image")
    target = np.arange(n_candidates)
    per_draw = _over_draws(a, b, n_candidates, n_draws, seed, lambda s: {
        "image_retrieval": float(np.mean(np.argmax(s, axis=1) == target)),
        "brain_retrieval": float(np.mean(np.argmax(s, axis=0) == target))})
    out: dict = {name: {**_mean_ci95(values), "per_draw": values} for name, values in per_draw.items()}
    out.update({"n_candidates": int(n_candidates), "n_draws": int(n_draws), "seed": int(seed),
                "chance": 1.0 / n_candidates})
    return out


# -- encoding --------------------------------------------------------------------------------

#: Candidates per encoder-retrieval round (Universal Brain Encoder); callers use all images when fewer.
ENCODER_CANDIDATES = 100


def encoder_retrieval(pred: np.ndarray, measured: np.ndarray, n_candidates: int = 100, n_draws: int = 30,
                      seed: int = 42, top: tuple[int, ...] = (1, 5)) -> dict:
    """Identify the seen image among candidates by correlating measured with predicted patterns.

    Each of ``n_draws`` rounds draws ``n_candidates`` of the N images without replacement
    (``rng = np.random.default_rng(seed)``, one ``rng.choice`` per round). For each drawn image,
    the measured voxel pattern is Pearson-correlated (across voxels) with the predicted pattern of
    every candidate; a hit at k is the true image ranked among the k highest (ties count
    against it: rank = number of candidates scoring at least as high as the true one).

    Parameters
    ----------
    pred, measured : ndarray, shape (N, n_voxels)
        Predicted and measured responses, row k for image k.
    n_candidates : int
    n_draws : int
    seed : int
    top : tuple of int
        The k of the top-k accuracies.

    Returns
    -------
    dict
        ``{"top1": {"mean", "ci95"}, "top5": ..., "n_candidates", "n_draws", "seed", "chance": {k: k / n}}``.

    Raises
    ------
    InputError
        N < n_candidates, n_candidates < 2 or n_draws < 2.
    DataValueError
        Shapes differ, non-finite values, constant rows.
    """
    a, b = _flat_pair(pred, measured, "pred", "measured", min_n=1)
    _check_draws(len(a), n_candidates, n_draws)
    a, b = _standardize_rows(a, "pred"), _standardize_rows(b, "measured")

    def hits(s: np.ndarray) -> dict[str, float]:  # s: (measured, candidate)
        rank = (s >= np.diag(s)[:, None]).sum(axis=1)
        return {f"top{k}": float(np.mean(rank <= k)) for k in top}

    out: dict = {name: _mean_ci95(values) for name, values in
                 _over_draws(b, a, n_candidates, n_draws, seed, hits).items()}
    out.update({"n_candidates": int(n_candidates), "n_draws": int(n_draws), "seed": int(seed),
                "chance": {f"top{k}": k / n_candidates for k in top}})
    return out


def voxel_pearson(pred: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Per-voxel Pearson r between predicted and measured responses across images.

    Parameters
    ----------
    pred, measured : ndarray, shape (n_images, n_voxels)

    Returns
    -------
    ndarray of float64, shape (n_voxels,)
        NaN where either column is constant.

    Raises
    ------
    DataValueError
        Shapes differ, fewer than 2 images, or non-finite values.
    """
    pred, measured = np.asarray(pred), np.asarray(measured)
    if pred.ndim != 2:
        raise DataValueError("responses must be 2D", expected="(n_images, n_voxels)", found=str(pred.shape))
    _check_same_shape(pred, measured, "pred", "measured")
    _check_min_items(len(pred), 2, "images")
    _check_finite(pred, "pred")
    _check_finite(measured, "measured")
    x = pred.astype(np.float64) - pred.mean(axis=0, dtype=np.float64)
    y = measured.astype(np.float64) - measured.mean(axis=0, dtype=np.float64)
    denom = np.sqrt((x * x).sum(axis=0) * (y * y).sum(axis=0))
    num = (x * y).sum(axis=0)
    r = np.full(num.shape, np.nan)
    ok = denom > 0
    r[ok] = np.clip(num[ok] / denom[ok], -1.0, 1.0)
    return r


def noise_ceiling_nsd(ncsnr: np.ndarray, n_trials: int) -> np.ndarray:
    """Noise ceiling from NSD's ncsnr for responses averaged over ``n_trials`` repeats.

    Parameters
    ----------
    ncsnr : ndarray, shape (n_voxels,)
        Noise-ceiling SNR per voxel (>= 0).
    n_trials : int
        Repeats averaged per image (>= 1).

    Returns
    -------
    ndarray of float64, shape (n_voxels,)
        NC in percent of explainable variance: 100 * ncsnr^2 / (ncsnr^2 + 1 / n_trials).

    Raises
    ------
    DataValueError
        Non-finite or negative ncsnr.
    InputError
        n_trials < 1.
    """
    snr2 = _ncsnr_squared(ncsnr)
    if int(n_trials) != n_trials or n_trials < 1:
        raise InputError("n_trials must be a positive integer", expected=">= 1", found=str(n_trials))
    return _ceiling(snr2, 1.0 / n_trials)


def noise_ceiling_algonauts(ncsnr: np.ndarray, n_images_by_repeats: dict[int, int]) -> np.ndarray:
    """Noise ceiling of Algonauts 2023 for a test set mixing images with different repeat counts.

    Parameters
    ----------
    ncsnr : ndarray, shape (n_voxels,)
        Noise-ceiling SNR per voxel (>= 0).
    n_images_by_repeats : dict of int to int
        ``{repeats r: number of test images n_r seen r times}``, e.g. ``{3: n3, 2: n2, 1: n1}``.

    Returns
    -------
    ndarray of float64, shape (n_voxels,)
        NC % = 100 * ncsnr^2 / (ncsnr^2 + k), k = sum_r (n_r / r) / sum_r n_r.

    Raises
    ------
    DataValueError
        Non-finite or negative ncsnr.
    InputError
        Repeat counts < 1, negative image counts, or no image at all.
    """
    snr2 = _ncsnr_squared(ncsnr)
    counts = {int(r): int(n) for r, n in n_images_by_repeats.items()}
    if not counts or min(counts) < 1 or min(counts.values()) < 0 or sum(counts.values()) == 0:
        raise InputError("invalid image counts per repeat number",
                         expected="{repeats >= 1: images >= 0} with at least one image", found=str(counts))
    k = sum(n / r for r, n in counts.items()) / sum(counts.values())
    return _ceiling(snr2, k)


def noise_normalized_score(r: np.ndarray, nc_percent: np.ndarray) -> np.ndarray:
    """Encoding accuracy as a percentage of the noise ceiling (the Algonauts 2023 challenge's score).

    Parameters
    ----------
    r : ndarray, shape (n_voxels,)
        Pearson r per voxel; NaN (undefined r) is passed through.
    nc_percent : ndarray, shape (n_voxels,)
        Noise ceiling in percent, in [0, 100].

    Returns
    -------
    ndarray of float64, shape (n_voxels,)
        100 * max(r, 0)^2 / (nc / 100), capped at 100; NaN where r is NaN. A noise ceiling of 0 is
        replaced by :data:`NC_ZERO` (as a fraction), as the Algonauts code does: such a voxel scores 100
        when r > 0 and 0 otherwise.

    Raises
    ------
    DataValueError
        Shapes differ, r infinite, nc non-finite or outside [0, 100].
    """
    r, nc = np.asarray(r, dtype=np.float64), np.asarray(nc_percent, dtype=np.float64)
    _check_same_shape(r, nc, "r", "nc_percent")
    if np.isinf(r).any():
        raise DataValueError("r contains infinite values", expected="finite r or NaN",
                             found=f"{int(np.isinf(r).sum())} infinite")
    _check_finite(nc, "nc_percent")
    if nc.size and (nc.min() < 0 or nc.max() > 100):
        raise DataValueError("noise ceiling must be a percentage", expected="values in [0, 100]",
                             found=f"range [{nc.min():.4g}, {nc.max():.4g}]")
    fraction = np.where(nc == 0, NC_ZERO, nc / 100.0)
    with np.errstate(invalid="ignore"):  # NaN r stays NaN
        return np.minimum(100.0 * np.maximum(r, 0.0) ** 2 / fraction, 100.0)


def summarize(values: np.ndarray) -> dict:
    """Median, 25/75/90th percentiles, mean and count of the non-NaN values.

    Parameters
    ----------
    values : array-like
        Any shape; NaN entries are ignored.

    Returns
    -------
    dict
        ``{"median", "p25", "p75", "p90", "mean", "n"}``; the statistics are None when no value is left.

    Raises
    ------
    DataValueError
        Infinite values.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if np.isinf(v).any():
        raise DataValueError("values contain infinities", expected="finite values or NaN",
                             found=f"{int(np.isinf(v).sum())} infinite")
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {"median": None, "p25": None, "p75": None, "p90": None, "mean": None, "n": 0}
    p25, median, p75, p90 = (float(q) for q in np.percentile(v, [25, 50, 75, 90]))
    return {"median": median, "p25": p25, "p75": p75, "p90": p90, "mean": float(v.mean()), "n": int(v.size)}


# -- masks and parcellations -----------------------------------------------------------------

def mask_overlap(mask: np.ndarray, reference: np.ndarray) -> dict:
    """Dice, precision and recall of a boolean mask against a reference mask.

    Parameters
    ----------
    mask, reference : ndarray of bool, same shape (e.g. (X, Y, Z))

    Returns
    -------
    dict
        ``{"dice", "precision", "recall", "n_mask", "n_reference", "n_overlap"}``:
        precision = |m & r| / |m|, recall = |m & r| / |r|, dice = 2 |m & r| / (|m| + |r|).

    Raises
    ------
    DataValueError
        Not boolean, shapes differ, or either mask empty.
    """
    mask, reference = np.asarray(mask), np.asarray(reference)
    for name, x in (("mask", mask), ("reference", reference)):
        if x.dtype != bool:
            raise DataValueError(f"{name} must be boolean", expected="bool", found=str(x.dtype))
    _check_same_shape(mask, reference, "mask", "reference")
    n_m, n_r = int(mask.sum()), int(reference.sum())
    if n_m == 0 or n_r == 0:
        raise DataValueError("overlap is undefined for an empty mask", expected="at least one voxel in each",
                             found=f"mask {n_m}, reference {n_r} voxels")
    n_o = int(np.logical_and(mask, reference).sum())
    return {"dice": 2.0 * n_o / (n_m + n_r), "precision": n_o / n_m, "recall": n_o / n_r,
            "n_mask": n_m, "n_reference": n_r, "n_overlap": n_o}


def label_agreement(labels: np.ndarray, reference: np.ndarray) -> dict:
    """Agreement of two labelings of the same items (e.g. parcellations of the same voxels).

    Parameters
    ----------
    labels, reference : ndarray, same shape
        Integer labels (flattened); label values need not match between the two.

    Returns
    -------
    dict
        ``{"ari", "nmi", "n"}``: scikit-learn's ``adjusted_rand_score`` and
        ``normalized_mutual_info_score`` (arithmetic normalisation), and the number of items.

    Raises
    ------
    DataValueError
        Shapes differ, fewer than 2 items, non-integer or non-finite labels.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels, reference = np.asarray(labels), np.asarray(reference)
    _check_same_shape(labels, reference, "labels", "reference")
    _check_min_items(labels.size, 2, "labelled items")
    for name, x in (("labels", labels), ("reference", reference)):
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.bool_)):
            raise DataValueError(f"{name} must be integer labels", expected="integer dtype", found=str(x.dtype))
    a, b = labels.ravel(), reference.ravel()
    return {"ari": float(adjusted_rand_score(b, a)), "nmi": float(normalized_mutual_info_score(b, a)),
            "n": int(a.size)}


# -- helpers ---------------------------------------------------------------------------------

def _check_draws(n: int, n_candidates: int, n_draws: int) -> None:
    if n_candidates < 2 or n_draws < 2:
        raise InputError("retrieval needs at least 2 candidates and 2 draws", expected="n_candidates, n_draws >= 2",
                         found=f"n_candidates={n_candidates}, n_draws={n_draws}")
    if n < n_candidates:
        raise InputError("fewer items than retrieval candidates (a draw is never shrunk to fit: ask for at most N)",
                         expected=f"n_candidates <= N = {n}", found=f"n_candidates = {n_candidates}")


def _over_draws(a: np.ndarray, b: np.ndarray, n_candidates: int, n_draws: int, seed: int,
                score: Callable[[np.ndarray], dict[str, float]]) -> dict[str, list[float]]:
    """Scores of ``n_draws`` rounds, each on ``n_candidates`` rows drawn without replacement
    (``np.random.default_rng(seed)``, one ``choice`` per round): ``score(a[idx] @ b[idx].T)`` per round."""
    rng = np.random.default_rng(seed)
    per_draw: dict[str, list[float]] = {}
    for _ in range(n_draws):
        idx = rng.choice(len(a), n_candidates, replace=False)
        for name, value in score(a[idx] @ b[idx].T).items():
            per_draw.setdefault(name, []).append(value)
    return per_draw


def _mean_ci95(values: list[float]) -> dict:
    """Mean over draws and its normal-approximation 95% interval."""
    v = np.asarray(values)
    mean, half = float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(len(v)))
    return {"mean": mean, "ci95": [mean - half, mean + half]}


def _check_rgb(x: np.ndarray, name: str) -> None:
    if x.ndim != 4 or x.shape[3] != 3:
        raise DataValueError(f"{name} must be a stack of RGB images", expected="(N, H, W, 3)", found=str(x.shape))


def _check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise DataValueError(f"{name_b} and {name_a} differ in shape", expected=str(a.shape), found=str(b.shape))


def _check_min_items(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise DataValueError(f"too few {what}", expected=f">= {minimum}", found=str(n))


def _check_finite(x: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        raise DataValueError(f"{name} contains NaN or Inf", expected="finite values",
                             found=f"{int(bad.sum())} non-finite")


def _flat_pair(a, b, name_a: str, name_b: str, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Paired (N, ...) arrays as finite float64 (N, D) arrays."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim < 2:
        raise DataValueError(f"{name_a} must have one row per item", expected="(N, ...) with ndim >= 2",
                             found=str(a.shape))
    _check_same_shape(a, b, name_a, name_b)
    _check_min_items(len(a), min_n, "items")
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    _check_finite(a, name_a)
    _check_finite(b, name_b)
    return a, b


def _standardize_rows(x: np.ndarray, name: str) -> np.ndarray:
    """Rows centred and scaled to unit norm, so that dot products are Pearson r."""
    return _unit_rows(x - x.mean(axis=1, keepdims=True), name, problem="a constant row (r undefined)")


def _unit_rows(x: np.ndarray, name: str, problem: str = "an all-zero row (cosine undefined)") -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    bad = np.flatnonzero(norm[:, 0] == 0)
    if bad.size:
        raise DataValueError(f"{name} has {problem}", expected="no such row",
                             found=f"{bad.size} such rows, first row {bad[0]}")
    return x / norm


def _paired_pearson(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> np.ndarray:
    """Pearson r between row k of ``a`` and row k of ``b``, shape (N,)."""
    za, zb = _standardize_rows(a, name_a), _standardize_rows(b, name_b)
    return np.clip(np.einsum("nd,nd->n", za, zb), -1.0, 1.0)


def _ncsnr_squared(ncsnr) -> np.ndarray:
    snr = np.asarray(ncsnr, dtype=np.float64)
    _check_finite(snr, "ncsnr")
    if snr.size and snr.min() < 0:
        raise DataValueError("ncsnr must be non-negative", expected="ncsnr >= 0", found=f"min {snr.min():.4g}")
    return snr ** 2


def _ceiling(snr2: np.ndarray, k: float) -> np.ndarray:
    return 100.0 * snr2 / (snr2 + k)
