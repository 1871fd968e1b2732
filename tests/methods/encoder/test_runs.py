"""Joint encoder pretraining and embedding-only adaptation on the tiny simulated project."""

import json

import h5py
import numpy as np
import pytest
import torch

from fmrikit.errors import InputError, MissingInputError, OutputExistsError
from fmrikit.methods.encoder.model import UniversalEncoder
from fmrikit.methods.encoder.runs import adapt_encoder, find_encoder, pretrain_encoder
from fmrikit.methods.encoder.settings import EncoderSettings, EncoderSize

SIZE = EncoderSize(channels=4, embed_dim=8)
QUICK = EncoderSettings(epochs=2, batch_images=8, voxels_per_image=50, lr=1e-2)


@pytest.fixture(scope="module")
def base(project):
    out = project / "models/encoder"
    pretrain_encoder([1], root=project, size=SIZE, settings=QUICK, grid=4, preset="small", device="cpu",
                     overwrite=True)
    return out


def _train_images(project, subject):
    with h5py.File(project / f"sub-{subject:02d}/sub-{subject:02d}_desc-preproc_betas.h5") as f:
        shared, stim = f["trials/shared"][:], f["trials/stim_id"][:]
        return np.unique(stim[~shared]), np.unique(stim[shared]), f["voxels/ijk"][:], f.attrs["affine"]


def test_pretrain_writes_a_complete_encoder_folder(project, base):
    record = json.loads((base / "config.json").read_text())
    train, test, ijk, affine = _train_images(project, 1)
    entry = record["subjects"]["sub-01"]
    assert entry["n_voxels"] == len(ijk) and entry["n_train_images"] == len(train)
    np.testing.assert_allclose(entry["affine"], affine)
    model = UniversalEncoder.from_pretrained(base)
    np.testing.assert_array_equal(model.voxel_index["sub-01"].ijk.numpy(), ijk)
    run = json.loads((base / "run.json").read_text())
    scores = run["encoding"]["sub-01"]
    assert scores["n_test_images"] == len(test) and scores["retrieval_candidates"] == len(test)
    assert -1 <= scores["median_r"] <= scores["p75_r"] <= 1
    assert len((base / "training_log.tsv").read_text().splitlines()) == QUICK.epochs + 1
    assert run["parameters"]["preset"] == "small" and run["parameters"]["features"]["grid"] == 4
    with pytest.raises(OutputExistsError):
        pretrain_encoder([1], root=project, size=SIZE, settings=QUICK, device="cpu")


def test_adapt_learns_only_the_new_subject_embeddings(project, base):
    out = adapt_encoder(2, root=project, n_train=10, settings=QUICK, device="cpu", desc="n10").model
    before, after = UniversalEncoder.from_pretrained(base), UniversalEncoder.from_pretrained(out)
    for k, v in before.state_dict().items():
        torch.testing.assert_close(after.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert set(after.voxel_embeddings) == {"sub-01", "sub-02"}
    record = json.loads((out / "config.json").read_text())
    assert record["subjects"]["sub-02"]["n_train_images"] == 10 and record["base"]["sha256"]
    assert find_encoder(project, 2, out) == out and find_encoder(project, 1) == base


def test_same_seed_and_count_draw_the_same_images_for_adaptation_and_scratch(project, base, caplog):
    from fmrikit.methods.encoder.runs import load_encoder_data
    from fmrikit.engine.distributed import Distributed

    ctx = Distributed(0, 1, torch.device("cpu"))
    dataset = project / "sub-02/sub-02_desc-preproc_betas.h5"
    spec = {"name": "gabor", "image_model": None}
    a = load_encoder_data(dataset, 2, spec, ctx, root=project, n_train=12, seed=3)
    b = load_encoder_data(dataset, 2, spec, ctx, root=project, n_train=12, seed=3)
    c = load_encoder_data(dataset, 2, spec, ctx, root=project, n_train=12, seed=4)
    train, _, _, _ = _train_images(project, 2)
    assert len(a.train_stim) == 12 and np.isin(a.train_stim, train).all()
    np.testing.assert_array_equal(a.train_stim, b.train_stim)
    assert not np.array_equal(a.train_stim, c.train_stim)
    scratch = adapt_encoder(2, root=project, n_train=12, pretrained=False, size=SIZE,
                            settings=EncoderSettings(**{**QUICK.__dict__, "seed": 3}), device="cpu",
                            desc="scratch").model
    model = UniversalEncoder.from_pretrained(scratch)
    assert set(model.voxel_embeddings) == {"sub-02"}
    with pytest.raises(InputError):
        load_encoder_data(dataset, 2, spec, ctx, root=project, n_train=len(train) + 1)


def test_a_subject_missing_from_every_encoder_is_refused(project, base, tmp_path):
    with pytest.raises(MissingInputError, match="no encoder holds"):
        find_encoder(project, 7)
    with pytest.raises(MissingInputError):
        find_encoder(project, 1, tmp_path)
