"""NeuroPictor from the CLI: flatmap autoencoder -> cross-subject pretraining -> refining -> reconstruct, with a tiny
local Stable Diffusion 2.1-shaped pipeline."""

import json

import h5py
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmrikit.cli.main import app
from tests.tiny_diffusion import save_tiny_sd21

runner = CliRunner()
CPU = ["--device", "cpu"]
TRAIN = ["--epochs", "2", "--batch-size", "16", "--lr", "1e-3", *CPU]


def _ok(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def project(sim_world, tmp_path_factory, one_thread):
    tmp = tmp_path_factory.mktemp("neuropictor-cli")
    root = tmp / "proj"
    r = ["--root", str(root)]
    for subject in ("1", "2"):
        _ok(["preprocess", "--nsd-root", str(sim_world), "--subject", subject, "--no-flatmap", *r])
    save_tiny_sd21(tmp / "sd21")
    _ok(["pretrain", "--model", "flatmap-ae", "--subjects", "1,2", "--preset", "small", "--flatmap-size", "64",
         "--width", "32", "--depth", "2", "--heads", "2", *TRAIN, *r])
    res = _ok(["pretrain", "--model", "neuropictor", "--subjects", "1,2", "--pipeline", str(tmp / "sd21"), *TRAIN, *r])
    assert "diffusion loss" in res.output and "semantic loss" in res.output
    _ok(["adapt-subject", "--model", "neuropictor", "--subject", "1", "--epochs", "1", "--batch-size", "16", *CPU, *r])
    return tmp


def _reconstruct(project, *args):
    root = project / "proj"
    _ok(["reconstruct", "--subject", "1", "--method", "neuropictor", "--steps", "3", "--root", str(root), *CPU,
         "--overwrite", *args])


def _images(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted((folder / "images").glob("*.png"))}


def test_reconstruct_uses_the_refined_model_and_the_control_scale_changes_the_images(project):
    root = project / "proj"
    out = root / "sub-01/sub-01_recon-neuropictor_trials-03"
    _reconstruct(project, "--trials", "0-3", "--control-scale", "0.5")
    sidecar = json.loads((out / "reconstruct.json").read_text())
    assert sidecar["route"]["neuropictor"].endswith("sub-01_desc-adapt_neuropictor")
    assert sidecar["parameters"]["control_scale"] == 0.5 and sidecar["parameters"]["guidance_scale"] == 5.0
    half = _images(out)
    assert len(half) == 4 and all(im.shape == (16, 16, 3) for im in half.values())
    _reconstruct(project, "--trials", "0-3", "--control-scale", "0.5")
    assert all(np.array_equal(half[k], v) for k, v in _images(out).items())  # deterministic given --seed
    _reconstruct(project, "--trials", "0-3", "--control-scale", "0")
    none = _images(out)
    assert any(not np.array_equal(half[k], none[k]) for k in half)


def test_high_level_from_swaps_the_semantics_and_keeps_the_structure(project):
    root = project / "proj"
    plain = root / "sub-01/sub-01_recon-neuropictor_trials-03"
    _reconstruct(project, "--trials", "0-3")
    _reconstruct(project, "--trials", "0-3", "--high-level-from", "5")
    swapped = root / "sub-01/sub-01_recon-neuropictor-semantics5_trials-03"
    with h5py.File(plain / "predictions.h5") as a, h5py.File(swapped / "predictions.h5") as b:
        np.testing.assert_array_equal(a["prediction"][:], b["prediction"][:])  # the control maps: structure kept
        text = b["text_embeddings"][:]
        assert np.allclose(text, text[:1])  # one semantic condition for every input
        assert not np.allclose(a["text_embeddings"][:], text)
    _reconstruct(project, "--trials", "5")
    with h5py.File(root / "sub-01/sub-01_recon-neuropictor_trials-5/predictions.h5") as c:
        np.testing.assert_allclose(c["text_embeddings"][0], text[0], rtol=1e-5, atol=1e-5)


def test_reconstruct_from_a_raw_session_file(project, sim_world):
    root = project / "proj"
    betas = sim_world / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.nii.gz"
    _reconstruct(project, str(betas), "--max-sheet", "4")
    out = root / "sub-01/sub-01_recon-neuropictor_betas_session01"
    assert len(_images(out)) == 60 and (out / "contact_sheet.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--method", "latent", "--control-scale", "0.5"], "apply to --method neuropictor"),
    (["--method", "neuropictor", "--high-level-from", "100000"], "out of range"),
])
def test_bad_neuropictor_options_exit_2(project, args, message):
    res = runner.invoke(app, ["reconstruct", "--subject", "1", "--trials", "0", "--root", str(project / "proj"),
                              *CPU, *args])
    assert res.exit_code == 2 and message in res.output, res.output
