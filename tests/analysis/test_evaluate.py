"""`fmrikit evaluate` end to end: inputs, pairing, reports, and values on known cases."""

import json

import h5py
import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from fmrikit.analysis.evaluate import evaluate_encoding, evaluate_labels, evaluate_mask, evaluate_recon, \
    evaluate_retrieval
from fmrikit.cli.main import app
from fmrikit.data.dataset import read_betas, read_info
from fmrikit.data.preprocess import preprocess_nsd
from fmrikit.errors import DataValueError, InputError

runner = CliRunner()


def _images(n, h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (n, 5, 7, 3)).astype(np.uint8)
    return np.stack([np.asarray(Image.fromarray(b).resize((w, h), Image.BILINEAR)) for b in base])


@pytest.fixture
def recon_dirs(tmp_path):
    gt = _images(6)
    with h5py.File(tmp_path / "brick.h5", "w") as f:
        f["imgBrick"] = np.concatenate([np.zeros((3, 40, 56, 3), np.uint8), gt])  # stim ids 3..8
    (tmp_path / "same").mkdir()
    (tmp_path / "other").mkdir()
    other = _images(6, seed=1)
    for k in range(6):
        Image.fromarray(gt[k]).resize((64, 64)).save(tmp_path / "same" / f"trial-{k:04d}_stim-{k + 3:05d}.png")
        Image.fromarray(other[k]).save(tmp_path / "other" / f"trial-{k:04d}_stim-{k + 3:05d}.png")
    return tmp_path


def test_recon_identical_images_reach_the_ceiling(recon_dirs):
    rec = evaluate_recon(recon_dirs / "same", recon_dirs / "brick.h5", recon_dirs / "out")
    m = rec["metrics"]
    assert m["pixcorr"]["value"] > 0.99 and m["ssim"]["value"] > 0.95
    assert m["effnet_lite0_two_way"]["value"] == pytest.approx(1.0)
    for key in ("alexnet2", "alexnet5", "inception", "clip", "effnet-b", "swav"):
        assert m[key]["status"] == "skipped" and m[key]["reason"]
    assert rec["protocol"]["first_resize"] == 256 and rec["protocol"]["pixel_size"] == 425
    assert rec["protocol"]["antialias"] is True and "0.17" in rec["protocol"]["antialias_note"]
    assert rec["n"] == 6 and rec["details"]["keys"] == [str(k) for k in range(3, 9)]
    disk = json.loads((recon_dirs / "out/results.json").read_text())
    assert disk["schema"] == "fmrikit.evaluate/1" and disk["provenance"]["run_id"]
    assert (recon_dirs / "out/results.md").read_text().count("|") > 20
    assert Image.open(recon_dirs / "out/figure.png").size[0] > 300


def test_recon_unrelated_images_score_lower(recon_dirs):
    rec = evaluate_recon(recon_dirs / "other", recon_dirs / "brick.h5", recon_dirs / "out", offline_network=False)
    assert abs(rec["metrics"]["pixcorr"]["value"]) < 0.5


def test_recon_pixel_two_way_against_a_loop(recon_dirs):
    from fmrikit.analysis.metrics import resize_images

    rec = evaluate_recon(recon_dirs / "other", recon_dirs / "brick.h5", recon_dirs / "out2", offline_network=False)
    gt = resize_images(resize_images(_images(6), 256, "bilinear"), 64, "bilinear").reshape(6, -1)
    other = np.stack([np.asarray(Image.open(recon_dirs / "other" / f"trial-{k:04d}_stim-{k + 3:05d}.png"))
                      for k in range(6)])
    rc = resize_images(resize_images(other, 256, "bilinear"), 64, "bilinear").reshape(6, -1)
    wins = [np.mean([np.corrcoef(gt[i], rc[j])[0, 1] < np.corrcoef(gt[j], rc[j])[0, 1] for i in range(6) if i != j])
            for j in range(6)]
    assert rec["metrics"]["pixel_two_way"]["value"] == pytest.approx(np.mean(wins))
    same = evaluate_recon(recon_dirs / "same", recon_dirs / "brick.h5", recon_dirs / "out3", offline_network=False)
    assert same["metrics"]["pixel_two_way"]["value"] == pytest.approx(1.0)


