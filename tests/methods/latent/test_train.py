"""Latent mappers trained on the tiny simulated world, checked against numpy / scikit-learn."""

import json

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch

from fmrikit.data.dataset import read_info, read_stimuli
from fmrikit.errors import InputError, OutputExistsError
from fmrikit.methods.latent.models import LatentMapper
from fmrikit.diffusion import encode_images, load_autoencoder
from fmrikit.methods.latent.train import pretrain_latent_mapper
from fmrikit.methods.latent.settings import MapperOptions

SMALL = MapperOptions(channels=4, hidden=32, latent_dim=16, gcn_width=16, gcn_hidden=32)
QUICK = {"epochs": 3, "batch_size": 16, "lr": 1e-3}


def _test_set(project, cols):
    """Shared images (repeats averaged, by numpy) and their betas at ``cols``, read with h5py."""
    with h5py.File(project / "sub-01/sub-01_desc-preproc_betas.h5") as f:
        betas, stim, shared = f["betas"][:], f["trials/stim_id"][:], f["trials/shared"][:]
    ids = np.unique(stim[shared])
    x = np.stack([betas[shared & (stim == i)][:, cols].mean(0) for i in ids])
    return ids, x.astype(np.float32), betas, stim, shared


def test_ridge_mapper_is_scikit_learn_ridge_on_standardised_betas(project, autoencoder, monkeypatch):
    from sklearn.linear_model import Ridge

    import fmrikit.engine.ridge as ridge

    monkeypatch.setattr(ridge, "DEFAULT_ALPHAS", np.array([30.0]))  # one alpha: sklearn can fit the same model
    result = pretrain_latent_mapper(1, mapper="ridge", root=project, options=SMALL, device="cpu",
                                    out=project / "mapper-ridge")
    model = LatentMapper.from_pretrained(result.model / "image")
    record = json.loads((result.model / "image/config.json").read_text())
    info = read_info(project / "sub-01/sub-01_desc-preproc_betas.h5")
    prf = np.asarray(nib.load(f"{info.nsd_root}/nsddata/ppdata/subj01/func1pt8mm/roi/prf-visualrois.nii.gz").dataobj)
    cols = np.nonzero(np.isin(prf[tuple(info.ijk.T)], range(1, 8)))[0]
    assert np.array_equal(model.ijk.numpy(), info.ijk[cols]) and record["target_shape"] == [4, 16, 16]

    vae, _ = load_autoencoder(autoencoder)
    ids, x_test, betas, stim, shared = _test_set(project, cols)
    train = ~shared
    z_train = encode_images(vae, read_stimuli(info, stim[train])).reshape(train.sum(), -1)
    mean, std = z_train.mean(0), z_train.std(0, ddof=1)
    xs = betas[train][:, cols]
    mu, sd = xs.mean(0), xs.std(0)
    sk = Ridge(alpha=30.0).fit((xs - mu) / sd, (z_train - mean) / std)
    want = sk.predict((x_test - mu) / sd) * std + mean
    got = model.predict(torch.from_numpy(x_test)).numpy()
    assert np.allclose(got, want, atol=2e-3 * np.abs(want).max())
    z_test = encode_images(vae, read_stimuli(info, ids)).reshape(len(ids), -1)
    assert result.scores["image"]["test_mse"] == pytest.approx(((got - z_test) ** 2).mean(), rel=1e-3)
    assert "text" not in result.scores  # the embedded autoencoder has no text encoder


def test_gcn_graph_is_the_symmetric_thresholded_correlation_of_the_true_areas(project, autoencoder):
    from fmrikit.data.world.truth import read_truth

    result = pretrain_latent_mapper(1, mapper="gcn", root=project, options=SMALL, overrides=QUICK, device="cpu",
                                    out=project / "mapper-gcn")
    model = LatentMapper.from_pretrained(result.model / "image")
    info = read_info(project / "sub-01/sub-01_desc-preproc_betas.h5")
    prf = np.asarray(nib.load(f"{info.nsd_root}/nsddata/ppdata/subj01/func1pt8mm/roi/prf-visualrois.nii.gz").dataobj)
    labels = prf[tuple(info.ijk.T)]
    inputs = labels[np.isin(labels, range(1, 8))]
    nodes = [np.nonzero(np.isin(inputs, g))[0].tolist() for g in ((1, 2), (3, 4), (5, 6, 7))]
    assert model.config["node_columns"] == nodes
    # each node holds voxels of its true visual areas (V1, V2, V3 + hV4) of the simulated subject
    truth = read_truth(info.nsd_root, 1)
    area_of = {tuple(v): truth.areas[a] for v, a in zip(truth.ijk, truth.area)}
    ijk = model.ijk.numpy()
    for cols, areas in zip(nodes, (("V1",), ("V2",), ("V3", "hV4"))):
        found = [area_of.get(tuple(ijk[c])) for c in cols]
        known = [a for a in found if a is not None]
        assert len(known) > 0.8 * len(cols) and all(a in areas for a in known), (areas, set(known))
    with h5py.File(project / "sub-01/sub-01_desc-preproc_betas.h5") as f:
        betas, shared = f["betas"][:], f["trials/shared"][:]
    cols = np.nonzero(np.isin(labels, range(1, 8)))[0]
    node_means = np.stack([betas[~shared][:, cols[n]].mean(1) for n in nodes], 1)
    r = np.corrcoef(node_means.T)
    want = np.where(r >= 0.5, r, 0)
    np.fill_diagonal(want, 0)
    assert np.allclose(model.adjacency.numpy(), want, atol=1e-5) and np.count_nonzero(want)
    log = (result.model / "training_log_image.tsv").read_text().splitlines()
    assert log[0].startswith("epoch\tloss") and "val_loss" in log[0] and len(log) == 4
    assert not (project / ".mapper-gcn.checkpoint").exists()
    assert json.loads((result.model / "run.json").read_text())["parameters"]["preset"] == "small"


def test_bad_requests(project, autoencoder):
    with pytest.raises(InputError, match="unknown latent mapper"):
        pretrain_latent_mapper(1, mapper="mlp", root=project)
    (project / "taken").mkdir(exist_ok=True)
    with pytest.raises(OutputExistsError):
        pretrain_latent_mapper(1, mapper="cnn", root=project, out=project / "taken")


def test_default_text_voxels_are_the_simulated_ventral_stream(project):
    from fmrikit.data.rois import roi_columns
    from fmrikit.data.world.truth import read_truth

    options = MapperOptions()
    info = read_info(project / "sub-01/sub-01_desc-preproc_betas.h5")
    cols = roi_columns(info, options.text_roi, list(options.text_labels))
    truth = read_truth(info.nsd_root, 1)
    area_of = {tuple(v): truth.areas[a] for v, a in zip(truth.ijk, truth.area)}
    chosen = {tuple(v) for v in info.ijk[cols]}
    ventral = ("FFA", "PPA", "VWFA", "food")
    # nearly every informative voxel of the ventral category regions is read, and almost no early voxel
    in_regions = [v for v, a in area_of.items() if a in ventral and v in {tuple(u) for u in info.ijk}]
    assert in_regions and np.mean([v in chosen for v in in_regions]) > 0.9
    early = [v for v in chosen if area_of.get(v) in ("V1", "V2", "V3", "hV4", "V3AB")]
    assert len(early) < 0.03 * len(chosen)
