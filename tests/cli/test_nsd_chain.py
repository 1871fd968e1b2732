"""The whole command chain on an NSD tree that no simulator of ours wrote (``tests/nsd_fixture.py``: NIfTI and
HDF5 subjects, no pycortex subject), the way a lab's data reaches fmrikit. Every command exits 0 and writes its
NIfTI and its picture (nilearn mosaics over the subject's own anatomy); the session file's reconstructions are
scored; what needs a cortical surface or a missing atlas stops in its first seconds with one line."""

import json
from types import SimpleNamespace

import h5py
import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmrikit.cli.main import app
from tests.nsd_fixture import BETAS, TRIALS, expected, shared_repeats, write_tree

runner = CliRunner()
CPU = ["--device", "cpu"]


def _picture(path) -> np.ndarray:
    """A PNG as RGB, checked to be a drawn figure (not blank)."""
    im = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    assert im.shape[0] > 100 and im.shape[1] > 100 and im.std() > 10
    return im


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Runs the chain once; each command's result is kept for the tests below."""
    tmp = tmp_path_factory.mktemp("chain")
    nsd, root = write_tree(tmp / "nsd"), tmp / "proj"
    sub1 = root / "sub-01"
    results = {}

    def run(name: str, *args: str) -> None:
        res = runner.invoke(app, [*args, "--root", str(root)])
        assert res.exit_code == 0, f"{name}: {res.output}"
        results[name] = res

    run("preprocess 1", "preprocess", "--nsd-root", str(nsd), "--subject", "1")
    run("preprocess 2", "preprocess", "--nsd-root", str(nsd), "--subject", "2")
    run("preprocess 1 brainmask", "preprocess", "--nsd-root", str(nsd), "--subject", "1", "--roi", "brainmask",
        "--no-flatmap")
    run("pretrain decoder", "pretrain", "decoder", "--subjects", "2", "--hidden", "16", "--blocks", "1", "--epochs",
        "2", "--batch-size", "8", *CPU)
    run("roi-train", "roi-train", "--subject", "1", "--budget", "20", "--sessions", "1", "--stage1-epochs", "3",
        "--warmup-epochs", "1", "--epochs", "2", "--batch-size", "4", *CPU)
    run("adapt-subject decoder", "adapt-subject", "decoder", "--subject", "1", "--mask",
        str(sub1 / "sub-01_desc-troi_mask.nii.gz"), "--epochs", "2", "--batch-size", "4", "--desc", "masked", *CPU)
    encoder = ["--epochs", "2", "--batch-size", "4", "--voxels-per-image", "16", *CPU]
    run("pretrain encoder", "pretrain", "encoder", "--subjects", "2", "--channels", "8", "--embed-dim", "8", *encoder)
    run("adapt-subject encoder", "adapt-subject", "encoder", "--subject", "1", *encoder)
    run("encode", "encode", "--shared", "--subject", "1", "--max-flatmaps", "2", *CPU)
    run("cluster-embeddings", "cluster-embeddings", "--k", "2", "--subjects", "1,2", "--model",
        str(sub1 / "sub-01_desc-adapt_encoder"), "--max-images", "12", "--top", "2", "--out",
        str(root / "clusters"), *CPU)
    run("evaluate encoding", "evaluate", "encoding", "--pred", str(sub1 / "sub-01_encode-shared/sub-01_pred.h5"),
        "--subject", "1", "--out", str(root / "eval-encoding"))
    run("pretrain autoencoder", "pretrain", "autoencoder", "--subjects", "1,2", "--image-size", "16", "--epochs", "1",
        "--batch-size", "8", *CPU)
    run("pretrain latent-mapper", "pretrain", "latent-mapper", "--subject", "1", "--mapper", "cnn", "--image-roi",
        "nsdgeneral", "--epochs", "2", *CPU)
    session = nsd / f"nsddata_betas/ppdata/subj01/func1pt8mm/{BETAS}/betas_session02.nii.gz"
    run("reconstruct session", "reconstruct", str(session), "--subject", "1", *CPU)
    run("reconstruct shared", "reconstruct", "--trials", "shared", "--subject", "1", *CPU)
    recon = sub1 / "sub-01_recon-latent-cnn_betas_session02"
    brick = nsd / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
    run("evaluate recon", "evaluate", "recon", "--pred", str(recon / "images"), "--truth", str(brick), "--repeats",
        "average", "--out", str(root / "eval-recon-average"), "--device", "cpu")
    return SimpleNamespace(nsd=nsd, root=root, sub1=sub1, recon=recon, brick=brick, results=results)