def test_recon_refuses_mismatched_sets(recon_dirs, tmp_path):
    (recon_dirs / "same" / "trial-0099_stim-00042.png").write_bytes((recon_dirs / "same").glob("*.png").__next__()
                                                                    .read_bytes())
    with pytest.raises(DataValueError, match="beyond"):
        evaluate_recon(recon_dirs / "same", recon_dirs / "brick.h5", tmp_path / "o1")
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    Image.fromarray(_images(1)[0]).save(truth_dir / "stim-00003.png")
    res = runner.invoke(app, ["evaluate", "recon", "--pred", str(recon_dirs / "same"), "--truth", str(truth_dir),
                              "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "without a ground-truth image" in res.output
    assert not (tmp_path / "o2").exists() or not any((tmp_path / "o2").iterdir())


def test_recon_with_tiny_local_clip(recon_dirs, tmp_path):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                           image_size=224, patch_size=32, projection_dim=16)
    CLIPVisionModelWithProjection(cfg).save_pretrained(tmp_path / "clip")
    rec = evaluate_recon(recon_dirs / "same", recon_dirs / "brick.h5", tmp_path / "out", clip_model=str(tmp_path / "clip"),
                         offline_network=False)
    assert rec["metrics"]["clip"]["status"] == "ok" and rec["metrics"]["clip"]["value"] == pytest.approx(1.0)


def _emb(path, x, ids=None):
    with h5py.File(path, "w") as f:
        f["embeddings"] = x
        if ids is not None:
            f["stim_id"] = ids


def test_retrieval_pairs_by_stim_id(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(400, 24))
    ids = np.arange(400) + 1000
    perm = rng.permutation(400)
    _emb(tmp_path / "img.h5", image, ids)
    _emb(tmp_path / "brain.h5", image[perm] + 0.01 * rng.normal(size=(400, 24)), ids[perm])
    rec = evaluate_retrieval(tmp_path / "brain.h5", tmp_path / "img.h5", tmp_path / "out")
    assert rec["metrics"]["image_retrieval"]["value"] == 1.0 and rec["metrics"]["brain_retrieval"]["value"] == 1.0
    assert rec["protocol"]["pairing"] == "stim_id" and rec["protocol"]["n_candidates"] == 300
    _emb(tmp_path / "noise.h5", rng.normal(size=(400, 24)), ids)
    rec = evaluate_retrieval(tmp_path / "noise.h5", tmp_path / "img.h5", tmp_path / "out2")
    assert rec["metrics"]["image_retrieval"]["value"] < 0.02
    _emb(tmp_path / "fewer.h5", image[:350], ids[:350])
    with pytest.raises(DataValueError, match="different stimuli"):
        evaluate_retrieval(tmp_path / "fewer.h5", tmp_path / "img.h5", tmp_path / "out3")
    with pytest.raises(InputError, match="--candidates is larger than the test set"):  # never shrunk silently
        evaluate_retrieval(tmp_path / "brain.h5", tmp_path / "img.h5", tmp_path / "out4", n_candidates=401)
    assert not (tmp_path / "out4").exists()


def test_encoding_against_numpy(nsd_tree, tmp_path):
    res = preprocess_nsd(nsd_tree, 1, root=tmp_path / "proj", flatmap=False)
    info, betas = read_info(res.betas), read_betas(res.betas)
    stims = np.unique(info.stim_id)[:10]
    measured = np.stack([betas[info.stim_id == s].mean(0) for s in stims])
    rng = np.random.default_rng(0)
    pred = measured + rng.normal(0, 0.5, measured.shape)
    with h5py.File(tmp_path / "pred.h5", "w") as f:
        f["pred"] = pred
        f["stim_id"] = stims
        f["voxels/ijk"] = info.ijk
    rec = evaluate_encoding(tmp_path / "pred.h5", 1, tmp_path / "out", root=tmp_path / "proj")
    r = np.array([np.corrcoef(pred[:, v], measured[:, v])[0, 1] for v in range(pred.shape[1])])
    assert rec["metrics"]["median_r"]["value"] == pytest.approx(np.median(r), abs=1e-6)
    assert rec["metrics"]["r_p90"]["value"] == pytest.approx(np.percentile(r, 90), abs=1e-6)
    ncsnr = info.ncsnr.astype(float)
    reps = np.array([(info.stim_id == s).sum() for s in stims])
    k = sum((reps == n).sum() / n for n in (1, 2, 3)) / len(reps)
    nc = 100 * ncsnr ** 2 / (ncsnr ** 2 + k)
    score = np.minimum(100 * np.maximum(r, 0) ** 2 / (nc / 100), 100)
    assert rec["metrics"]["nc_score_algonauts"]["value"] == pytest.approx(np.median(score), rel=1e-6)
    assert rec["details"]["roi"]["nsdgeneral/nsdgeneral"]["n_voxels"] == pred.shape[1]
    vol = nib.load(tmp_path / "out/sub-01_r.nii.gz").get_fdata()
    np.testing.assert_allclose(vol[tuple(info.ijk.T)], r, atol=1e-6)


def test_mask_and_labels_against_sklearn(tmp_path):
    rng = np.random.default_rng(0)
    shape, aff = (7, 8, 9), np.eye(4)
    a, b = rng.random(shape) < 0.3, rng.random(shape) < 0.4
    nib.save(nib.Nifti1Image(a.astype(np.int16), aff), tmp_path / "a.nii.gz")
    nib.save(nib.Nifti1Image(b.astype(np.int16), aff), tmp_path / "b.nii.gz")
    rec = evaluate_mask(tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", tmp_path / "m")
    inter = (a & b).sum()
    assert rec["metrics"]["dice"]["value"] == pytest.approx(2 * inter / (a.sum() + b.sum()))
    assert rec["metrics"]["precision"]["value"] == pytest.approx(inter / a.sum())
    la, lb = rng.integers(1, 4, shape), rng.integers(1, 5, shape)
    nib.save(nib.Nifti1Image(la.astype(np.int16), aff), tmp_path / "la.nii.gz")
    nib.save(nib.Nifti1Image(lb.astype(np.int16), aff), tmp_path / "lb.nii.gz")
    rec = evaluate_labels(tmp_path / "la.nii.gz", tmp_path / "lb.nii.gz", tmp_path / "l", within=tmp_path / "a.nii.gz")
    assert rec["metrics"]["ari"]["value"] == pytest.approx(adjusted_rand_score(lb[a], la[a]))
    res = runner.invoke(app, ["evaluate", "compare", str(tmp_path / "m/results.json"), str(tmp_path / "l/results.json")])
    assert res.exit_code == 0 and "Dice" in res.output and "adjusted Rand" in res.output


def test_mask_evaluation_draws_the_overlay(tmp_path):
    shape, aff = (7, 8, 9), np.diag([1.8, 1.8, 1.8, 1.0])
    a, b = np.zeros(shape, bool), np.zeros(shape, bool)
    a[1:4, 1:6, 2:7] = True
    b[3:6, 2:7, 2:7] = True
    nib.save(nib.Nifti1Image(a.astype(np.int16), aff), tmp_path / "troi.nii.gz")
    nib.save(nib.Nifti1Image(b.astype(np.int16), aff), tmp_path / "truth.nii.gz")
    rec = evaluate_mask(tmp_path / "troi.nii.gz", tmp_path / "truth.nii.gz", tmp_path / "m", root=tmp_path / "proj")
    assert "figure.png" in rec["outputs"]
    from PIL import Image

    from fmrikit.viz.maps import OVERLAY_COLORS

    img = np.asarray(Image.open(tmp_path / "m/figure.png").convert("RGB"), int)
    counts = [int((np.abs(img - [int(c[i:i + 2], 16) for i in (1, 3, 5)]).sum(-1) < 40).sum()) for c in OVERLAY_COLORS]
    assert min(counts) > 30  # overlap, mask only and reference only are all drawn
    # more reference-only voxels than overlap voxels: the picture shows more of the third colour than the first
    assert ((~a & b).sum() > (a & b).sum()) == (counts[2] > counts[0])


def test_recon_figure_title_names_the_computed_metrics_only():
    from fmrikit.analysis.evaluate import recon_title
    from fmrikit.analysis.results import Metric

    metrics = {"pixcorr": Metric("PixCorr", 0.1234, chance=0.0), "ssim": Metric("SSIM", 0.3456),
               "clip": Metric.skipped("CLIP", "no weights")}
    title = recon_title(metrics, 12)
    assert "12 pairs" in title and "PixCorr 0.123 (chance 0)" in title and "SSIM 0.346" in title
    assert "CLIP" not in title  # a skipped metric has no number to show
