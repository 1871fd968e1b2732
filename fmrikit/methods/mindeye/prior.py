"""The diffusion prior of the unCLIP route (``pretrain --model prior``): diffusers' ``PriorTransformer``.

As in MindEye2, the decoder's regression of the image embedding is blurry (it is the conditional
mean); a diffusion prior turns it into a sample from the image-embedding distribution. The prior
denoises a standardised image embedding x_t conditioned on the subject decoder's predicted embedding
(``proj_embedding``), predicting x_0 (``prediction_type="sample"``, squared-cosine schedule of 1000
steps), trained with the MSE to the true embedding; the condition is dropped for 10% of the
samples so that classifier-free guidance works. Sampling is DDIM with eta 0: the only randomness is
the starting noise, drawn per sample from its own seed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from fmrikit.errors import DataValueError, MissingInputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import PROJECT_KEY, new_run_id, portable_path, project_pointer, write_json, write_sidecar
from fmrikit.engine.serialization import weights_checksum
from fmrikit.project import default_subject_decoder, prior_path
from fmrikit.engine.runs import LOG_NAME, SIDECAR_NAME, finish_run, one_run, start_run, write_log
from fmrikit.engine.supervised import fit_supervised
from fmrikit.engine.settings import SupervisedSettings
from fmrikit.methods.mindeye.settings import PRIOR_SETTINGS, PriorSize

log = logging.getLogger("fmrikit")

PRIOR_RECORD = "prior.json"
TRAIN_TIMESTEPS = 1000
DROP_CONDITION = 0.1


def noise_scheduler(kind: str = "ddpm"):
    """The prior's noise schedule: DDPM for training, DDIM for sampling (x_0 prediction, squared cosine)."""
    from diffusers import DDIMScheduler, DDPMScheduler

    cls = DDPMScheduler if kind == "ddpm" else DDIMScheduler
    return cls(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2", prediction_type="sample",
               clip_sample=False)


def build_prior(embed_dim: int, size: PriorSize):
    """A fresh ``PriorTransformer`` over ``embed_dim``-wide embeddings, conditioned by ``proj_embedding`` only."""
    from diffusers import PriorTransformer

    return PriorTransformer(num_attention_heads=size.heads, attention_head_dim=size.head_dim, num_layers=size.layers,
                            embedding_dim=embed_dim, num_embeddings=0, additional_embeddings=4,
                            encoder_hid_proj_type=None)


