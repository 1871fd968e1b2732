"""Calibrated encoding: the flatmap autoencoder trained on two subjects' flatmaps, scored on their test images."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fmrikit.data.flatmaps.cache import read_flatmap_info, read_flatmaps, split_rows, test_flatmaps
from fmrikit.errors import MissingInputError, OutputExistsError
from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAutoencoder, FlatmapEncoder, encoder_state
from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAESize
from fmrikit.methods.neuropictor import flatmap_ae as runs
from fmrikit.methods.neuropictor.flatmap_ae import pretrain_flatmap_ae
from fmrikit.project import default_flatmap_ae_path
from fmrikit.engine.settings import SupervisedSettings

SIZE = FlatmapAESize(image_size=64, patch_size=16, width=32, depth=2, heads=2)
SETTINGS = SupervisedSettings(epochs=2, batch_size=16, lr=1e-3, patience=None)


@pytest.fixture(scope="module")
def trained(project):
    return pretrain_flatmap_ae([1, 2], root=project, size=SIZE, settings=SETTINGS, device="cpu")


def _numpy_scores(pred, images, mask):
    p = np.broadcast_to(pred, images.shape)[:, mask].astype(np.float64)
    y = images[:, mask].astype(np.float64)
    mse = ((p - y) ** 2).mean(1)
    r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(p, y)])
    return mse.mean(), r.mean()


def test_writes_a_model_folder_that_loads_back(project, trained):
    folder = trained.model
    assert folder == default_flatmap_ae_path(project) and (folder / "model.safetensors").is_file()
    model = FlatmapAutoencoder.from_pretrained(folder)
    assert model.config["width"] == 32 and model.config["decoder_depth"] == 2
    config = json.loads((folder / "config.json").read_text())
    assert config["subjects"] == [1, 2] and config["flatmap_size"] == 64 and config["roi"] == "nsdgeneral"
    assert set(config["flatmaps"]) == {"sub-01", "sub-02"} and config["flatmaps"]["sub-01"]["sha256"]
    run = json.loads((folder / "run.json").read_text())
    assert [i["sha256"] for i in run["inputs"]] == [config["flatmaps"][k]["sha256"] for k in ("sub-01", "sub-02")]
    assert run["scores"] == json.loads(json.dumps(trained.scores))
    log = (folder / "training_log.tsv").read_text().splitlines()
    rows = [dict(zip(log[0].split("\t"), line.split("\t"))) for line in log[1:]]
    assert len(rows) == 2 and float(rows[1]["loss"]) < float(rows[0]["loss"]) and "val_loss" in rows[0]
    assert not (folder.parent / ".flatmap-ae.checkpoint").exists()
    # no test image (shared in any subject) is among the training or validation trials
    infos = [read_flatmap_info(config["flatmaps"][k]["path"]) for k in ("sub-01", "sub-02")]
    test_ids = set(np.concatenate([i.stim_id[i.shared] for i in infos]).tolist())
    n_train = sum(len(split_rows(i)[0]) for i in infos)
    assert run["n_train_trials"] + run["n_val_trials"] == n_train and test_ids
    # repeats averaged (the default): one sample per subject and training image
    n_images = sum(len(np.unique(i.stim_id[split_rows(i)[0]])) for i in infos)
    assert run["parameters"]["average_repeats"] and run["n_train_samples"] + run["n_val_samples"] == n_images < n_train
    # the encoder alone, as NeuroPictor's conditioner loads it
    enc_config, state = encoder_state(folder)
    encoder = FlatmapEncoder(**enc_config).eval()
    encoder.load_state_dict(state)
    x = torch.from_numpy(test_flatmaps(infos[0].path)[1][:2])
    with torch.no_grad():
        assert torch.equal(encoder(x), model.eval().encode(x)) and encoder(x).shape == (2, 17, 32)


def test_scores_match_a_numpy_recomputation(trained):
    folder = trained.model
    model = FlatmapAutoencoder.from_pretrained(folder).eval()
    config = json.loads((folder / "config.json").read_text())
    for key in ("sub-01", "sub-02"):
        path = config["flatmaps"][key]["path"]
        info = read_flatmap_info(path)
        mask = info.mapping.mask
        ids, images = test_flatmaps(path)
        assert set(ids.tolist()) == set(info.stim_id[info.shared].tolist())
        with torch.no_grad():
            recon = model(torch.from_numpy(images)).numpy()
        train_rows = split_rows(info)[0]
        maps, stim = read_flatmaps(path, train_rows).astype(np.float64), info.stim_id[train_rows]
        # the baseline is the mean over the training images, each the mean of its trials (repeats averaged)
        mean_map = np.mean([maps[stim == i].mean(0) for i in np.unique(stim)], axis=0)
        s = trained.scores[key]
        mse, r = _numpy_scores(recon, images, mask)
        base_mse, base_r = _numpy_scores(mean_map, images, mask)
        assert np.isclose(s["mse"], mse, rtol=1e-5) and np.isclose(s["r"], r, rtol=1e-4, atol=1e-6)
        assert np.isclose(s["baseline_mse"], base_mse, rtol=1e-5) and np.isclose(s["baseline_r"], base_r, rtol=1e-5)
        assert np.isclose(s["mse_ratio"], mse / base_mse) and s["n_test_images"] == len(ids)
        assert s["n_mask_pixels"] == mask.sum()
    overall = trained.scores["overall"]
    n = [trained.scores[k]["n_test_images"] for k in ("sub-01", "sub-02")]
    assert np.isclose(overall["mse"], np.average([trained.scores[k]["mse"] for k in ("sub-01", "sub-02")],
                                                 weights=n))


class _Interrupted(Exception):
    pass


def test_resume_after_an_interruption_equals_a_straight_run(project, trained, tmp_path, monkeypatch):
    real = runs.fit_supervised

    def one_epoch_then_crash(model, batch_loss, n_rows, settings, **kw):
        real(model, batch_loss, n_rows, replace(settings, epochs=1), **kw)
        raise _Interrupted

    out = tmp_path / "ae"
    monkeypatch.setattr(runs, "fit_supervised", one_epoch_then_crash)
    with pytest.raises(_Interrupted):
        pretrain_flatmap_ae([1, 2], root=project, size=SIZE, settings=SETTINGS, device="cpu", out=out)
    assert not out.exists() and (tmp_path / ".ae.checkpoint").is_dir()
    steps = []

    def counting(model, batch_loss, n_rows, settings, **kw):
        return real(model, lambda rows, net: steps.append(rows) or batch_loss(rows, net), n_rows, settings, **kw)

    monkeypatch.setattr(runs, "fit_supervised", counting)
    resumed = pretrain_flatmap_ae([1, 2], root=project, size=SIZE, settings=SETTINGS, device="cpu", out=out,
                                  resume=True)
    n_train = json.loads((out / "run.json").read_text())["n_train_samples"]
    assert len(steps) == -(-n_train // SETTINGS.batch_size)  # only the second epoch ran
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert np.allclose([r["loss"] for r in resumed.history], [r["loss"] for r in trained.history])
    straight, again = load_file(trained.model / "model.safetensors"), load_file(out / "model.safetensors")
    assert straight.keys() == again.keys() and all(torch.equal(straight[k], again[k]) for k in straight)
    assert not (tmp_path / ".ae.checkpoint").exists()


def test_refuses_to_overwrite_and_unknown_sessions(project, trained, tmp_path):
    with pytest.raises(OutputExistsError):
        pretrain_flatmap_ae([1], root=project, size=SIZE, settings=SETTINGS, device="cpu")
    with pytest.raises(MissingInputError, match="sessions not in the flatmap cache"):
        pretrain_flatmap_ae([1], root=project, size=SIZE, settings=SETTINGS, device="cpu", sessions=[9],
                            out=tmp_path / "other")
