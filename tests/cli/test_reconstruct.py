"""pretrain --model autoencoder / latent-mapper -> reconstruct, from the CLI, with tiny local diffusers pipelines."""

import json

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmrikit.cli.main import app
from tests.tiny_diffusion import save_tiny_img2img, save_tiny_unclip

runner = CliRunner()
CPU = ["--device", "cpu"]


def _ok(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def project(sim_world, tmp_path_factory):
    """Subject 1 preprocessed; an autoencoder and a ridge mapper; a CNN mapper (+ text) on a tiny SD pipeline;
    a decoder on 32-d CLIP embeddings adapted to subject 1, and a tiny unCLIP pipeline."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    tmp = tmp_path_factory.mktemp("recon")
    root = tmp / "proj"
    r = ["--root", str(root)]
    _ok(["preprocess", "--nsd-root", str(sim_world), "--subject", "1", "--no-flatmap", *r])
    _ok(["pretrain", "--model", "autoencoder", "--subjects", "1", "--image-size", "32", "--epochs", "1", *CPU, *r])
    _ok(["pretrain", "--model", "latent-mapper", "--subject", "1", "--mapper", "ridge", *CPU, *r])
    save_tiny_img2img(tmp / "sd")
    save_tiny_unclip(tmp / "unclip", embed_dim=32)
    _ok(["pretrain", "--model", "latent-mapper", "--subject", "1", "--mapper", "cnn", "--pipeline", str(tmp / "sd"),
         "--epochs", "1", "--batch-size", "16", "--out", str(tmp / "mapper-sd"), *CPU, *r])
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                   image_size=32, patch_size=8, intermediate_size=37,
                                                   projection_dim=32)).save_pretrained(tmp / "clip")
    _ok(["pretrain", "--subjects", "1", "--features", "clip", "--image-model", str(tmp / "clip"), "--epochs", "1",
         "--targets", "pooled", "--hidden", "16", "--blocks", "1", "--batch-size", "16", *CPU, *r])
    _ok(["adapt-subject", "--subject", "1", "--epochs", "1", "--batch-size", "16", *CPU, *r])
    return tmp


def _session_file(sim_world):
    return sim_world / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.nii.gz"


def test_embedded_route_from_a_raw_session_file(project, sim_world):
    root = project / "proj"
    res = _ok(["reconstruct", str(_session_file(sim_world)), "--subject", "1", "--root", str(root), *CPU])
    # the only mapper of the subject is ridge: found without --mapper
    out = root / "sub-01/sub-01_recon-latent-ridge_betas_session01"
    assert "contact sheet" in res.output and (out / "contact_sheet.png").is_file()
    with h5py.File(root / "sub-01/sub-01_desc-preproc_betas.h5") as f:
        session, index, stim = f["trials/session"][:], f["trials/index_in_session"][:], f["trials/stim_id"][:]
    first = session == 1
    want = {f"trial-{i:04d}_stim-{s}.png" for i, s in zip(index[first], stim[first])}
    assert {p.name for p in (out / "images").glob("trial-*.png")} == want
    assert Image.open(next((out / "images").glob("trial-*.png"))).size == (32, 32)
    sidecar = json.loads((out / "reconstruct.json").read_text())
    assert sidecar["route"]["generator"] == "autoencoder" and sidecar["inputs"][0]["input_scale"] == "raw"
    assert sidecar["inputs"][0]["sha256"] and len(sidecar["stim_id"]) == first.sum()
    with h5py.File(out / "predictions.h5") as f:
        assert f["prediction"].shape == (first.sum(), 4 * 8 * 8) and "text_embeddings" not in f


def test_img2img_route_with_text_is_deterministic_and_batch_independent(project):
    root = project / "proj"
    args = ["reconstruct", "--subject", "1", "--trials", "shared", "--model", str(project / "mapper-sd"),
            "--samples", "2", "--steps", "2", "--guidance-scale", "3", "--root", str(root), *CPU]
    _ok([*args, "--batch-size", "3", "--out", str(project / "b3")])
    _ok([*args, "--batch-size", "1", "--out", str(project / "b1")])
    names = sorted(p.name for p in (project / "b3/images/sample-01").glob("*.png"))
    assert names and names == sorted(p.name for p in (project / "b1/images/sample-02").glob("*.png"))
    for name in names:
        a = np.asarray(Image.open(project / "b3/images/sample-01" / name), np.int16)
        assert a.shape == (16, 16, 3)
        assert np.abs(a - np.asarray(Image.open(project / "b1/images/sample-01" / name), np.int16)).max() <= 2
    assert any(not np.array_equal(np.asarray(Image.open(project / "b3/images/sample-01" / n)),
                                  np.asarray(Image.open(project / "b3/images/sample-02" / n))) for n in names)
    sidecar = json.loads((project / "b3/reconstruct.json").read_text())
    assert sidecar["route"]["generator"] == "img2img" and sidecar["route"]["text_mapper"]
    with h5py.File(project / "b3/predictions.h5") as f:
        assert f["text_embeddings"].shape == (len(names), 15, 32)


def test_unclip_route_from_the_adapted_decoder(project):
    root = project / "proj"
    _ok(["reconstruct", "--subject", "1", "--method", "unclip", "--trials", "0-3", "--pipeline",
         str(project / "unclip"), "--steps", "2", "--root", str(root), "--out", str(project / "unclip-out"), *CPU])
    pngs = sorted((project / "unclip-out/images").glob("trial-*.png"))
    assert len(pngs) == 4 and Image.open(pngs[0]).size == (16, 16)
    assert json.loads((project / "unclip-out/reconstruct.json").read_text())["route"]["class"] == \
        "StableUnCLIPImg2ImgPipeline"


def test_unclip_route_through_a_diffusion_prior(project):
    root = project / "proj"
    _ok(["pretrain", "--model", "prior", "--subject", "1", "--epochs", "2", "--root", str(root), *CPU])
    prior = root / "sub-01/sub-01_desc-prior_prior"
    record = json.loads((prior / "prior.json").read_text())
    assert record["decoder"].endswith("sub-01_desc-adapt_decoder") and (prior / "training_log.tsv").is_file()
    args = ["reconstruct", "--subject", "1", "--method", "unclip", "--trials", "0-2", "--pipeline",
            str(project / "unclip"), "--steps", "2", "--root", str(root), *CPU]
    _ok([*args, "--prior", str(prior), "--out", str(project / "prior-out")])
    with_prior = np.asarray(Image.open(next((project / "prior-out/images").glob("trial-0000*.png"))))
    without = np.asarray(Image.open(next((project / "unclip-out/images").glob("trial-0000*.png"))))
    assert with_prior.shape == without.shape and not np.array_equal(with_prior, without)
    _ok(["adapt-subject", "--subject", "1", "--desc", "other", "--seed", "5", "--epochs", "1", "--batch-size", "16",
         "--root", str(root), *CPU])
    res = runner.invoke(app, [*args, "--prior", str(prior), "--model", str(root / "sub-01/sub-01_desc-other_decoder"),
                              "--out", str(project / "never")])
    assert res.exit_code == 2 and "another decoder" in res.output and not (project / "never").exists()


@pytest.mark.parametrize("extra, message", [
    (["--samples", "2"], "one sample per input"),
    (["--method", "unclip"], "needs a Stable unCLIP pipeline"),
    (["--mapper", "vae"], "no latent mapper"),
    (["--pipeline", "SD"], "not the one the mapper was trained on"),
    (["--pipeline", "/nowhere/sd"], "never downloaded"),
    (["--trials", "shared"], "exactly one"),
    (["--input-scale", "percent"], "input-scale"),
    (["--method", "gan"], "unknown --method"),
])
def test_bad_requests_exit_2_and_write_nothing(project, sim_world, extra, message):
    root = project / "proj"
    extra = [str(project / "sd") if e == "SD" else e for e in extra]
    before = sorted(p.name for p in (root / "sub-01").iterdir())
    res = runner.invoke(app, ["reconstruct", str(_session_file(sim_world)), "--subject", "1", "--mapper", "ridge",
                              "--root", str(root), "--out", str(project / "never"), *extra, *CPU])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert sorted(p.name for p in (root / "sub-01").iterdir()) == before and not (project / "never").exists()


def test_grid_mismatch_and_existing_output(project, sim_world, tmp_path):
    root = project / "proj"
    img = nib.load(_session_file(sim_world))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., :5], img.affine @ np.diag([2.0, 1, 1, 1])),
             tmp_path / "moved.nii.gz")
    res = runner.invoke(app, ["reconstruct", str(tmp_path / "moved.nii.gz"), "--subject", "1", "--mapper", "ridge",
                              "--root", str(root), "--out", str(tmp_path / "out"), *CPU])
    assert res.exit_code == 2 and "affine" in res.output.lower() and not (tmp_path / "out").exists()
    (tmp_path / "taken").mkdir()
    res = runner.invoke(app, ["reconstruct", "--trials", "0", "--subject", "1", "--mapper", "ridge",
                              "--root", str(root), "--out", str(tmp_path / "taken"), *CPU])
    assert res.exit_code == 2 and "exists already" in res.output