def test_preprocess_draws_the_noise_ceiling_on_the_subjects_anatomy(chain):
    for subject, reference in ((1, "T1_to_func1pt8mm.nii.gz"), (2, "mean.nii.gz")):
        sub = chain.root / f"sub-{subject:02d}"
        with h5py.File(sub / f"sub-{subject:02d}_desc-preproc_betas.h5") as f:
            ijk = f["voxels/ijk"][:]
        ncsnr = nib.load(chain.nsd / f"nsddata_betas/ppdata/subj{subject:02d}/func1pt8mm/{BETAS}/ncsnr.nii.gz")
        nc = ncsnr.get_fdata()[tuple(ijk.T)] ** 2
        img = nib.load(sub / f"sub-{subject:02d}_desc-preproc_noiseceiling.nii.gz")
        np.testing.assert_allclose(img.get_fdata()[tuple(ijk.T)], 100 * nc / (nc + 1 / 3), rtol=1e-5)
        np.testing.assert_allclose(img.affine, ncsnr.affine)
        _picture(sub / f"sub-{subject:02d}_desc-preproc_noiseceiling.png")
        side = json.loads((sub / f"sub-{subject:02d}_desc-preproc_betas.json").read_text())
        picture = side["pictures"][f"sub-{subject:02d}_desc-preproc_noiseceiling.png"]
        assert picture["renderer"] == "nilearn mosaic" and picture["background"].endswith(reference)


def test_sidecars_record_the_nsd_conventions(chain):
    for subject in (1, 2):
        ids, counts = shared_repeats(chain.nsd, subject)  # from responses.tsv, not from fmrikit
        side = json.loads((chain.root / f"sub-{subject:02d}/sub-{subject:02d}_desc-preproc_betas.json").read_text())
        conv = side["conventions"]
        assert conv["test_stim_ids"] == ids.tolist() and conv["n_test_images"] == len(ids)
        assert conv["planned_repeats"] == 3 and conv["n_test_images_all_repeats"] == int((counts == 3).sum())
        assert conv["sessions"] == ([1, 2, 3] if subject == 1 else [1, 2])
        assert conv["betas_version"] == BETAS and "z-score" in conv["normalisation"]
    # subject 2 read 2 of the design's 3 sessions: not every shared image has its 3 repeats (NSD's 982 vs 1000)
    assert shared_repeats(chain.nsd, 2)[1].min() < 3
    conv = {f"sub-{k:02d}": json.loads((chain.root / f"sub-{k:02d}/sub-{k:02d}_desc-preproc_betas.json").read_text())
            ["conventions"] for k in (1, 2)}
    with h5py.File(chain.sub1 / "sub-01_desc-preproc_betas.h5") as f:
        assert f.attrs["test_stim_ids"].tolist() == conv["sub-01"]["test_stim_ids"]
    # propagated to every model and output sidecar that reads a dataset (per subject where several)
    for path in (chain.root / "models/decoder/run.json", chain.sub1 / "sub-01_desc-masked.json",
                 chain.sub1 / "sub-01_desc-troi.json", chain.root / "models/encoder/run.json",
                 chain.sub1 / "sub-01_desc-adapt_encoder/run.json", chain.sub1 / "sub-01_encode-shared/encode.json",
                 chain.root / "clusters/clusters.json", chain.root / "models/autoencoder/run.json",
                 chain.sub1 / "sub-01_desc-cnn_latentmapper/run.json", chain.recon / "reconstruct.json",
                 chain.root / "eval-encoding/results.json", chain.root / "eval-recon-average/results.json"):
        record = json.loads(path.read_text())
        found = record.get("conventions") or record["protocol"]["conventions"]
        per_subject = found if "test_stim_ids" not in found else {"sub-01": found}
        assert per_subject and all(found_k == conv[k] for k, found_k in per_subject.items()), path


