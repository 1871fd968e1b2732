"""Every trainable model is reproducible by seed, and a run killed in the middle of an epoch, then resumed, ends
with the weights of a straight run, bit for bit.

Each model is trained twice from scratch with the same seed: once straight through two epochs, once stopped in the
second step of its second epoch (an exception nothing catches, as a kill would leave it: the first epoch's
checkpoint) and resumed with ``resume=True``. Identical final weights show both that the seed fixes the initial
weights and the data order, and that resuming continues exactly. The real signals are tested on the command line
(``tests/cli/test_interrupt.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file

from fmrikit.engine.settings import SupervisedSettings
from fmrikit.errors import InputError


class Killed(BaseException):
    """Stands for a kill: no ``except Exception`` in the library stops it."""


@dataclass
class Trainable:
    """How to train a model into ``out`` (``resume``/``seed`` passed on), where its optimiser steps, and its weights
    files."""

    train: Callable[..., object]
    steps_in: str
    weights: tuple[str, ...]


@pytest.fixture(scope="module")
def models(project, autoencoder, tmp_path_factory) -> dict[str, Trainable]:
    from fmrikit.methods.encoder.runs import pretrain_encoder
    from fmrikit.methods.encoder.settings import EncoderSettings, EncoderSize
    from fmrikit.methods.latent.autoencoder import pretrain_autoencoder
    from fmrikit.methods.latent.settings import AutoencoderSize, MapperOptions
    from fmrikit.methods.latent.train import pretrain_latent_mapper
    from fmrikit.methods.mindeye.adapt import adapt_subject
    from fmrikit.methods.mindeye.pretrain import pretrain_decoder
    from fmrikit.methods.mindeye.prior import pretrain_prior
    from fmrikit.methods.mindeye.settings import ModelSize, PriorSize, TrainSettings
    from fmrikit.methods.neuropictor.flatmap_ae import pretrain_flatmap_ae
    from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAESize
    from fmrikit.methods.neuropictor.train import pretrain_neuropictor
    from tests.tiny_diffusion import save_tiny_sd21

    base = tmp_path_factory.mktemp("resume")
    size = ModelSize(hidden=16, n_blocks=1, proj_hidden=16)
    pretrain_decoder([1, 2], root=project, size=size, settings=TrainSettings(epochs=1, batch_size=8), device="cpu",
                     out=base / "decoder")
    subject = adapt_subject(2, root=project, backbone=base / "decoder", settings=TrainSettings(epochs=1, batch_size=8),
                            desc="resume", device="cpu").model
    fae = FlatmapAESize(image_size=64, patch_size=16, width=32, depth=1, heads=2)
    pretrain_flatmap_ae([1, 2], root=project, size=fae, device="cpu", out=base / "flatmap-ae",
                        settings=SupervisedSettings(epochs=1, batch_size=32, patience=None))
    save_tiny_sd21(base / "sd21")
    two = dict(epochs=2, patience=None)
    mapper = MapperOptions(channels=4, hidden=32, latent_dim=16, gcn_width=16, gcn_hidden=32)
    supervised = "fmrikit.engine.supervised.optimizer_step"

    def mapper_model(arch):
        return Trainable(lambda out, resume=False, seed=0: pretrain_latent_mapper(
            1, mapper=arch, root=project, autoencoder=autoencoder, options=mapper, device="cpu", out=out,
            overrides={**two, "batch_size": 32, "lr": 1e-3, "seed": seed}, resume=resume),
            supervised, ("image/model.safetensors",))

    return {
        "decoder": Trainable(lambda out, resume=False, seed=0: pretrain_decoder(
            [1, 2], root=project, size=size, settings=TrainSettings(epochs=2, batch_size=8, seed=seed), device="cpu",
            out=out, resume=resume), "fmrikit.methods.mindeye.loop.optimizer_step", ("model.safetensors",)),
        "encoder": Trainable(lambda out, resume=False, seed=0: pretrain_encoder(
            [1], root=project, size=EncoderSize(channels=4, embed_dim=4), device="cpu", out=out, resume=resume,
            settings=EncoderSettings(epochs=2, batch_images=8, voxels_per_image=20, seed=seed)),
            "fmrikit.methods.encoder.fit.optimizer_step", ("model.safetensors",)),
        "autoencoder": Trainable(lambda out, resume=False, seed=0: pretrain_autoencoder(
            [1, 2], root=project, size=AutoencoderSize(image_size=32, channels=(16, 16)), device="cpu", out=out,
            settings=SupervisedSettings(**two, batch_size=32, seed=seed), resume=resume),
            supervised, ("diffusion_pytorch_model.safetensors",)),
        "latent-mapper cnn": mapper_model("cnn"),
        "latent-mapper vae": mapper_model("vae"),
        "latent-mapper gcn": mapper_model("gcn"),
        "prior": Trainable(lambda out, resume=False, seed=0: pretrain_prior(
            2, root=project, decoder=subject, size=PriorSize(layers=1, heads=2, head_dim=8), device="cpu", out=out,
            settings=SupervisedSettings(**two, batch_size=16, seed=seed), resume=resume),
            supervised, ("diffusion_pytorch_model.safetensors",)),
        "flatmap-ae": Trainable(lambda out, resume=False, seed=0: pretrain_flatmap_ae(
            [1, 2], root=project, size=fae, device="cpu", out=out, resume=resume,
            settings=SupervisedSettings(**two, batch_size=32, seed=seed)), supervised, ("model.safetensors",)),
        "neuropictor": Trainable(lambda out, resume=False, seed=0: pretrain_neuropictor(
            [2], root=project, pipeline=str(base / "sd21"), flatmap_ae=base / "flatmap-ae", device="cpu", out=out,
            settings=SupervisedSettings(**two, batch_size=8, seed=seed), resume=resume),  # repeats averaged: few images
            supervised, ("model.safetensors", "controlnet/diffusion_pytorch_model.safetensors")),
    }


def _weights(folder: Path, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {f"{name}:{k}": v for name in names for k, v in load_file(folder / name).items()}


def _steps(monkeypatch, where: str, kill_at: int | None = None) -> list[int]:
    """Count the optimiser steps at ``where``; raise :class:`Killed` before step ``kill_at`` (1-based)."""
    import importlib

    module, name = where.rsplit(".", 1)
    module = importlib.import_module(module)
    real, calls = getattr(module, name), []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == kill_at:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, step)
    return calls


@pytest.mark.parametrize("name", ["decoder", "encoder", "autoencoder", "latent-mapper cnn", "latent-mapper vae",
                                  "latent-mapper gcn", "prior", "flatmap-ae", "neuropictor"])
def test_same_seed_same_weights_and_a_killed_run_resumes_exactly(models, name, tmp_path, monkeypatch):
    model = models[name]
    calls = _steps(monkeypatch, model.steps_in)
    model.train(tmp_path / "straight")
    per_epoch = len(calls) // 2
    assert per_epoch >= 2, "the test needs two steps per epoch"
    monkeypatch.undo()

    _steps(monkeypatch, model.steps_in, kill_at=per_epoch + 2)  # the second step of the second epoch
    with pytest.raises(Killed):
        model.train(tmp_path / "cut")
    monkeypatch.undo()
    checkpoint = tmp_path / ".cut.checkpoint"
    assert not (tmp_path / "cut").exists() and checkpoint.is_dir()
    with pytest.raises(InputError, match="other settings"):
        model.train(tmp_path / "cut", resume=True, seed=1)
    model.train(tmp_path / "cut", resume=True)

    straight, resumed = _weights(tmp_path / "straight", model.weights), _weights(tmp_path / "cut", model.weights)
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight), name
    assert not checkpoint.exists()
