"""Each metric against an independent computation (brute-force loops, direct library calls, formulas by hand)."""

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.metrics import structural_similarity
from skimage.transform import resize as sk_resize
from sklearn.metrics import (adjusted_rand_score, f1_score, normalized_mutual_info_score, precision_score,
                             recall_score)

from fmrikit.analysis import metrics as M
from fmrikit.errors import DataValueError, InputError

N, H, W = 20, 17, 13  # non-square on purpose


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    gt = rng.random((N, H, W, 3))
    rec = np.clip(gt + rng.normal(0, 0.3, gt.shape), 0, 1)
    return gt, rec


# -- brute-force references, written from the text of shared/docs/metrics.md ------------------

def two_way_loops(f_gt, f_rec):
    n = len(f_gt)
    f_gt, f_rec = f_gt.reshape(n, -1), f_rec.reshape(n, -1)
    r = np.corrcoef(f_gt, f_rec)[:n, n:]
    total = 0.0
    for j in range(n):
        count = 0
        for i in range(n):
            if i != j and r[i, j] < r[j, j]:
                count += 1
        total += count / (n - 1)
    return total / n


def retrieval_loops(brain, image, n_candidates, n_draws, seed):
    n = len(brain)
    brain, image = brain.reshape(n, -1), image.reshape(n, -1)
    rng = np.random.default_rng(seed)
    img_acc, brain_acc = [], []
    for _ in range(n_draws):
        idx = rng.choice(n, n_candidates, replace=False)
        b = [brain[k] / np.linalg.norm(brain[k]) for k in idx]
        m = [image[k] / np.linalg.norm(image[k]) for k in idx]
        hits_img = hits_brain = 0
        for k in range(n_candidates):
            best = max(range(n_candidates), key=lambda c: float(np.dot(b[k], m[c])))  # first max on ties
            hits_img += best == k
            best = max(range(n_candidates), key=lambda c: float(np.dot(b[c], m[k])))
            hits_brain += best == k
        img_acc.append(hits_img / n_candidates)
        brain_acc.append(hits_brain / n_candidates)
    return img_acc, brain_acc


# -- resize ------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [8, 30])
def test_resize_without_antialias_matches_half_pixel_bilinear(images, size):
    gt, _ = images
    out = M.resize_images(gt, size, antialias=False)
    # skimage order-1 resize with edge clamping and no anti-aliasing samples at half-pixel centres,
    # i.e. torch's bilinear with align_corners=False, antialias=False
    want = sk_resize(gt, (N, size, size, 3), order=1, mode="edge", anti_aliasing=False)
    assert out.dtype == np.float32 and out.shape == (N, size, size, 3)
    np.testing.assert_allclose(out, want, atol=1e-5)


@pytest.mark.parametrize("size", [7, 13])
def test_protocol_resize_shrinks_like_pil_bilinear(images, size):
    from PIL import Image

    gt, _ = images
    assert M.PROTOCOL_ANTIALIAS
    out = M.resize_images(gt, size)
    # PIL's BILINEAR widens its triangle filter by the shrink factor (torchvision >= 0.17 Resize does the same)
    want = np.stack([np.stack([np.asarray(Image.fromarray(im[..., c].astype(np.float32), mode="F")
                                          .resize((size, size), Image.BILINEAR)) for c in range(3)], -1)
                     for im in gt])
    np.testing.assert_allclose(out, want, atol=1e-5)
    assert np.abs(out - M.resize_images(gt, size, antialias=False)).max() > 1e-2  # the choice matters here


def test_antialias_does_not_change_enlarging(images):
    gt, _ = images
    np.testing.assert_allclose(M.resize_images(gt, 40), M.resize_images(gt, 40, antialias=False), atol=1e-5)


def test_resize_uint8_equals_float():
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (3, H, W, 3), dtype=np.uint8)
    out = M.resize_images(u8, 25, "bicubic")
    np.testing.assert_allclose(out, M.resize_images(u8 / 255.0, 25, "bicubic"), atol=1e-6)
    assert out.min() >= 0 and out.max() <= 1  # bicubic overshoot is clipped


