"""NeuroPictor training on the simulated world with a tiny SD 2.1-shaped pipeline and a tiny flatmap encoder."""

import hashlib
import json

import numpy as np
import pytest
import torch

from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAutoencoder
from fmrikit.methods.neuropictor.train import (adapt_neuropictor, load_neuropictor, load_stable_diffusion,
                                               pretrain_neuropictor)
from fmrikit.methods.neuropictor.settings import NeuroPictorOptions
from fmrikit.engine.settings import SupervisedSettings
from tests.tiny_diffusion import save_tiny_sd21

AE = dict(image_size=64, patch_size=16, width=32, depth=2, heads=2)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("neuropictor")
    torch.manual_seed(0)
    FlatmapAutoencoder(**AE).save_pretrained(tmp / "flatmap-ae")
    save_tiny_sd21(tmp / "sd21")
    return tmp


@pytest.fixture(scope="module")
def pretrained(project, parts):
    settings = SupervisedSettings(epochs=4, batch_size=16, lr=1e-3, patience=None, weight_decay=0.01)
    return pretrain_neuropictor([1, 2], root=project, pipeline=str(parts / "sd21"), flatmap_ae=parts / "flatmap-ae",
                                settings=settings, device="cpu", out=parts / "pretrained")


def test_pretraining_lowers_the_loss_and_saves_a_loadable_model(pretrained, parts, project):
    from fmrikit.data.dataset import read_info
    from fmrikit.project import preproc_betas_path

    losses = [row["loss"] for row in pretrained.history]
    assert losses[-1] < losses[0]
    assert {"diffusion", "semantic", "val_loss"} <= set(pretrained.history[0])
    conditioner, controlnet, record = load_neuropictor(pretrained.model)
    assert record["subjects"] == [1, 2] and record["flatmap_size"] == 64
    assert conditioner.control_shape == (controlnet.config.conditioning_channels, 8, 8)
    # the conditioner's encoder started from the flatmap autoencoder and was fine-tuned
    ae = FlatmapAutoencoder.from_pretrained(parts / "flatmap-ae")
    assert not torch.equal(ae.encoder.patch_embed.weight, conditioner.encoder.patch_embed.weight)
    for subject in (1, 2):
        info = read_info(preproc_betas_path(project, subject))
        s = pretrained.scores[f"sub-0{subject}"]
        assert s["n_test_images"] == len(np.unique(info.stim_id[info.shared])) > 0
        assert np.isfinite([s[k] for k in ("diffusion", "diffusion_unconditioned", "diffusion_shuffled", "semantic",
                                           "semantic_shuffled", "semantic_constant_baseline")]).all()


def test_controlnet_starts_as_a_no_op_on_the_frozen_unet(parts):
    """Zero convolutions: at initialisation the U-Net's prediction with the ControlNet's residuals is the U-Net's."""
    from diffusers import ControlNetModel

    sd = load_stable_diffusion(str(parts / "sd21"), "cpu")
    torch.manual_seed(0)
    controlnet = ControlNetModel.from_unet(sd.unet, conditioning_channels=4,
                                           conditioning_embedding_out_channels=(16, 32))
    z, text, control = torch.randn(2, 4, 8, 8), torch.randn(2, 77, 32), torch.randn(2, 4, 16, 16)
    t = torch.tensor([10, 500])
    with torch.no_grad():
        down, mid = controlnet(z, t, encoder_hidden_states=text, controlnet_cond=control, return_dict=False)
        plain = sd.unet(z, t, encoder_hidden_states=text).sample
        with_control = sd.unet(z, t, encoder_hidden_states=text, down_block_additional_residuals=down,
                               mid_block_additional_residual=mid).sample
    torch.testing.assert_close(with_control, plain, rtol=0, atol=0)
    assert sd.scheduler.config.prediction_type == "v_prediction"
    assert not any(p.requires_grad for p in sd.unet.parameters())


