"""pretrain -> roi-train -> adapt-subject from the CLI on the tiny simulated world."""

import json

import h5py
import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from fmrikit.cli.main import app

runner = CliRunner()
TRAIN = ["--batch-size", "8", "--device", "cpu"]
TINY = ["--hidden", "16", "--blocks", "1", *TRAIN]


@pytest.fixture(scope="module")
def project(sim_world, tmp_path_factory):
    """Preprocessed subjects 1 (nsdgeneral + brainmask) and 2, and a decoder pretrained on subject 2."""
    root = tmp_path_factory.mktemp("decode") / "proj"
    for args in (["--subject", "1"], ["--subject", "2"], ["--subject", "1", "--roi", "brainmask"]):
        res = runner.invoke(app, ["preprocess", "--nsd-root", str(sim_world), "--root", str(root), "--no-flatmap",
                                  *args])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["pretrain", "--subjects", "2", "--root", str(root), "--epochs", "3", *TINY])
    assert res.exit_code == 0, res.output
    return root


def test_pretrain_writes_a_model_folder_with_log_and_sidecar(project):
    folder = project / "models/decoder"
    config = json.loads((folder / "config.json").read_text())
    assert config["class"] == "MindEyeDecoder" and config["features"]["name"] == "gabor"
    assert list(config["config"]["subjects"]) == ["sub-02"]
    sidecar = json.loads((folder / "run.json").read_text())
    with h5py.File(project / "sub-02/sub-02_desc-preproc_betas.h5") as f:
        n_test = len(np.unique(f["trials/stim_id"][:][f["trials/shared"][:]]))
    scores = sidecar["retrieval"]["sub-02"]
    assert scores["n_test_images"] == scores["n_candidates"] == n_test
    assert 0 <= scores["image_retrieval"] <= 1 and sidecar["inputs"][0]["sha256"]
    log = (folder / "training_log.tsv").read_text().splitlines()
    assert log[0].startswith("epoch\tloss") and len(log) == 4
    assert not (project / "models/.decoder.checkpoint").exists()


def test_roi_train_keeps_the_budget_inside_the_coarse_region(project, sim_world):
    truth = sim_world / "truth/subj01/informative_mask.nii.gz"
    res = runner.invoke(app, ["roi-train", "--subject", "1", "--budget", "150", "--sessions", "1", "--root",
                              str(project), "--stage1-epochs", "4", "--warmup-epochs", "1", "--epochs", "2",
                              "--no-flatmap", "--truth-mask", str(truth), *TINY])
    assert res.exit_code == 0, res.output
    sub = project / "sub-01"
    mask = nib.load(sub / "sub-01_desc-troi_mask.nii.gz")
    coarse = nib.load(sub / "sub-01_roi-brainmask_desc-preproc_mask.nii.gz")
    m = mask.get_fdata() > 0
    assert m.sum() == 150 and np.allclose(mask.affine, coarse.affine)
    assert not (m & ~(coarse.get_fdata() > 0)).any()
    weights = nib.load(sub / "sub-01_desc-troi_weights.nii.gz").get_fdata()
    assert (weights[m] > 0).all() and (weights[~m] == 0).all()
    sidecar = json.loads((sub / "sub-01_desc-troi.json").read_text())
    counts = sidecar["stage1_voxels_per_epoch"]
    assert counts[0] == sidecar["n_coarse_voxels"] and counts[-1] == 150
    assert sidecar["parameters"]["sessions"] == [1] and sidecar["retrieval"]["n_candidates"] >= 2
    assert sidecar["parameters"]["preset"] == "small" and sidecar["features"]["targets"] == "tokens"
    # the per-epoch truth log: its last precision is the final mask's, counted here from the two NIfTIs
    informative = nib.load(truth).get_fdata() > 0
    assert sidecar["stage1"][-1]["precision"] == pytest.approx((m & informative).sum() / m.sum())
    assert {"w_informative", "w_other", "kept_informative", "lasso", "capped"} <= set(sidecar["stage1"][0])
    with h5py.File(project / "sub-01/sub-01_roi-brainmask_desc-preproc_betas.h5") as f:
        n_train = int(((f["trials/session"][:] == 1) & ~f["trials/shared"][:]).sum())
    assert sidecar["n_train_trials"] == n_train
    from fmrikit.methods.mindeye.subject import load_subject_model

    loaded = load_subject_model(sub / "sub-01_desc-troi_decoder")
    assert loaded.ijk.shape == (150, 3) and m[tuple(loaded.ijk.T)].all()