@pytest.mark.parametrize("bad,exc", [(np.zeros((2, 5, 5)), DataValueError), (np.zeros((2, 5, 5, 4)), DataValueError),
                                     (np.full((2, 5, 5, 3), 2.0), DataValueError),
                                     (np.full((2, 5, 5, 3), np.nan), DataValueError),
                                     (np.zeros((2, 5, 5, 3), dtype=np.int16), DataValueError)])
def test_resize_rejects_bad_images(bad, exc):
    with pytest.raises(exc):
        M.resize_images(bad, 8)


def test_resize_rejects_unknown_interpolation():
    with pytest.raises(InputError, match="interpolation"):
        M.resize_images(np.zeros((1, 5, 5, 3)), 8, "lanczos")


# -- PixCorr, SSIM, correlation distance -----------------------------------------------------------

def test_pixcorr_matches_per_pair_corrcoef(images):
    gt, rec = images
    want = np.mean([np.corrcoef(gt[k].ravel(), rec[k].ravel())[0, 1] for k in range(N)])
    assert M.pixcorr(gt, rec) == pytest.approx(want, abs=1e-12)


def test_pixcorr_ceiling_and_chance(images):
    gt, _ = images
    assert M.pixcorr(gt, gt) == pytest.approx(1.0, abs=1e-12)
    other = np.random.default_rng(5).random(gt.shape)
    assert abs(M.pixcorr(gt, other)) < 0.05


def test_ssim_matches_skimage_per_image(images):
    gt, rec = images
    want = np.mean([structural_similarity(rgb2gray(gt[k]), rgb2gray(rec[k]), gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, data_range=1.0) for k in range(N)])
    assert M.ssim(gt, rec) == pytest.approx(want, abs=1e-12)
    assert M.ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)


def test_ssim_rejects_small_or_out_of_range_images(images):
    gt, _ = images
    with pytest.raises(DataValueError, match="too small"):
        M.ssim(gt[:, :10], gt[:, :10])
    with pytest.raises(DataValueError, match=r"\[0, 1\]"):
        M.ssim(gt, gt * 2)


def test_correlation_distance_matches_loop():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(N, 4, 6))
    b = a + rng.normal(size=a.shape)
    want = np.mean([1 - np.corrcoef(a[k].ravel(), b[k].ravel())[0, 1] for k in range(N)])
    assert M.correlation_distance(a, b) == pytest.approx(want, abs=1e-12)
    assert M.correlation_distance(a, a) == pytest.approx(0.0, abs=1e-12)


# -- two-way identification --------------------------------------------------------------------------

def test_two_way_matches_double_loop():
    rng = np.random.default_rng(3)
    f_gt = rng.normal(size=(N, 5, 7))
    f_rec = f_gt + rng.normal(0, 2.0, f_gt.shape)
    want = two_way_loops(f_gt, f_rec)
    assert 0.6 < want < 1.0  # informative but imperfect, so the comparison is not trivial
    assert M.two_way_identification(f_gt, f_rec) == pytest.approx(want, abs=1e-12)


def test_two_way_ceiling_and_chance():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(200, 50))
    assert M.two_way_identification(f, f) == 1.0
    assert M.two_way_identification(f, rng.normal(size=f.shape)) == pytest.approx(0.5, abs=0.03)
    assert M.two_way_identification(f, f[rng.permutation(200)]) == pytest.approx(0.5, abs=0.03)


def test_two_way_ties_fail():
    # +-1 rows with eight of each sign: mean 0 and norm 4 exactly, so every r is exact and ties are exact
    rng = np.random.default_rng(6)
    base = np.array([1.0] * 8 + [-1.0] * 8)
    f = np.stack([rng.permutation(base) for _ in range(6)])
    f[1] = f[0]  # ground truths 0 and 1 identical: R[1, 0] == R[0, 0] and R[0, 1] == R[1, 1]
    n = len(f)
    want = 1 - 2 / (n * (n - 1))  # reconstructions 0 and 1 each lose one comparison out of n - 1
    assert two_way_loops(f, f) == pytest.approx(want, abs=1e-12)
    assert M.two_way_identification(f, f) == pytest.approx(want, abs=1e-12)


