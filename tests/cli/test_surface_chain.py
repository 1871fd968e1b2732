"""fsaverage end to end from the CLI: preprocess --space fsaverage, then pretrain, roi-train, adapt-subject, encode,
evaluate encoding, cluster-embeddings, reconstruct (dataset trials and an .mgh session file) and pretrain flatmap-ae,
on the tiny fsaverage NSD tree (tests/surface_fixture.py). Every per-vertex output is GIFTI (or MGH for series) with
flat-mesh and inflated pictures."""

import json

import h5py
import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmrikit.cli.main import app
from tests import surface_fixture as fx

runner = CliRunner()
CPU = ["--device", "cpu"]
TINY = ["--hidden", "16", "--blocks", "1", "--batch-size", "8", *CPU]
ENCODER = ["--channels", "4", "--embed-dim", "8", "--batch-size", "8", "--voxels-per-image", "200", "--epochs", "2",
           *CPU]


def ok(*args):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


def gifti(path):
    return nib.load(path).darrays[0].data


def picture(path):
    image = np.asarray(Image.open(path).convert("RGB"), dtype=int)
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert (np.abs(image - image[..., :1]).max(-1) > 40).any()  # coloured, not only grey shading
    return image


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Subjects 1 (nsdgeneral, pictures; brainmask) and 2 (nsdgeneral) on fsaverage; a decoder on both."""
    tmp = tmp_path_factory.mktemp("fsaverage")
    tree = fx.write_tree(tmp / "nsd")
    root = tmp / "proj"
    r = ["--root", root]
    ok("preprocess", "--nsd-root", tree, "--subject", 1, "--space", "fsaverage", *r)
    ok("preprocess", "--nsd-root", tree, "--subject", 2, "--space", "fsaverage", "--no-flatmap", *r)
    ok("preprocess", "--nsd-root", tree, "--subject", 1, "--space", "fsaverage", "--roi", "brainmask",
       "--no-flatmap", *r)
    ok("pretrain", "--subjects", "1,2", "--epochs", 2, *TINY, *r)
    return tree, root


def test_preprocess_writes_the_surface_form_and_pictures(project):
    tree, root = project
    sub = root / "sub-01"
    with h5py.File(sub / "sub-01_desc-preproc_betas.h5") as f:
        assert f.attrs["mesh"] == "fsaverage" and f["vertices/hemi"].shape == f["vertices/index"].shape
        n = f["betas"].shape[1]
    assert sum((gifti(sub / f"sub-01_hemi-{h}_desc-preproc_mask.label.gii") > 0).sum() for h in "LR") == n
    picture(sub / "sub-01_desc-preproc_noiseceiling.png")
    picture(sub / "sub-01_desc-preproc_noiseceiling_inflated.png")
    with h5py.File(sub / "sub-01_roi-brainmask_desc-preproc_betas.h5") as f:
        assert f["betas"].shape[1] == 2 * fx.N_VERTICES


def test_roi_train_smooths_on_the_mesh_and_adapt_takes_its_mask(project):
    _, root = project
    ok("roi-train", "--subject", 1, "--budget", 300, "--stage1-epochs", 3, "--warmup-epochs", 1, "--epochs", 1,
       "--root", root, *TINY)
    sub = root / "sub-01"
    selected = {h: np.nonzero(gifti(sub / f"sub-01_hemi-{h}_desc-troi_mask.label.gii"))[0] for h in "LR"}
    assert sum(len(v) for v in selected.values()) == 300
    patch = fx.patch_vertices()  # the responsive vertices: chance would put ~3 of them among 300 of 20484
    assert len(np.intersect1d(selected["L"], patch)) > 0.4 * len(patch)
    weights = {h: gifti(sub / f"sub-01_hemi-{h}_desc-troi_weights.func.gii") for h in "LR"}
    for h in "LR":
        assert (weights[h][selected[h]] > 0).all() and np.isfinite(weights[h]).all()
    sidecar = json.loads((sub / "sub-01_desc-troi.json").read_text())
    assert sidecar["stage1_voxels_per_epoch"][-1] == 300 and sidecar["parameters"]["troi"]["lowpass"]
    for name in ("mask", "weights"):
        picture(sub / f"sub-01_desc-troi_{name}.png")
        picture(sub / f"sub-01_desc-troi_{name}_inflated.png")
    ok("adapt-subject", "--subject", 1, "--mask", sub / "sub-01_hemi-L_desc-troi_mask.label.gii", "--desc", "masked",
       "--epochs", 1, "--root", root, "--batch-size", 8, *CPU)
    adapted = json.loads((sub / "sub-01_desc-masked.json").read_text())
    assert adapted["n_voxels"] == 300 and adapted["parameters"]["roi"] == "brainmask"
    res = runner.invoke(app, ["adapt-subject", "--subject", "1", "--mask", str(sub / "mask.nii.gz"), "--desc", "nii",
                              "--root", str(root), *CPU])
    assert res.exit_code == 2 and "NIfTI mask needs a volume dataset" in res.output


def test_encode_evaluate_and_cluster_per_vertex(project):
    _, root = project
    ok("pretrain", "--model", "encoder", "--subjects", "1,2", "--root", root, *ENCODER)
    ok("encode", "--shared", "--subject", 1, "--root", root, "--max-flatmaps", 1)
    out = root / "sub-01/sub-01_encode-shared"
    with h5py.File(out / "sub-01_pred.h5") as f:
        pred, hemi, vertex = f["pred"][:], f["vertices/hemi"][:], f["vertices/index"][:]
    for k, h in enumerate("LR"):
        series = nib.load(out / f"sub-01_hemi-{h}_pred.mgh")
        assert series.shape == (fx.N_VERTICES, 1, 1, len(pred))
        data = np.asarray(series.dataobj)[:, 0, 0, :].T
        np.testing.assert_array_equal(data[:, vertex[hemi == k]], pred[:, hemi == k])
        assert np.isnan(data).sum() == len(pred) * (fx.N_VERTICES - (hemi == k).sum())
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 2 and any("inflated" in p.name for p in pngs)
    ok("evaluate", "encoding", "--pred", out / "sub-01_pred.h5", "--subject", 1, "--root", root, "--out",
       root / "eval")
    r = np.concatenate([gifti(root / f"eval/sub-01_hemi-{h}_r.func.gii")[vertex[hemi == k]]
                        for k, h in enumerate("LR")])
    results = json.loads((root / "eval/results.json").read_text())
    assert np.isclose(np.nanmedian(r), results["metrics"]["median_r"]["value"], atol=1e-6)
    assert "prf-visualrois/V1v" in results["details"]["roi"]
    picture(root / "eval/sub-01_r.png")
    ok("cluster-embeddings", "--k", 3, "--subjects", 2, "--root", root, "--max-images", 10, "--top", 2)
    clusters = root / "clusters/kmeans-k3"
    with h5py.File(clusters / "clusters.h5") as f:
        labels = f["sub-02/labels"][:]
    with h5py.File(root / "sub-02/sub-02_desc-preproc_betas.h5") as f:
        hemi2, vertex2 = f["vertices/hemi"][:], f["vertices/index"][:]
    for k, h in enumerate("LR"):
        img = nib.load(clusters / f"sub-02_hemi-{h}_desc-clusters_dseg.label.gii")
        assert img.labeltable.get_labels_as_dict()[3] == "cluster-03"
        np.testing.assert_array_equal(img.darrays[0].data[vertex2[hemi2 == k]], labels[hemi2 == k])
    picture(clusters / "sub-02_desc-clusters.png")
    picture(clusters / "sub-02_desc-clusters_inflated.png")


def test_reconstruct_from_dataset_trials_and_from_an_mgh_session(project):
    tree, root = project
    ok("pretrain", "--model", "autoencoder", "--subjects", "1,2", "--image-size", 32, "--epochs", 1, "--root", root,
       *CPU)
    ok("pretrain", "--model", "latent-mapper", "--subject", 1, "--mapper", "ridge", "--root", root, *CPU)
    record = json.loads((root / "sub-01/sub-01_desc-ridge_latentmapper/image/config.json").read_text())
    assert record["mesh"] == "fsaverage"
    ok("reconstruct", "--trials", "shared", "--subject", 1, "--root", root, *CPU)
    assert len(list((root / "sub-01/sub-01_recon-latent-ridge_trials-shared/images").glob("*.png"))) == fx.N_SHARED
    session = tree / f"nsddata_betas/ppdata/subj01/fsaverage/{fx.BETAS}/rh.betas_session02.mgh"
    ok("reconstruct", session, "--subject", 1, "--root", root, *CPU)
    out = root / "sub-01/sub-01_recon-latent-ridge_betas_session02"
    sidecar = json.loads((out / "reconstruct.json").read_text())
    assert sidecar["inputs"][0]["input_scale"] == "raw" and len(sidecar["inputs"][0]["files"]) == 2
    with h5py.File(root / "sub-01/sub-01_desc-preproc_betas.h5") as f:
        second = f["trials/session"][:] == 2
        want = {f"trial-{i:04d}_stim-{s}.png" for i, s in zip(f["trials/index_in_session"][:][second],
                                                              f["trials/stim_id"][:][second])}
    assert {p.name for p in (out / "images").glob("*.png")} == want
    res = runner.invoke(app, ["reconstruct", str(tree / "nsddata/experiments/nsd/nsd_expdesign.mat.nii.gz"),
                              "--subject", "1", "--root", str(root), *CPU])
    assert res.exit_code == 2 and "not in the model's space" in res.output


@pytest.fixture(scope="module")
def flatmap_ae(project):
    _, root = project
    ok("pretrain", "flatmap-ae", "--subjects", "1,2", "--flatmap-size", 64, "--width", 32, "--depth", 1, "--heads", 2,
       "--epochs", 1, "--root", root, *CPU)
    return root / "models/flatmap-ae"


def test_flatmap_autoencoder_on_the_common_flat_space(project, flatmap_ae):
    _, root = project
    caches = [root / f"sub-0{s}/sub-0{s}_desc-preproc_flatmap-64.h5" for s in (1, 2)]
    with h5py.File(caches[0]) as a, h5py.File(caches[1]) as b:
        assert a["mapping"].attrs["mesh"] == "fsaverage" and b["mapping"].attrs["mesh"] == "fsaverage"
        assert tuple(a["mapping"].attrs["bbox"]) == tuple(b["mapping"].attrs["bbox"])  # one crop for both
        np.testing.assert_array_equal(a["mapping/mask"][:], b["mapping/mask"][:])  # same vertices: same pixels
    assert json.loads((root / "models/flatmap-ae/config.json").read_text())["flatmap_size"] == 64


@pytest.mark.slow
def test_neuropictor_on_the_common_flat_space(project, flatmap_ae, tmp_path):
    from tests.tiny_diffusion import save_tiny_sd21

    tree, root = project
    save_tiny_sd21(tmp_path / "sd21")
    ok("pretrain", "neuropictor", "--subjects", "1,2", "--pipeline", tmp_path / "sd21", "--epochs", 1,
       "--batch-size", 16, "--root", root, *CPU)
    session = tree / f"nsddata_betas/ppdata/subj01/fsaverage/{fx.BETAS}/lh.betas_session01.mgh"
    ok("reconstruct", session, "--subject", 1, "--method", "neuropictor", "--steps", 2, "--root", root, *CPU)
    out = root / "sub-01/sub-01_recon-neuropictor_betas_session01"
    assert len(list((out / "images").glob("*.png"))) == fx.TRIALS
    assert json.loads((out / "reconstruct.json").read_text())["route"]["flatmap_size"] == 64
