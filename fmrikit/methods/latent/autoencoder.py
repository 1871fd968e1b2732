"""The embedded image autoencoder (``pretrain --model autoencoder``): a small diffusers AutoencoderKL.

Machines without Stable Diffusion weights still reconstruct: the latent mappers predict this
autoencoder's latents and its decoder turns them into images. It is trained on the subjects'
training stimuli (never the shared test images) with ``MSE(x, decode(z)) + kl_weight * KL``, and
saved in diffusers' own folder format, so :func:`fmrikit.diffusion.load_autoencoder` reads
it exactly like a Stable Diffusion VAE. ``scaling_factor`` is set to 1 / sd of the training latents
(Stable Diffusion's 0.18215 was found the same way).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fmrikit.errors import InputError, MissingInputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import file_checksum, new_run_id, write_sidecar
from fmrikit.project import default_autoencoder_path, preproc_betas_path, subject_label
from fmrikit.engine.runs import LOG_NAME, SIDECAR_NAME, finish_run, one_run, start_run, write_log
from fmrikit.engine.supervised import fit_supervised
from fmrikit.engine.settings import SupervisedSettings
from fmrikit.methods.latent.settings import AUTOENCODER_SETTINGS, AutoencoderSize

log = logging.getLogger("fmrikit")


def build_autoencoder(size: AutoencoderSize):
    """A fresh diffusers ``AutoencoderKL`` of this size (seed torch first for reproducibility)."""
    from diffusers import AutoencoderKL

    size.check()
    n = len(size.channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(size.channels),
                         layers_per_block=size.layers_per_block, latent_channels=size.latent_channels,
                         norm_num_groups=16, sample_size=size.image_size)


def training_stimuli(subjects: list[int], root=None) -> tuple[list, np.ndarray]:
    """The subjects' preprocessed datasets (:class:`~fmrikit.data.dataset.DatasetInfo`, one stimulus source) and
    their non-shared stimulus ids.

    Raises
    ------
    MissingInputError
        A subject has no preprocessed dataset.
    InputError
        The subjects' datasets read different stimulus sources.
    """
    from fmrikit.data.dataset import read_info

    infos = []
    for s in subjects:
        path = preproc_betas_path(root, s)
        if not path.is_file():
            raise MissingInputError("no preprocessed dataset", path=path,
                                    expected=f"run fmrikit preprocess --subject {s} first")
        infos.append(read_info(path))
    sources = {(i.stimuli_path, i.stimuli_dataset) for i in infos}
    if len(sources) > 1:
        raise InputError("the subjects' stimuli come from different sources", expected="one stimulus set",
                         found=", ".join(sorted(s[0] for s in sources)))
    shared = np.unique(np.concatenate([i.stim_id[i.shared] for i in infos]))
    ids = np.setdiff1d(np.unique(np.concatenate([i.stim_id for i in infos])), shared)
    return infos, ids


def load_images(info, stim_ids: np.ndarray, image_size: int, block: int = 256) -> np.ndarray:
    """Stimuli resized to ``image_size`` (bicubic), uint8 (n, image_size, image_size, 3), read a block at a time."""
    from PIL import Image

    from fmrikit.data.dataset import read_stimuli

    out = np.empty((len(stim_ids), image_size, image_size, 3), np.uint8)
    for start in range(0, len(stim_ids), block):
        for k, im in enumerate(read_stimuli(info, stim_ids[start:start + block])):
            if im.shape[:2] != (image_size, image_size):
                im = np.asarray(Image.fromarray(im).resize((image_size, image_size), Image.BICUBIC))
            out[start + k] = im
    return out


def to_unit_range(images: np.ndarray, device) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float (n, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1


@one_run
def pretrain_autoencoder(subjects: list[int], *, root: str | os.PathLike | None = None,
                         out: str | os.PathLike | None = None, preset: str = "small",
                         size: AutoencoderSize | None = None,
                         settings: SupervisedSettings | None = None, kl_weight: float = 1e-6,
                         device: str = "auto", resume: bool = False, overwrite: bool = False) -> Path:
    """Train the embedded autoencoder on the subjects' training stimuli.

    Parameters
    ----------
    subjects : list of int
        Subjects whose preprocessed datasets name the stimuli (their shared images are left out).
    out : path-like, optional
        Model folder (default ``<root>/models/autoencoder``): diffusers' ``config.json`` +
        ``diffusion_pytorch_model.safetensors``, ``training_log.tsv`` and ``run.json``.
    preset : {"small", "paper"}
        Where ``size`` defaults from (:data:`~fmrikit.methods.latent.settings.AUTOENCODER_PRESETS`); recorded
        in ``run.json``.
    size : AutoencoderSize, optional
    settings : SupervisedSettings, optional
        Default 30 epochs of batch 32 at lr 1e-3; a random 5% of the images validate (the best
        epoch is kept).
    kl_weight : float
        Weight of the KL term (per latent element) against the pixel MSE.

    Returns
    -------
    Path
        The model folder.
    """
    from fmrikit.devices import resolve_device

    size = size or AutoencoderSize.from_preset(preset)
    size.check()
    settings = settings or AUTOENCODER_SETTINGS
    settings.check()
    out = Path(out) if out is not None else default_autoencoder_path(root)
    checkpoint = start_run([out], kind="pretrain autoencoder", overwrite=overwrite, resume=resume,
                           inputs=[preproc_betas_path(root, s) for s in subjects], root=root,
                           settings={"subjects": subjects, "size": size, "training": settings, "kl_weight": kl_weight})
    inputs = [file_checksum(preproc_betas_path(root, s)) for s in subjects if preproc_betas_path(root, s).is_file()]
    infos, ids = training_stimuli(subjects, root)
    info = infos[0]
    if len(ids) < 20:
        raise InputError("too few training images for the autoencoder", path=info.path, expected=">= 20",
                         found=str(len(ids)))
    dev = resolve_device(device)
    images = load_images(info, ids, size.image_size)
    rng = np.random.default_rng(settings.seed)
    val = np.sort(rng.choice(len(ids), max(4, len(ids) // 20), replace=False))
    train = np.setdiff1d(np.arange(len(ids)), val)
    torch.manual_seed(settings.seed)
    vae = build_autoencoder(size).to(dev)
    n_latent = size.latent_channels * (size.image_size // 2 ** (len(size.channels) - 1)) ** 2

    def loss_of(x: torch.Tensor, sample: bool) -> tuple[torch.Tensor, dict]:
        posterior = vae.encode(x).latent_dist
        z = posterior.sample() if sample else posterior.mean
        recon = torch.nn.functional.mse_loss(vae.decode(z).sample.float(), x)
        kl = posterior.kl().mean() / n_latent
        return recon + kl_weight * kl, {"mse": recon.item(), "kl": kl.item()}

    def batch_loss(rows: np.ndarray, net):  # one process: net is vae, whose encode / decode the loss calls
        return loss_of(to_unit_range(images[train[rows]], dev), True)

    def val_loss() -> float:
        return sum(loss_of(to_unit_range(images[val[s:s + 64]], dev), False)[1]["mse"] * len(val[s:s + 64])
                   for s in range(0, len(val), 64)) / len(val)

    result = fit_supervised(vae, batch_loss, len(train), settings, device=dev, val_loss=val_loss,
                            checkpoint=checkpoint, resume=resume, description="autoencoder")
    with torch.no_grad():
        z = torch.cat([vae.encode(to_unit_range(images[train[s:s + 64]], dev)).latent_dist.mean.float().cpu()
                       for s in range(0, len(train), 64)])
    vae.register_to_config(scaling_factor=float(1 / z.std()))
    with staged_dir(out, overwrite=overwrite, kind="pretrain autoencoder") as stage:
        vae.to("cpu").save_pretrained(stage, safe_serialization=True)
        write_log(stage / LOG_NAME, result.history, title="embedded autoencoder")
        write_sidecar(stage / SIDECAR_NAME, command="pretrain --model autoencoder", seed=settings.seed,
                      run_id=new_run_id(), inputs=inputs,
                      parameters={"subjects": subjects, "preset": preset, "size": asdict(size),
                                  "training": asdict(settings),
                                  "kl_weight": kl_weight, "device": str(dev)},
                      outputs=["config.json", "diffusion_pytorch_model.safetensors", LOG_NAME],
                      extra={"n_train_images": int(len(train)), "n_val_images": int(len(val)),
                             "best_epoch": result.best_epoch, "val_mse": min(r["val_loss"] for r in result.history),
                             "scaling_factor": float(1 / z.std()), "stimuli": info.stimuli_path,
                             "conventions": {subject_label(i.subject): i.conventions for i in infos}},
                      root=root, folder=out)
    finish_run(checkpoint)
    return out