def test_two_way_input_errors():
    f = np.random.default_rng(0).normal(size=(N, 8))
    with pytest.raises(DataValueError) as err:
        M.two_way_identification(f, f[:-1])
    assert err.value.expected == str(f.shape) and err.value.found == str(f[:-1].shape)
    with pytest.raises(DataValueError, match="too few"):
        M.two_way_identification(f[:1], f[:1])
    bad = f.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataValueError, match="NaN"):
        M.two_way_identification(f, bad)
    bad = f.copy()
    bad[4] = 1.0
    with pytest.raises(DataValueError, match="constant"):
        M.two_way_identification(bad, f)


# -- retrieval ---------------------------------------------------------------------------------------

def test_retrieval_matches_loops():
    rng = np.random.default_rng(7)
    image = rng.normal(size=(40, 3, 4))
    brain = image + rng.normal(0, 1.5, image.shape)
    res = M.retrieval(brain, image, n_candidates=25, n_draws=4, seed=11)
    img_acc, brain_acc = retrieval_loops(brain, image, 25, 4, 11)
    assert img_acc != brain_acc  # the two directions differ on this data, so a transposition would show
    np.testing.assert_allclose(res["image_retrieval"]["per_draw"], img_acc, atol=1e-12)
    np.testing.assert_allclose(res["brain_retrieval"]["per_draw"], brain_acc, atol=1e-12)
    mean, half = np.mean(img_acc), 1.96 * np.std(img_acc, ddof=1) / np.sqrt(4)
    assert res["image_retrieval"]["mean"] == pytest.approx(mean)
    np.testing.assert_allclose(res["image_retrieval"]["ci95"], [mean - half, mean + half])
    assert (res["n_candidates"], res["n_draws"], res["seed"], res["chance"]) == (25, 4, 11, 1 / 25)


def test_retrieval_ceiling_and_chance():
    rng = np.random.default_rng(8)
    f = rng.normal(size=(600, 64))
    res = M.retrieval(f, f)
    assert res["image_retrieval"]["mean"] == 1.0 and res["brain_retrieval"]["mean"] == 1.0
    assert res["image_retrieval"]["ci95"] == [1.0, 1.0]
    # independent features: one data set gives 1/300 +- 0.002 (sd), so average ten of them
    runs = [M.retrieval(rng.normal(size=f.shape), rng.normal(size=f.shape)) for _ in range(10)]
    assert all(len(r["image_retrieval"]["per_draw"]) == 30 and r["chance"] == 1 / 300 for r in runs)
    for name in ("image_retrieval", "brain_retrieval"):
        assert np.mean([r[name]["mean"] for r in runs]) == pytest.approx(1 / 300, abs=0.002)


def test_retrieval_ties_go_to_first_maximum():
    # one-hot rows give exact cosines; items 0 and 1 are identical, so whichever of them is drawn
    # first wins both their rows and the other one fails
    n = 6
    f = np.eye(n)
    f[1] = f[0]
    res = M.retrieval(f, f, n_candidates=n, n_draws=3)
    for name in ("image_retrieval", "brain_retrieval"):
        assert res[name]["per_draw"] == [(n - 1) / n] * 3
    assert retrieval_loops(f, f, n, 3, 42) == ([(n - 1) / n] * 3, [(n - 1) / n] * 3)


def test_retrieval_input_errors():
    f = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(InputError, match="fewer items"):
        M.retrieval(f, f, n_candidates=11)
    with pytest.raises(DataValueError):
        M.retrieval(f, f[:, :3], n_candidates=5)
    z = f.copy()
    z[2] = 0
    with pytest.raises(DataValueError, match="all-zero"):
        M.retrieval(z, f, n_candidates=5)


# -- encoding ------------------------------------------------------------------------------------------