def test_adapting_to_one_subject_records_the_base(pretrained, project, parts):
    result = adapt_neuropictor(1, root=project, base=pretrained.model, device="cpu", out=parts / "adapted",
                               settings=SupervisedSettings(epochs=1, batch_size=16, lr=1e-3, patience=None),
                               options=NeuroPictorOptions(train_encoder=False))
    _, _, record = load_neuropictor(result.model)
    digest = hashlib.sha256((pretrained.model / "model.safetensors").read_bytes()).hexdigest()
    assert record["base_sha256"] == digest and record["subjects"] == [1]
    assert list(result.scores) == ["sub-01"]
    before, _, _ = load_neuropictor(pretrained.model)
    after, _, _ = load_neuropictor(result.model)
    # the frozen encoder kept its weights, the heads moved
    assert torch.equal(before.encoder.patch_embed.weight, after.encoder.patch_embed.weight)
    assert not torch.equal(before.to_text.features[1].weight, after.to_text.features[1].weight)


def test_missing_pipeline_and_existing_output_are_refused(project, parts, pretrained):
    from fmrikit.errors import InputError, OutputExistsError

    with pytest.raises(InputError, match="Stable Diffusion"):
        pretrain_neuropictor([1], root=project, flatmap_ae=parts / "flatmap-ae")
    with pytest.raises(OutputExistsError):
        pretrain_neuropictor([1], root=project, pipeline=str(parts / "sd21"), flatmap_ae=parts / "flatmap-ae",
                             out=pretrained.model)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bf16 autocast training path)")
def test_pretraining_on_cuda_with_bf16_autocast(project, parts, tmp_path):
    settings = SupervisedSettings(epochs=2, batch_size=16, lr=1e-3, patience=None, weight_decay=0.01)
    result = pretrain_neuropictor([1, 2], root=project, pipeline=str(parts / "sd21"), flatmap_ae=parts / "flatmap-ae",
                                  settings=settings, device="cuda", out=tmp_path / "cuda",
                                  options=NeuroPictorOptions(gradient_checkpointing=True))
    assert np.isfinite([row["loss"] for row in result.history]).all()
    conditioner, _, _ = load_neuropictor(result.model, device="cuda")
    assert next(conditioner.parameters()).device.type == "cuda"


def test_resume_continues_exactly(project, parts, tmp_path, monkeypatch):
    """An interrupted run resumed from its epoch checkpoint ends with the weights of a straight run."""
    import fmrikit.methods.neuropictor.train as npt
    from fmrikit.engine import supervised

    settings = SupervisedSettings(epochs=2, batch_size=32, lr=1e-3, patience=None)
    kwargs = dict(root=project, pipeline=str(parts / "sd21"), flatmap_ae=parts / "flatmap-ae", device="cpu")
    straight = pretrain_neuropictor([2], settings=settings, out=tmp_path / "straight", **kwargs)

    class Stop(Exception):
        pass

    real_fit = supervised.fit_supervised

    def fit_one_epoch_then_crash(*args, **kw):
        one = SupervisedSettings(**{**settings.__dict__, "epochs": 1})
        real_fit(*args[:3], one, *args[4:], **kw)
        raise Stop

    monkeypatch.setattr(npt, "fit_supervised", fit_one_epoch_then_crash)
    with pytest.raises(Stop):
        pretrain_neuropictor([2], settings=settings, out=tmp_path / "resumed", **kwargs)
    monkeypatch.setattr(npt, "fit_supervised", real_fit)
    steps = []
    real_call = npt._Objective.__call__
    monkeypatch.setattr(npt._Objective, "__call__", lambda self, *a, **k: steps.append(1) or real_call(self, *a, **k))
    resumed = pretrain_neuropictor([2], settings=settings, out=tmp_path / "resumed", resume=True, **kwargs)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    n_train = json.loads((resumed.model / "run.json").read_text())["n_train_samples"]
    assert len(steps) == -(-n_train // 32)  # only the second epoch ran
    for name in ("model.safetensors", "controlnet/diffusion_pytorch_model.safetensors"):
        assert (straight.model / name).read_bytes() == (resumed.model / name).read_bytes(), name
