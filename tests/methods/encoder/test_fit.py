import numpy as np
import torch

from fmrikit.data.dataset import DatasetInfo
from fmrikit.methods.encoder.model import UniversalEncoder
from fmrikit.engine.distributed import Distributed
from fmrikit.methods.encoder.fit import EncoderData, encoding_scores, fit_encoder, predict
from fmrikit.methods.encoder.settings import EncoderSettings

CPU = Distributed(0, 1, torch.device("cpu"))


def _subject(key, n_vox, n_train, rng, readout):
    """Voxels read fixed patch features at level 0, plus noise: a learnable encoding problem."""
    def make(n):
        f = torch.from_numpy(rng.normal(size=(n, 2, 6, 3)).astype(np.float32))
        y = torch.einsum("npc,vpc->nv", f[:, 0], readout)
        return f, y + 0.1 * torch.randn(n, n_vox)
    train_f, train_y = make(n_train)
    test_f, test_y = make(20)
    info = DatasetInfo(path=None, subject=0, stim_id=np.zeros(0), session=np.zeros(0), shared=np.zeros(0, bool),
                       ijk=np.zeros((n_vox, 3), int), affine=np.eye(4), volume_shape=(1, 1, 1), stimuli_path="",
                       stimuli_dataset="", pycortex_subject="", pycortex_xfm="", ncsnr=None)
    return EncoderData(key=key, info=info, train_stim=np.arange(n_train), train_y=train_y, train_features=train_f,
                       test_stim=np.arange(20), test_y=test_y, test_features=test_f)


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    readout = torch.zeros(40, 6, 3)  # each voxel reads one channel of one patch
    readout[torch.arange(40), torch.from_numpy(rng.integers(0, 6, 40)), torch.from_numpy(rng.integers(0, 3, 40))] = 1
    return [_subject("sub-01", 25, 60, rng, readout[:25]), _subject("sub-02", 15, 60, rng, readout[25:])]


def _model(data, seed=0):
    torch.manual_seed(seed)
    return UniversalEncoder({d.key: d.n_voxels for d in data}, n_levels=2, n_patches=6, in_channels=3, channels=8,
                            embed_dim=16)


def test_joint_training_learns_and_predicts_every_voxel_in_chunks():
    data = _problem()
    model = _model(data)
    result = fit_encoder(model, data, EncoderSettings(epochs=60, batch_images=16, voxels_per_image=10, lr=1e-2), CPU)
    assert result.history[-1]["loss"] < 0.5 * result.history[0]["loss"]
    scores = encoding_scores(model, data[0])
    assert scores["median_r"] > 0.5
    full = predict(model, data[1].test_features, "sub-02")
    chunked = predict(model, data[1].test_features, "sub-02", batch_images=3, voxel_chunk=4)
    np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-6)


def test_resume_is_exact(tmp_path):
    data = _problem(1)
    settings = EncoderSettings(epochs=4, batch_images=16, voxels_per_image=10, lr=3e-3)
    whole = _model(data)
    fit_encoder(whole, data, settings, CPU)
    first = _model(data)
    fit_encoder(first, data, EncoderSettings(**{**settings.__dict__, "epochs": 2}), CPU, checkpoint=tmp_path / "ck")
    resumed = _model(data, seed=5)
    fit_encoder(resumed, data, settings, CPU, checkpoint=tmp_path / "ck", resume=True)
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0, msg=k)


def test_only_the_given_parameters_train():
    data = _problem(2)
    model = _model(data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit_encoder(model, data[1:], EncoderSettings(epochs=2, batch_images=8, voxels_per_image=5), CPU,
                params=[model.voxel_embeddings["sub-02"]])
    after = model.state_dict()
    assert not torch.equal(after["voxel_embeddings.sub-02"], before["voxel_embeddings.sub-02"])
    for k in before:
        if k != "voxel_embeddings.sub-02":
            assert torch.equal(after[k], before[k]), k


def test_each_image_of_a_step_gets_its_own_distinct_voxels():
    from fmrikit.methods.encoder.fit import sample_voxels

    rng = np.random.default_rng(0)
    draw = sample_voxels(rng, 7, 50, 12)
    assert draw.shape == (7, 12)
    assert all(len(set(row)) == 12 and min(row) >= 0 and max(row) < 50 for row in draw.tolist())
    assert len({tuple(row) for row in draw.tolist()}) == 7  # one sample per image, not one per step
    # every voxel equally likely: counts over many draws are near uniform (binomial sd ~ 0.03 of the mean)
    counts = np.bincount(sample_voxels(rng, 4000, 50, 12).ravel(), minlength=50)
    assert abs(counts / counts.mean() - 1).max() < 0.15
    np.testing.assert_array_equal(sample_voxels(rng, 3, 5, 9), np.tile(np.arange(5), (3, 1)))