def test_voxel_pearson_matches_corrcoef_per_voxel():
    rng = np.random.default_rng(9)
    measured = rng.normal(size=(30, 12))
    pred = measured + rng.normal(size=measured.shape)
    pred[:, 5] = 2.0  # constant prediction: r undefined
    r = M.voxel_pearson(pred, measured)
    assert r.dtype == np.float64 and r.shape == (12,)
    for v in range(12):
        if v == 5:
            assert np.isnan(r[v])
        else:
            assert r[v] == pytest.approx(np.corrcoef(pred[:, v], measured[:, v])[0, 1], abs=1e-12)
    with pytest.raises(DataValueError, match="too few"):
        M.voxel_pearson(pred[:1], measured[:1])


def test_noise_ceiling_nsd_by_hand():
    nc = M.noise_ceiling_nsd(np.array([0.0, 0.5, 1.0, 2.0]), 3)
    # 100 x^2 / (x^2 + 1/3): 0, 25 / (0.25 + 1/3) = 300/7, 100 / (4/3) = 75, 400 / (13/3) = 1200/13
    np.testing.assert_allclose(nc, [0.0, 42.857142857142854, 75.0, 92.3076923076923], rtol=1e-12)


def test_noise_ceiling_algonauts_by_hand():
    # k = (6/3 + 3/2 + 1/1) / 10 = 0.45
    nc = M.noise_ceiling_algonauts(np.array([0.5, 1.0, 3.0]), {3: 6, 2: 3, 1: 1})
    np.testing.assert_allclose(nc, [25 / 0.7, 100 / 1.45, 900 / 9.45], rtol=1e-12)
    # every image repeated 3 times: the NSD formula with n = 3
    snr = np.array([0.3, 1.7])
    np.testing.assert_allclose(M.noise_ceiling_algonauts(snr, {3: 10}), M.noise_ceiling_nsd(snr, 3), rtol=1e-12)
    with pytest.raises(InputError):
        M.noise_ceiling_algonauts(snr, {0: 5})
    with pytest.raises(DataValueError):
        M.noise_ceiling_nsd(np.array([1.0, np.nan]), 3)


def test_noise_normalized_score_by_hand():
    r = np.array([0.5, -0.2, 0.9, np.nan, 0.3, -0.1, 1e-8])
    nc = np.array([50.0, 50.0, 20.0, 50.0, 0.0, 0.0, 0.0])
    # 100 * 0.25 / 0.5 = 50; negative r -> 0; 100 * 0.81 / 0.2 = 405 -> capped; NaN r; nc = 0 is 1e-14 as in the
    # Algonauts code: r = 0.3 -> 0.09 / 1e-14 capped at 100, r < 0 -> 0, r = 1e-8 -> 100 * 1e-16 / 1e-14 = 1
    np.testing.assert_allclose(M.noise_normalized_score(r, nc), [50.0, 0.0, 100.0, np.nan, 100.0, 0.0, 1.0])
    with pytest.raises(DataValueError):
        M.noise_normalized_score(r, nc[:4])


def test_summarize_ignores_nan():
    rng = np.random.default_rng(10)
    v = rng.normal(size=101)
    v[[3, 50]] = np.nan
    s = M.summarize(v)
    kept = v[~np.isnan(v)]
    assert s["n"] == 99
    assert s["median"] == pytest.approx(np.median(kept))
    for key, q in (("p25", 25), ("p75", 75), ("p90", 90)):
        assert s[key] == pytest.approx(np.percentile(kept, q))
    assert s["mean"] == pytest.approx(kept.mean())
    assert M.summarize(np.full(3, np.nan))["n"] == 0


# -- masks and labels -------------------------------------------------------------------------------------