def prior_loss(prior, scheduler, x0: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Denoising MSE of a batch: x0 and cond (B, E) standardised; torch's global RNG draws t, noise, drops."""
    t = torch.randint(0, TRAIN_TIMESTEPS, (len(x0),), device=x0.device)
    noisy = scheduler.add_noise(x0, torch.randn_like(x0), t)
    keep = (torch.rand(len(x0), 1, device=x0.device) >= DROP_CONDITION).to(cond.dtype)
    pred = prior(noisy, t, proj_embedding=cond * keep).predicted_image_embedding
    return torch.nn.functional.mse_loss(pred.float(), x0.float())


@torch.no_grad()
def sample_prior(prior, cond: torch.Tensor, *, seeds: Sequence[int], steps: int = 50,
                 guidance_scale: float = 1.0) -> torch.Tensor:
    """Image embeddings (B, E), standardised, sampled given the decoder's standardised predictions ``cond`` (B, E).

    DDIM with eta 0 from seeded noise (one generator per sample); with ``guidance_scale`` > 1 the
    prediction is pushed away from the unconditional one.
    """
    if len(seeds) != len(cond):
        raise DataValueError("one seed per sample is needed", expected=f"{len(cond)} seeds", found=str(len(seeds)))
    device = next(prior.parameters()).device
    cond = cond.to(device, torch.float32)
    x = torch.stack([torch.randn(cond.shape[1], generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    x = x.to(device)
    scheduler = noise_scheduler("ddim")
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        tt = t.repeat(len(x)).to(device)
        pred = prior(x, tt, proj_embedding=cond).predicted_image_embedding
        if guidance_scale != 1:
            uncond = prior(x, tt, proj_embedding=torch.zeros_like(cond)).predicted_image_embedding
            pred = uncond + guidance_scale * (pred - uncond)
        x = scheduler.step(pred, t, x, eta=0.0).prev_sample
    return x.float()


def load_prior(folder: str | os.PathLike, decoder: str | os.PathLike, device="cpu"):
    """A trained prior, checked to belong to ``decoder`` (its weights' SHA-256).

    Raises
    ------
    MissingInputError
        Not a prior folder.
    DataValueError
        The prior was trained on another decoder's predictions.
    """
    from diffusers import PriorTransformer

    from fmrikit.diffusion import quiet_loading

    folder = Path(folder)
    if not (folder / PRIOR_RECORD).is_file():
        raise MissingInputError("not a diffusion prior folder", path=folder,
                                expected=f"{PRIOR_RECORD} from fmrikit pretrain --model prior")
    record = json.loads((folder / PRIOR_RECORD).read_text())
    if record["decoder_sha256"] != weights_checksum(decoder):
        raise DataValueError("the prior was trained on another decoder", path=folder,
                             expected=f"a prior of {decoder}", found=f"a prior of {record['decoder']}")
    with quiet_loading():
        prior = PriorTransformer.from_pretrained(folder, local_files_only=True)
    return prior.to(device).eval(), record


@one_run
def pretrain_prior(subject: int, *, root: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None,
                   size: PriorSize | None = None, settings: SupervisedSettings | None = None, device: str = "auto",
                   out: str | os.PathLike | None = None, resume: bool = False, overwrite: bool = False) -> Path:
    """Train the diffusion prior on a subject decoder's predictions of its training trials.

    Parameters
    ----------
    subject : int
    decoder : path-like, optional
        Subject decoder folder (default: the subject's ``troi``, else ``adapt`` decoder).
    size : PriorSize, optional
    settings : SupervisedSettings, optional
        Default 100 epochs of batch 64 at lr 3e-4; early stopping (patience 10) on the denoising loss
        of a held-out tenth of the training images at fixed noise.
    out : path-like, optional
        Default ``<root>/sub-NN/sub-NN_desc-prior_prior`` (diffusers ``config.json`` +
        ``diffusion_pytorch_model.safetensors``, ``prior.json``, ``training_log.tsv``).

    Returns
    -------
    Path
    """
    from fmrikit.data.dataset import read_info, voxel_columns
    from fmrikit.devices import resolve_device
    from fmrikit.methods.mindeye.subject import load_subject_model, subject_dataset
    from fmrikit.methods.mindeye.targets import image_embeddings
    from fmrikit.data.splits import load_subject_data
    from fmrikit.engine.distributed import Distributed

    size = size or PriorSize()
    settings = settings or PRIOR_SETTINGS
    settings.check()
    size.check()
    decoder = Path(decoder) if decoder is not None else default_subject_decoder(root, subject)
    out = Path(out) if out is not None else prior_path(root, subject)
    checkpoint = start_run([out], kind="pretrain prior", overwrite=overwrite, resume=resume, inputs=[decoder],
                           root=root, settings={"subject": subject, "decoder": decoder, "size": size,
                                                "training": settings})
    dev = resolve_device(device)
    sub = load_subject_model(decoder)
    dataset = subject_dataset(sub, decoder)
    if dataset is None:
        raise MissingInputError("the decoder records no dataset", path=decoder / "config.json",
                                expected="a subject decoder of fmrikit roi-train or adapt-subject")
    data = load_subject_data(dataset, sub.key, columns=voxel_columns(read_info(dataset), sub.ijk))
    train_t, _ = image_embeddings([data], {"name": sub.record["features"]["name"],
                                           "image_model": sub.record["features"].get("image_model")},
                                  Distributed(0, 1, dev), root=root)[data.key]
    model = sub.model.to(dev).eval()
    with torch.no_grad():
        cond = model(data.train_x.to(dev), sub.key)[1].float()
        x0 = model.standardize(train_t.to(dev))
    images = np.unique(data.train_stim)
    held = np.isin(data.train_stim, np.random.default_rng(settings.seed).choice(images, max(1, len(images) // 10),
                                                                                  replace=False))
    tr, va = np.nonzero(~held)[0], torch.from_numpy(np.nonzero(held)[0]).to(dev)
    torch.manual_seed(settings.seed)
    prior = build_prior(x0.shape[1], size).to(dev)
    scheduler = noise_scheduler()
    gen = torch.Generator().manual_seed(settings.seed + 1)
    val_t = torch.randint(0, TRAIN_TIMESTEPS, (len(va),), generator=gen).to(dev)
    val_noise = torch.randn(len(va), x0.shape[1], generator=gen).to(dev)

    def batch_loss(rows: np.ndarray, net):
        idx = torch.from_numpy(tr[rows]).to(dev)
        loss = prior_loss(net, scheduler, x0[idx], cond[idx])
        return loss, {}

    def val_loss() -> float:
        noisy = scheduler.add_noise(x0[va], val_noise, val_t)
        pred = prior(noisy, val_t, proj_embedding=cond[va]).predicted_image_embedding
        return float(torch.nn.functional.mse_loss(pred.float(), x0[va]))

    result = fit_supervised(prior, batch_loss, len(tr), settings, device=dev, val_loss=val_loss,
                            checkpoint=checkpoint, resume=resume, description="prior")
    with staged_dir(out, overwrite=overwrite, kind="pretrain prior") as stage:
        prior.to("cpu").save_pretrained(stage, safe_serialization=True)
        write_log(stage / LOG_NAME, result.history, title=f"diffusion prior of {sub.key}'s decoder")
        write_json(stage / PRIOR_RECORD, {"decoder": portable_path(decoder, root),
                                          "decoder_sha256": weights_checksum(decoder),
                                          PROJECT_KEY: project_pointer(out, root),
                                          "subject": subject, "size": asdict(size), "schedule": "squaredcos_cap_v2",
                                          "train_timesteps": TRAIN_TIMESTEPS, "drop_condition": DROP_CONDITION})
        write_sidecar(stage / SIDECAR_NAME, command="pretrain --model prior", seed=settings.seed, run_id=new_run_id(),
                      inputs=[data.checksum, {"decoder": str(decoder.resolve()), "sha256": weights_checksum(decoder)}],
                      parameters={"subject": subject, "size": asdict(size), "training": asdict(settings),
                                  "device": str(dev)},
                      outputs=["config.json", "diffusion_pytorch_model.safetensors", PRIOR_RECORD, LOG_NAME],
                      extra={"best_epoch": result.best_epoch, "n_train_trials": int(len(tr)),
                             "n_val_trials": int(len(va)), "conventions": data.info.conventions},
                      root=root, folder=out)
    finish_run(checkpoint)
    return out