def test_roi_train_writes_its_mask_and_pictures_without_pycortex(chain):
    mask = nib.load(chain.sub1 / "sub-01_desc-troi_mask.nii.gz").get_fdata() > 0
    weights = nib.load(chain.sub1 / "sub-01_desc-troi_weights.nii.gz").get_fdata()
    brain = nib.load(chain.nsd / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz").get_fdata() > 0
    assert mask.sum() == 20 and not (mask & ~brain).any() and (weights[mask] > 0).all()
    side = json.loads((chain.sub1 / "sub-01_desc-troi.json").read_text())
    for name in ("sub-01_desc-troi_mask.png", "sub-01_desc-troi_weights.png"):
        _picture(chain.sub1 / name)
        assert side["pictures"][name]["renderer"] == "nilearn mosaic"
    assert (chain.sub1 / "sub-01_desc-troi_decoder/config.json").is_file()
    assert json.loads((chain.sub1 / "sub-01_desc-masked.json").read_text())["n_voxels"] == 20


def test_encode_cluster_and_evaluate_encoding_maps(chain):
    out = chain.sub1 / "sub-01_encode-shared"
    with h5py.File(out / "sub-01_pred.h5") as f:
        pred, ijk, stim = f["pred"][:], f["voxels/ijk"][:], f["stim_id"][:]
    vol = nib.load(out / "sub-01_pred.nii.gz").get_fdata()
    np.testing.assert_allclose(vol[tuple(ijk.T)].T, pred, rtol=1e-5)
    assert len(list(out.glob("*_pred.png"))) == 2
    for png in out.glob("*_pred.png"):
        _picture(png)
    # evaluate encoding: r per voxel against repeat-averaged betas, computed here with numpy
    with h5py.File(chain.sub1 / "sub-01_desc-preproc_betas.h5") as f:
        betas, data_stim, data_ijk = f["betas"][:], f["trials/stim_id"][:], f["voxels/ijk"][:]
    cols = [np.nonzero((data_ijk == v).all(1))[0][0] for v in ijk]
    measured = np.stack([betas[data_stim == s][:, cols].mean(0) for s in stim])
    p, m = pred - pred.mean(0), measured - measured.mean(0)
    r = (p * m).sum(0) / np.sqrt((p ** 2).sum(0) * (m ** 2).sum(0))
    r_map = nib.load(chain.root / "eval-encoding/sub-01_r.nii.gz").get_fdata()
    np.testing.assert_allclose(r_map[tuple(ijk.T)], r, atol=1e-5)
    _picture(chain.root / "eval-encoding/sub-01_r.png")
    results = json.loads((chain.root / "eval-encoding/results.json").read_text())
    assert results["protocol"]["picture"]["renderer"] == "nilearn mosaic"
    for key in ("sub-01", "sub-02"):
        labels = nib.load(chain.root / f"clusters/{key}_desc-clusters_dseg.nii.gz").get_fdata()
        with h5py.File(chain.root / "clusters/clusters.h5") as f:
            voxels, lab = f[f"{key}/ijk"][:], f[f"{key}/labels"][:]
        np.testing.assert_array_equal(labels[tuple(voxels.T)], lab)
        assert set(np.unique(lab)) <= {1, 2} and (labels > 0).sum() == len(voxels)
        _picture(chain.root / f"clusters/{key}_desc-clusters.png")


def test_session_file_reconstructed_warned_and_scored(chain):
    _, stim, session, _, _ = expected(chain.nsd, 1)
    want = stim[session == 2]  # the session file's trials, in file order
    images = sorted((chain.recon / "images").glob("*.png"))
    assert [p.name for p in images] == [f"trial-{k:04d}_stim-{s}.png" for k, s in enumerate(want)]
    side = json.loads((chain.recon / "reconstruct.json").read_text())
    assert side["train_sessions"] == [1, 2, 3] and len(side["warnings"]) == 1
    assert "session 2" in side["warnings"][0] and "not test results" in side["warnings"][0]
    assert "not test results" in chain.results["reconstruct session"].output
    shared = json.loads((chain.sub1 / "sub-01_recon-latent-cnn_trials-shared/reconstruct.json").read_text())
    assert shared["warnings"] == []
    from fmrikit.analysis.evaluate import evaluate_recon

    average = json.loads((chain.root / "eval-recon-average/results.json").read_text())
    trials = evaluate_recon(chain.recon / "images", chain.brick, chain.root / "eval-recon-trials", repeats="trials",
                            device="cpu", offline_network=False)
    assert average["n"] == len(np.unique(want)) < len(want) == trials["n"] == TRIALS
    assert average["protocol"]["repeats"] == "average" and trials["protocol"]["repeats"] == "trials"
    assert average["protocol"]["n_reconstructions"] == TRIALS and average["protocol"]["warnings"] == side["warnings"]
    # the mean image: PixCorr of the averaged reconstructions, computed here
    from fmrikit.analysis import metrics as M

    with h5py.File(chain.brick) as f:
        truth = f["imgBrick"][:]
    ids = np.unique(want)
    rec = [np.stack([M.resize_images(np.asarray(Image.open(p).convert("RGB"))[None], 256)[0]
                     for p in images if p.name.endswith(f"_stim-{s}.png")]).mean(0) for s in ids]
    gt = M.resize_images(truth[ids], 256)
    pixcorr = M.pixcorr(M.resize_images(gt, 425), M.resize_images(np.stack(rec), 425))
    assert average["metrics"]["pixcorr"]["value"] == pytest.approx(pixcorr, abs=1e-5)
    # without --repeats, repeated stimuli are refused in one line that names the option
    res = runner.invoke(app, ["evaluate", "recon", "--pred", str(chain.recon / "images"), "--truth", str(chain.brick),
                              "--out", str(chain.root / "eval-refused")])
    assert res.exit_code == 2 and "--repeats" in res.output and not (chain.root / "eval-refused").exists()


def test_what_needs_a_surface_or_an_atlas_stops_at_once(chain):
    res = runner.invoke(app, ["pretrain", "flatmap-ae", "--subjects", "1", "--root", str(chain.root), *CPU])
    assert res.exit_code == 2 and "--pycortex-subject" in res.output and "Traceback" not in res.output
    assert not (chain.root / "models/flatmap-ae").exists()
    assert not list(chain.root.glob("sub-01/*flatmap*"))
    res = runner.invoke(app, ["pretrain", "latent-mapper", "--subject", "2", "--mapper", "cnn", "--root",
                              str(chain.root), *CPU])  # subj02 has no prf-visualrois atlas
    assert res.exit_code == 2 and "prf-visualrois" in res.output and "--image-roi nsdgeneral" in res.output
    res = runner.invoke(app, ["pretrain", "latent-mapper", "--subject", "1", "--mapper", "gcn", "--image-roi",
                              "nsdgeneral", "--root", str(chain.root), *CPU])
    assert res.exit_code == 2 and "--mapper cnn" in res.output
    assert not (chain.sub1 / "sub-01_desc-gcn_latentmapper").exists()