def test_adapt_subject_on_a_mask_and_on_the_annotated_roi(project):
    mask = project / "sub-01/sub-01_desc-troi_mask.nii.gz"
    if not mask.exists():
        pytest.skip("needs the roi-train test's mask")
    res = runner.invoke(app, ["adapt-subject", "--subject", "1", "--mask", str(mask), "--root", str(project),
                              "--epochs", "2", "--desc", "masked", *TRAIN])
    assert res.exit_code == 0, res.output
    sidecar = json.loads((project / "sub-01/sub-01_desc-masked.json").read_text())
    assert sidecar["n_voxels"] == 150 and sidecar["parameters"]["roi"] == "brainmask"
    res = runner.invoke(app, ["adapt-subject", "--subject", "1", "--root", str(project), "--epochs", "2", *TRAIN])
    assert res.exit_code == 0, res.output
    with h5py.File(project / "sub-01/sub-01_desc-preproc_betas.h5") as f:
        n_roi = f["voxels/ijk"].shape[0]
    assert json.loads((project / "sub-01/sub-01_desc-adapt.json").read_text())["n_voxels"] == n_roi


@pytest.mark.parametrize("args, message", [
    (["roi-train", "--subject", "1", "--backbone", "/nowhere", "--desc", "new"], "no pretrained decoder"),
    (["roi-train", "--subject", "3"], "no preprocessed dataset of the coarse region"),
    (["adapt-subject", "--subject", "1", "--sessions", "7", "--desc", "new"], "sessions not in the dataset"),
    (["pretrain", "--subjects", "2"], "exists already"),
    (["roi-train", "--subject", "1", "--desc", "bad-label"], "letters and digits"),
])
def test_bad_input_is_one_red_line_and_exit_2(project, args, message):
    before = sorted(p.name for p in (project / "sub-01").iterdir())
    res = runner.invoke(app, [*args, "--root", str(project), *TRAIN])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert sorted(p.name for p in (project / "sub-01").iterdir()) == before


def test_adapt_refuses_a_mask_on_another_grid(project, tmp_path):
    img = nib.load(project / "sub-01/sub-01_desc-preproc_mask.nii.gz")
    shifted = nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ np.diag([1.0, 1.0, 2.0, 1.0]))
    nib.save(shifted, tmp_path / "other.nii.gz")
    res = runner.invoke(app, ["adapt-subject", "--subject", "1", "--mask", str(tmp_path / "other.nii.gz"),
                              "--root", str(project), "--desc", "grid", *TRAIN])
    assert res.exit_code == 2 and "affine" in res.output.lower()


def test_pretrain_flatmap_ae_prints_scores_against_the_mean_map(project):
    args = ["pretrain", "--model", "flatmap-ae", "--subjects", "1,2", "--root", str(project), "--preset", "small",
            "--flatmap-size", "64", "--width", "32", "--depth", "2", "--heads", "2", "--epochs", "2", "--device", "cpu"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    folder = project / "models/flatmap-ae"
    config = json.loads((folder / "config.json").read_text())
    assert config["class"] == "FlatmapAutoencoder" and config["config"]["heads"] == 2
    assert config["config"]["patch_size"] == 16 and config["flatmap_size"] == 64  # the rest from the preset
    parameters = json.loads((folder / "run.json").read_text())["parameters"]
    training = parameters["training"]
    assert (training["epochs"], training["batch_size"], training["lr"]) == (2, 32, 5e-4)  # the small preset's
    assert parameters["preset"] == "small" and parameters["average_repeats"] is True
    assert str(folder) in res.output and res.output.count("vs mean-flatmap baseline") == 3  # 2 subjects, overall
    res = runner.invoke(app, [*args[:7], "--preset", "huge", "--out", str(project / "models/other")])
    assert res.exit_code == 2 and "unknown --preset" in res.output and "huge" in res.output