def test_mask_overlap_matches_counts_and_sklearn():
    rng = np.random.default_rng(11)
    mask, ref = rng.random((7, 8, 9)) < 0.3, rng.random((7, 8, 9)) < 0.4
    n_o = sum(1 for a, b in zip(mask.ravel(), ref.ravel()) if a and b)
    res = M.mask_overlap(mask, ref)
    assert (res["n_overlap"], res["n_mask"], res["n_reference"]) == (n_o, int(mask.sum()), int(ref.sum()))
    assert res["precision"] == pytest.approx(n_o / mask.sum())
    assert res["recall"] == pytest.approx(n_o / ref.sum())
    assert res["dice"] == pytest.approx(f1_score(ref.ravel(), mask.ravel()))
    assert res["precision"] == pytest.approx(precision_score(ref.ravel(), mask.ravel()))
    assert res["recall"] == pytest.approx(recall_score(ref.ravel(), mask.ravel()))
    assert M.mask_overlap(ref, ref)["dice"] == 1.0
    with pytest.raises(DataValueError, match="empty"):
        M.mask_overlap(np.zeros_like(mask), ref)
    with pytest.raises(DataValueError, match="boolean"):
        M.mask_overlap(mask.astype(int), ref)


def test_label_agreement_matches_sklearn():
    rng = np.random.default_rng(12)
    ref = rng.integers(1, 6, 300)
    labels = np.where(rng.random(300) < 0.7, ref, rng.integers(1, 6, 300))
    res = M.label_agreement(labels, ref)
    assert res["ari"] == pytest.approx(adjusted_rand_score(ref, labels))
    assert res["nmi"] == pytest.approx(normalized_mutual_info_score(ref, labels))
    assert res["n"] == 300
    renamed = M.label_agreement((ref * 7) % 11, ref)  # same partition, other label values
    assert renamed["ari"] == pytest.approx(1.0) and renamed["nmi"] == pytest.approx(1.0)
    with pytest.raises(DataValueError):
        M.label_agreement(labels.astype(float), ref)


def test_encoder_retrieval_matches_a_loop_over_candidates():
    rng = np.random.default_rng(0)
    measured = rng.normal(size=(40, 30))
    pred = measured + rng.normal(scale=3.0, size=measured.shape)
    got = M.encoder_retrieval(pred, measured, n_candidates=25, n_draws=5, seed=7)
    draws = np.random.default_rng(7)
    hits = {1: [], 5: []}
    for _ in range(5):
        idx = draws.choice(40, 25, replace=False)
        for k in hits:
            ok = 0
            for i in idx:
                r = [np.corrcoef(measured[i], pred[j])[0, 1] for j in idx]
                ok += sum(v >= r[list(idx).index(i)] for v in r) <= k
            hits[k].append(ok / 25)
    assert got["top1"]["mean"] == pytest.approx(np.mean(hits[1]))
    assert got["top5"]["mean"] == pytest.approx(np.mean(hits[5]))
    assert 0 < got["top1"]["mean"] < got["top5"]["mean"] < 1 and got["chance"]["top5"] == 5 / 25
    perfect = M.encoder_retrieval(measured, measured, n_candidates=40, n_draws=2)
    assert perfect["top1"]["mean"] == 1.0
    with pytest.raises(InputError):
        M.encoder_retrieval(pred, measured, n_candidates=41)


def test_two_way_with_groups_skips_the_same_stimulus():
    """Per-trial reconstructions: a reconstruction never competes with its own stimulus's other trials."""
    rng = np.random.default_rng(4)
    groups = np.array([0, 0, 1, 2, 2, 2, 3])
    f_gt = rng.normal(size=(4, 30))[groups]
    f_rec = f_gt + rng.normal(scale=1.5, size=f_gt.shape)
    r = np.corrcoef(f_gt, f_rec)[:7, 7:]
    want = np.mean([np.mean([r[i, j] < r[j, j] for i in range(7) if groups[i] != groups[j]]) for j in range(7)])
    assert M.two_way_identification(f_gt, f_rec, groups) == pytest.approx(want, abs=1e-12)
    # without groups the identical ground truths tie and count as failures
    assert M.two_way_identification(f_gt, f_rec) < want
    with pytest.raises(DataValueError, match="two stimuli"):
        M.two_way_identification(f_gt[:2], f_rec[:2], groups[:2])
