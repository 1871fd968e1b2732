"""NeuroPictor training: cross-subject pretraining, then single-subject refining (Huo et al. 2024, Sec. 3.4).

``pretrain --model neuropictor --subjects ...`` starts the conditioner's flatmap encoder from the
calibrated flatmap autoencoder (``pretrain --model flatmap-ae``) and the ControlNet from a copy of
the Stable Diffusion U-Net's encoder (diffusers' ``ControlNetModel.from_unet``, zero convolutions
included); ``adapt-subject --model neuropictor --subject N`` continues every trainable weight on one
subject. Both optimise, on every subject's non-shared trials,

    L = L_dif + semantic_weight * L_sem

with L_dif the denoising MSE of the frozen U-Net plus the ControlNet's residuals (noise, or
velocity for v-prediction schedulers) and L_sem the per-token squared L2 error between F~txt and the
CLIP text embedding of one of the image's captions (77 tokens, paper eq. 3), drawn at random each
step. A fraction ``uncond_prob`` of the semantic conditions is replaced by the empty prompt's
embedding so classifier-free guidance works at inference. The U-Net, VAE and text encoder stay
frozen; image latents are encoded once. Flatmaps stream from each subject's cache, each training sample an
image's flatmap averaged over its trials as the paper trains (``NeuroPictorOptions.average_repeats``, the
default) or a single trial; the test images are always averaged.

Under ``torchrun --nproc_per_node=N`` the trainable modules (conditioner and ControlNet, one
forward: :meth:`NeuroPictorModules.forward`) train with DistributedDataParallel, ``batch_size``
rows per process and step; rank 0 builds missing flatmap caches before the other ranks read them,
every rank computes the scores, and rank 0 writes the model folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fmrikit.errors import DataValueError, InputError, MissingInputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import (PROJECT_KEY, file_checksum, new_run_id, portable_path, portable_source,
                                   project_pointer, resolve_source, write_sidecar)
from fmrikit.diffusion import control_image
from fmrikit.project import (adapted_neuropictor_path, check_desc, default_neuropictor_path, preproc_betas_path,
                             subject_label)
from fmrikit.engine.runs import LOG_NAME, SIDECAR_NAME, finish_run, one_run, start_run, write_log
from fmrikit.engine.distributed import Distributed, distributed
from fmrikit.engine.supervised import fit_supervised
from fmrikit.engine.settings import SupervisedSettings
from fmrikit.methods.neuropictor.settings import NeuroPictorOptions, neuropictor_settings

log = logging.getLogger("fmrikit")

CONTROLNET_DIR = "controlnet"


@dataclass
class NeuroPictorResult:
    """What a NeuroPictor run wrote and scored."""

    model: Path
    scores: dict[str, Any]
    history: list[dict] = field(default_factory=list)


class NeuroPictorModules(nn.Module):
    """The trainable parts as one module: the conditioner and the ControlNet.

    Its forward runs both, so a DistributedDataParallel wrapper covers every trainable parameter;
    the frozen U-Net is called on its outputs.
    """

    def __init__(self, conditioner: nn.Module, controlnet: nn.Module):
        super().__init__()
        self.conditioner = conditioner
        self.controlnet = controlnet

    def forward(self, flatmaps: torch.Tensor, zt: torch.Tensor, t: torch.Tensor, vae_factor: int,
                uncond_mask: torch.Tensor | None = None, uncond: torch.Tensor | None = None):
        """The conditions of a batch of flatmaps and the ControlNet's residuals at noisy latents.

        Parameters
        ----------
        flatmaps : Tensor, shape (B, S, S)
        zt : Tensor, shape (B, C, h, w)
            Noisy latents at time steps ``t`` (B,).
        t : Tensor of int, shape (B,)
        vae_factor : int
            Pixel / latent size ratio (the control map is upsampled by it).
        uncond_mask : Tensor of bool, shape (B,), optional
            Rows whose semantic condition is replaced by ``uncond`` (1, L_T, d_T), the empty
            prompt's embedding.

        Returns
        -------
        semantic : Tensor, shape (B, L_T, d_T)
            The U-Net's ``encoder_hidden_states`` (after the replacement).
        text : Tensor, shape (B, L_T, d_T)
            F~txt, the target of the semantic loss.
        down : tuple of Tensor
            The ControlNet's residuals of the U-Net's down blocks.
        mid : Tensor
            Its residual of the middle block.
        """
        semantic, text, control = self.conditioner(flatmaps)
        if uncond_mask is not None:
            semantic = torch.where(uncond_mask[:, None, None], uncond.to(semantic.dtype), semantic)
        down, mid = self.controlnet(zt, t, encoder_hidden_states=semantic,
                                    controlnet_cond=control_image(control, vae_factor), return_dict=False)
        return semantic, text, down, mid


def load_neuropictor(folder: str | os.PathLike, device: str | torch.device = "cpu"):
    """A saved NeuroPictor model: ``(conditioner, controlnet, record)``, in eval mode.

    Raises
    ------
    MissingInputError
        Not a NeuroPictor folder.
    """
    from diffusers import ControlNetModel

    from fmrikit.methods.neuropictor.model import NeuroPictorConditioner
    from fmrikit.engine.serialization import read_config
    from fmrikit.diffusion import quiet_loading

    folder = Path(folder)
    if not (folder / CONTROLNET_DIR / "config.json").is_file():
        raise MissingInputError("not a NeuroPictor model folder", path=folder,
                                expected=f"config.json, model.safetensors and {CONTROLNET_DIR}/")
    record = read_config(folder)
    conditioner = NeuroPictorConditioner.from_pretrained(folder, device=device).eval()
    with quiet_loading():
        controlnet = ControlNetModel.from_pretrained(folder / CONTROLNET_DIR, local_files_only=True)
    return conditioner, controlnet.to(device).eval(), record


@one_run
def pretrain_neuropictor(subjects: list[int], *, root: str | os.PathLike | None = None, roi: str = "nsdgeneral",
                         pipeline: str | None = None, flatmap_ae: str | os.PathLike | None = None,
                         captions: str | os.PathLike | None = None, sessions: list[int] | None = None,
                         preset: str = "small", settings: SupervisedSettings | None = None,
                         options: NeuroPictorOptions | None = None, device: str = "auto",
                         out: str | os.PathLike | None = None, resume: bool = False,
                         overwrite: bool = False) -> NeuroPictorResult:
    """Cross-subject NeuroPictor pretraining.

    Parameters
    ----------
    subjects : list of int
        Subjects whose preprocessed datasets (``roi``) train the model; their flatmaps are cached
        at the flatmap autoencoder's size.
    pipeline : str
        Stable Diffusion (2.1-shaped) folder or cached id: frozen U-Net, VAE and CLIP text encoder.
    flatmap_ae : path-like, optional
        Flatmap autoencoder folder (default ``<root>/models/flatmap-ae``) whose encoder starts the
        conditioner.
    captions : path-like, optional
        Folder of COCO ``captions_*.json`` (default: in the NSD tree).
    sessions : list of int, optional
        Sessions whose non-shared trials train (default all).
    preset : {"small", "paper"}
        Where ``settings`` defaults from (:data:`~fmrikit.methods.neuropictor.settings.NEUROPICTOR_PRESETS`);
        recorded in ``run.json``.
    settings : SupervisedSettings, optional
        Default ``preset``'s; a random 5% of the training images validate.
    options : NeuroPictorOptions, optional
    out : path-like, optional
        Default :func:`default_neuropictor_path`.

    Returns
    -------
    NeuroPictorResult
    """
    from fmrikit.methods.neuropictor.flatmap_ae_model import encoder_state
    from fmrikit.engine.serialization import weights_checksum
    from fmrikit.methods.neuropictor.model import build_neuropictor
    from fmrikit.project import default_flatmap_ae_path

    if pipeline is None:
        raise InputError("NeuroPictor needs a Stable Diffusion pipeline", expected="--pipeline PATH_OR_ID",
                         found="none")
    options, settings = options or NeuroPictorOptions(), settings or neuropictor_settings(preset, "pretrain")
    options.check()
    settings.check()
    ae_folder = Path(flatmap_ae) if flatmap_ae is not None else default_flatmap_ae_path(root)
    out = Path(out) if out is not None else default_neuropictor_path(root)
    checkpoint = start_run([out], kind="pretrain neuropictor", overwrite=overwrite, resume=resume,
                           inputs=[*(preproc_betas_path(root, s, roi) for s in subjects), ae_folder, pipeline,
                                   captions],
                           root=root, settings={"subjects": subjects, "roi": roi, "pipeline": pipeline,
                                                "flatmap_ae": ae_folder, "sessions": sessions, "training": settings,
                                                "options": options})
    if not (ae_folder / "config.json").is_file():
        raise MissingInputError("no flatmap autoencoder", path=ae_folder,
                                expected="run fmrikit pretrain --model flatmap-ae first (or pass --flatmap-ae)")
    encoder_config, encoder_weights = encoder_state(ae_folder)

    def build(sd) -> NeuroPictorModules:
        conditioner, controlnet = build_neuropictor(encoder_config, sd.unet, text_tokens=sd.text_tokens,
                                                    text_width=sd.text_width,
                                                    vae_downsamplings=len(sd.vae.config.block_out_channels) - 1)
        conditioner.encoder.load_state_dict(encoder_weights)
        return NeuroPictorModules(conditioner, controlnet)

    base = {"flatmap_ae": portable_path(ae_folder, root), "flatmap_ae_sha256": weights_checksum(ae_folder)}
    return _run(subjects, build, "pretrain --model neuropictor", root=root, roi=roi, pipeline=pipeline,
                image_size=int(encoder_config["image_size"]), captions=captions, sessions=sessions,
                preset=preset, settings=settings, options=options, device=device, out=out, base=base,
                checkpoint=checkpoint, resume=resume, overwrite=overwrite, kind="pretrain neuropictor")


@one_run
def adapt_neuropictor(subject: int, *, root: str | os.PathLike | None = None, base: str | os.PathLike | None = None,
                      captions: str | os.PathLike | None = None, sessions: list[int] | None = None,
                      preset: str = "small", settings: SupervisedSettings | None = None,
                      options: NeuroPictorOptions | None = None, device: str = "auto", desc: str = "adapt",
                      out: str | os.PathLike | None = None, resume: bool = False,
                      overwrite: bool = False) -> NeuroPictorResult:
    """Single-subject refining of a pretrained NeuroPictor model (every trainable weight continues).

    Parameters
    ----------
    subject : int
    base : path-like, optional
        The pretrained model (default :func:`default_neuropictor_path`); its pipeline, ROI and
        flatmap size are used, and its weights' SHA-256 recorded.
    preset : {"small", "paper"}
        Where ``settings`` defaults from (the preset's refining schedule); recorded in ``run.json``.
    options : NeuroPictorOptions, optional
        Loss weights, freezing and repeat averaging (the base's ControlNet width is kept).
    out : path-like, optional
        Default :func:`adapted_neuropictor_path`.

    Other parameters are those of :func:`pretrain_neuropictor`.
    """
    from fmrikit.engine.serialization import weights_checksum

    base = Path(base) if base is not None else default_neuropictor_path(root)
    options, settings = options or NeuroPictorOptions(), settings or neuropictor_settings(preset, "adapt")
    options.check()
    settings.check()
    out = Path(out) if out is not None else adapted_neuropictor_path(root, subject, check_desc(desc))
    checkpoint = start_run([out], kind="adapt-subject neuropictor", overwrite=overwrite, resume=resume,
                           inputs=[base, captions], root=root,
                           settings={"subject": subject, "base": base, "sessions": sessions, "training": settings,
                                     "options": options})
    conditioner, controlnet, record = load_neuropictor(base)

    def build(sd) -> NeuroPictorModules:
        expected = (sd.text_tokens, sd.text_width, sd.unet.config.in_channels, sd.unet.config.sample_size)
        found = tuple(conditioner.config[k] for k in ("text_tokens", "text_width", "latent_channels", "latent_size"))
        if found != expected:
            raise DataValueError("the base model does not fit its pipeline", path=base, expected=str(expected),
                                 found=str(found))
        return NeuroPictorModules(conditioner, controlnet)

    return _run([subject], build, "adapt-subject --model neuropictor", root=root, roi=record["roi"],
                pipeline=resolve_source(record["pipeline"]["source"], base, record),
                image_size=int(conditioner.image_size), captions=captions, sessions=sessions, preset=preset,
                settings=settings, options=options, device=device, out=out,
                base={"base": portable_path(base, root), "base_sha256": weights_checksum(base)},
                expected_unet=record["pipeline"]["unet_sha256"], checkpoint=checkpoint, resume=resume,
                overwrite=overwrite, kind="adapt-subject neuropictor")


@dataclass
class _StableDiffusion:
    """The frozen parts of the pipeline a NeuroPictor model trains against."""

    folder: Path
    record: dict
    vae: Any
    unet: Any
    tokenizer: Any
    text_encoder: Any
    scheduler: Any

    @property
    def text_tokens(self) -> int:
        return int(self.tokenizer.model_max_length)

    @property
    def text_width(self) -> int:
        return int(self.text_encoder.config.hidden_size)

    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        return int(self.unet.config.sample_size * self.vae_factor)

    def encode_text(self, texts: list[str], device) -> torch.Tensor:
        """CLIP text-condition embeddings (n, L_T, d_T) of some texts, float32."""
        from fmrikit.diffusion import text_targets

        return torch.from_numpy(text_targets([[t] for t in texts], self.tokenizer, self.text_encoder,
                                             self.text_tokens, device)).to(device)


def load_stable_diffusion(pipeline: str, device) -> _StableDiffusion:
    """The frozen U-Net, VAE, tokenizer, text encoder and a DDPM noise scheduler of a pipeline, offline."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from fmrikit.errors import CorruptFileError
    from fmrikit.diffusion import load_autoencoder, quiet_loading, resolve_pipeline
    from fmrikit.diffusion import text_model
    from fmrikit.diffusion import component_checksum

    folder, record = resolve_pipeline(pipeline)
    vae, _ = load_autoencoder(folder, device=device)
    tokenizer, text_encoder = text_model(folder)
    try:
        with quiet_loading():
            unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
            scheduler = DDPMScheduler.from_config(DDPMScheduler.load_config(folder / "scheduler"))
    except (OSError, ValueError) as exc:
        raise CorruptFileError("the pipeline's U-Net or scheduler does not load", path=folder,
                               expected="unet/ and scheduler/ of a Stable Diffusion folder",
                               found=str(exc).splitlines()[0]) from exc
    if unet.config.class_embed_type is not None or unet.config.in_channels != vae.config.latent_channels:
        raise CorruptFileError("not a text-to-image Stable Diffusion U-Net", path=folder / "unet",
                               expected=f"{vae.config.latent_channels} input channels, no class embedding",
                               found=f"{unet.config.in_channels} channels, class embedding "
                               f"{unet.config.class_embed_type}")
    for module in (vae, unet, text_encoder):
        module.requires_grad_(False)
    record = {"source": str(pipeline), **record, "unet_sha256": component_checksum(folder / "unet")}
    return _StableDiffusion(folder, record, vae, unet.to(device).eval(), tokenizer, text_encoder.to(device),
                            scheduler)


def _run(subjects: list[int], build, command: str, *, root, roi: str, pipeline: str, image_size: int, captions,
         sessions, preset: str, settings: SupervisedSettings, options: NeuroPictorOptions, device: str, out: Path,
         base: dict, checkpoint: Path, resume: bool, overwrite: bool, kind: str,
         expected_unet: str | None = None) -> NeuroPictorResult:
    """Train (a copy of) a NeuroPictor model on the subjects and save it to ``out`` (rank 0 under ``torchrun``), an
    output of ``kind`` claimed by :func:`~fmrikit.engine.runs.start_run` (its checkpoint folder ``checkpoint``)."""
    from fmrikit.data.dataset import read_info

    datasets = [preproc_betas_path(root, s, roi) for s in subjects]
    for s, path in zip(subjects, datasets):
        if not path.is_file():
            raise MissingInputError("no preprocessed dataset for this subject and ROI", path=path,
                                    expected=f"run fmrikit preprocess --subject {s} first")
    infos = [read_info(p) for p in datasets]
    if len({(i.stimuli_path, i.stimuli_dataset) for i in infos}) > 1:
        raise InputError("the subjects' stimuli come from different sources", expected="one stimulus set",
                         found=", ".join(sorted({i.stimuli_path for i in infos})))
    with distributed(device) as ctx:
        return _train(subjects, build, command, ctx, root=root, roi=roi, pipeline=pipeline, image_size=image_size,
                      captions=captions, sessions=sessions, preset=preset, settings=settings, options=options, out=out,
                      base=base, checkpoint=checkpoint, resume=resume, overwrite=overwrite, kind=kind,
                      expected_unet=expected_unet, info=infos[0])


def _train(subjects: list[int], build, command: str, ctx: Distributed, *, root, roi: str, pipeline: str,
           image_size: int, captions, sessions, preset: str, settings: SupervisedSettings,
           options: NeuroPictorOptions, out: Path, base: dict, checkpoint: Path, resume: bool, overwrite: bool,
           kind: str, expected_unet: str | None, info) -> NeuroPictorResult:
    """The training run of :func:`_run` in one process of the (possibly one-process) group."""
    from fmrikit.data.captions import read_captions
    from fmrikit.data.flatmaps.store import FlatmapStore
    from fmrikit.data.flatmaps.cache import read_flatmap_info, split_rows, test_flatmaps
    from fmrikit.diffusion import quiet_loading
    from fmrikit.methods.neuropictor.flatmap_ae import dataset_conventions, flatmap_caches
    from fmrikit.diffusion import image_targets

    dev = ctx.device
    caches = flatmap_caches(subjects, ctx, root=root, roi=roi, size=image_size)
    checksums = [file_checksum(p) for p in caches] if ctx.is_main else []  # of the caches this run reads
    flat_infos = [read_flatmap_info(p) for p in caches]
    splits = [split_rows(fi, sessions) for fi in flat_infos]
    if not sum(len(tr) for tr, _ in splits):
        raise DataValueError("no training trials", expected="non-shared trials in the chosen sessions", found="0")
    sd = load_stable_diffusion(pipeline, dev)
    if expected_unet is not None and sd.record["unet_sha256"] != expected_unet:
        raise DataValueError("the pipeline's U-Net changed since the base model was trained", path=sd.folder / "unet",
                             expected=f"sha256 {expected_unet[:12]}...", found=sd.record["unet_sha256"][:12] + "...")
    if options.gradient_checkpointing:
        sd.unet.enable_gradient_checkpointing()

    store = FlatmapStore(caches, [tr for tr, _ in splits], average_repeats=options.average_repeats)
    all_stim = np.arange(len(store))
    train_stim = store.stim_id(all_stim)
    test = [test_flatmaps(p) for p in caches]  # shared images, repeats averaged
    stim = np.unique(np.concatenate([train_stim] + [t[0] for t in test]))
    if not info.nsd_root and captions is None:
        raise MissingInputError("captions need an NSD-derived dataset or --captions", path=info.path,
                                expected="attribute nsd_root, or a captions folder")
    log.info("encoding %d images with the pipeline's VAE", len(stim))
    latents = torch.from_numpy(image_targets(info, stim, sd.vae, sd.image_size, dev)).to(torch.float16)
    sd.vae.to("cpu")  # only the targets needed it
    caps = read_captions(info.nsd_root, stim, captions)
    uncond = sd.encode_text([""], dev)

    images = np.unique(train_stim)
    held = np.random.default_rng(settings.seed).choice(images, max(1, len(images) // 20), replace=False)
    val_rows = np.nonzero(np.isin(train_stim, held))[0]
    train_rows = np.nonzero(~np.isin(train_stim, held))[0]
    torch.manual_seed(settings.seed)
    modules = build(sd).to(dev)
    modules.conditioner.encoder.requires_grad_(options.train_encoder)
    if options.gradient_checkpointing:
        modules.controlnet.enable_gradient_checkpointing()
    objective = _Objective(modules, sd, latents, stim, caps, uncond, options, dev)

    def batch_loss(rows: np.ndarray, net: nn.Module):
        idx = train_rows[rows]
        pick = torch.randint(0, 1 << 30, (len(idx),)).numpy()  # seeded per epoch (and rank) by fit_supervised
        return objective(net, torch.from_numpy(store.read(idx)), store.stim_id(idx), pick, drop=True)

    def val_loss() -> float:
        return objective.evaluate([(store.read(val_rows[s:s + 16]), store.stim_id(val_rows[s:s + 16]))
                                   for s in range(0, len(val_rows), 16)], settings.seed)["loss"]

    fit = fit_supervised(modules, batch_loss, len(train_rows), settings, device=dev, val_loss=val_loss,
                         checkpoint=checkpoint, resume=resume, description="neuropictor", ctx=ctx)
    store.close()
    scores = {subject_label(s): objective.test_scores(*t, settings.seed) for s, t in zip(subjects, test)}
    if ctx.is_main:
        record = {"subjects": subjects, "roi": roi, "flatmap_size": image_size, "image_size": sd.image_size,
                  "pipeline": {**sd.record, "source": portable_source(sd.record["source"], root)}, **base,
                  PROJECT_KEY: project_pointer(out, root),
                  "train_sessions": {subject_label(s): sorted(int(v) for v in np.unique(fi.session[tr]))
                                     for s, fi, (tr, _) in zip(subjects, flat_infos, splits)}}
        with staged_dir(out, overwrite=overwrite, kind=kind) as stage:
            modules.conditioner.to("cpu").save_pretrained(stage, extra=record)
            with quiet_loading():
                modules.controlnet.to("cpu").save_pretrained(stage / CONTROLNET_DIR, safe_serialization=True)
            write_log(stage / LOG_NAME, fit.history, title=f"NeuroPictor ({command})")
            write_sidecar(stage / SIDECAR_NAME, command=command, seed=settings.seed, run_id=new_run_id(),
                          inputs=checksums,
                          parameters={"subjects": subjects, "roi": roi, "sessions": sessions, "preset": preset,
                                      "training": asdict(settings), "options": asdict(options), "device": str(dev),
                                      "world_size": ctx.world_size},
                          outputs=["config.json", "model.safetensors", CONTROLNET_DIR, LOG_NAME],
                          extra={**record, "n_train_samples": int(len(train_rows)),
                                 "n_train_trials": int(store.trial_count(train_rows).sum()),
                                 "n_val_trials": int(store.trial_count(val_rows).sum()),
                                 "best_epoch": fit.best_epoch, "scores": scores,
                                 "conventions": dataset_conventions(subjects, root, roi)},
                          root=root, folder=out)
        finish_run(checkpoint)
    ctx.barrier()
    return NeuroPictorResult(model=out, scores=scores, history=fit.history)


class _Objective:
    """NeuroPictor's loss on batches of flatmaps, and its test scores."""

    def __init__(self, modules: NeuroPictorModules, sd: _StableDiffusion, latents: torch.Tensor, stim: np.ndarray,
                 captions: list[list[str]], uncond: torch.Tensor, options: NeuroPictorOptions, device):
        self.modules, self.sd, self.latents, self.stim = modules, sd, latents, stim
        self.captions, self.uncond, self.options, self.device = captions, uncond, options, device
        self._mean_targets: dict[int, torch.Tensor] = {}  # evaluation targets, encoded once per image

    def conditions(self, flatmaps: torch.Tensor):
        return self.modules.conditioner(flatmaps.to(self.device))

    def noisy(self, z0: torch.Tensor, generator: torch.Generator | None = None):
        """Random time steps (B,), noise and the noisy latents of ``z0`` (B, C, h, w)."""
        sd = self.sd
        n_steps = sd.scheduler.config.num_train_timesteps
        t = torch.randint(0, n_steps, (len(z0),), generator=generator).to(self.device)
        noise = torch.randn(z0.shape, generator=generator).to(self.device)
        return t, noise, sd.scheduler.add_noise(z0, noise, t)

    def mse(self, pred: torch.Tensor, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The denoising loss of a U-Net prediction: to the noise, or the velocity for v-prediction."""
        sd = self.sd
        target = noise if sd.scheduler.config.prediction_type == "epsilon" else sd.scheduler.get_velocity(z0, noise, t)
        return torch.nn.functional.mse_loss(pred.float(), target.float())

    def denoising_loss(self, z0: torch.Tensor, semantic: torch.Tensor, control: torch.Tensor | None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """MSE of the U-Net's prediction (with the ControlNet's residuals unless ``control`` is None)."""
        sd = self.sd
        t, noise, zt = self.noisy(z0, generator)
        residuals = {}
        if control is not None:
            down, mid = self.modules.controlnet(zt, t, encoder_hidden_states=semantic,
                                                controlnet_cond=control_image(control, sd.vae_factor),
                                                return_dict=False)
            residuals = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
        pred = sd.unet(zt, t, encoder_hidden_states=semantic, **residuals).sample
        return self.mse(pred, z0, noise, t)

    def semantic_loss(self, text: torch.Tensor, stim: np.ndarray, pick: np.ndarray | None) -> torch.Tensor:
        """Paper eq. 3: mean over tokens of the squared L2 error to one caption's embedding (all averaged when
        ``pick`` is None)."""
        pos = np.searchsorted(self.stim, stim)
        if pick is not None:
            target = self.sd.encode_text([self.captions[p][k % len(self.captions[p])] for p, k in zip(pos, pick)],
                                         self.device)
        else:
            target = self.mean_targets(pos)
        return ((text.float() - target) ** 2).sum(-1).mean()

    def mean_targets(self, pos: np.ndarray) -> torch.Tensor:
        """Caption embeddings averaged over each image's captions, (n, L_T, d_T), for images at ``pos`` of
        ``stim``."""
        for p in pos:
            if int(p) not in self._mean_targets:
                self._mean_targets[int(p)] = self.sd.encode_text(self.captions[p], self.device).mean(0)
        return torch.stack([self._mean_targets[int(p)] for p in pos])

    def __call__(self, net: nn.Module, flatmaps: torch.Tensor, stim: np.ndarray, pick: np.ndarray, drop: bool):
        """The training loss of a batch, the trainable forward through ``net`` (the modules or their DDP wrapper).

        Random draws, in order: the rows whose semantic condition is dropped, the time steps, the noise.
        """
        sd = self.sd
        mask = None
        if drop and self.options.uncond_prob > 0:
            mask = (torch.rand(len(flatmaps)) < self.options.uncond_prob).to(self.device)
        z0 = self.latents[np.searchsorted(self.stim, stim)].to(self.device, torch.float32)
        t, noise, zt = self.noisy(z0)
        semantic, text, down, mid = net(flatmaps.to(self.device), zt, t, sd.vae_factor, mask, self.uncond)
        pred = sd.unet(zt, t, encoder_hidden_states=semantic, down_block_additional_residuals=down,
                       mid_block_additional_residual=mid).sample
        dif = self.mse(pred, z0, noise, t)
        sem = self.semantic_loss(text, stim, pick)
        return dif + self.options.semantic_weight * sem, {"diffusion": dif.item(), "semantic": sem.item()}

    @torch.no_grad()
    def evaluate(self, batches, seed: int) -> dict[str, float]:
        """Losses over batches of (flatmaps, stim) at fixed noise and time steps (seeded), captions averaged; also
        the denoising loss without any fMRI condition (empty prompt, no ControlNet)."""
        generator = torch.Generator().manual_seed(seed)
        sums, n = {"diffusion": 0.0, "semantic": 0.0, "diffusion_unconditioned": 0.0}, 0
        for flatmaps, stim in batches:
            semantic, text, control = self.conditions(torch.as_tensor(flatmaps))
            z0 = self.latents[np.searchsorted(self.stim, stim)].to(self.device, torch.float32)
            state = generator.get_state()
            sums["diffusion"] += self.denoising_loss(z0, semantic, control, generator).item() * len(stim)
            generator.set_state(state)  # the same noise and steps for the unconditioned loss
            uncond = self.uncond.expand(len(stim), -1, -1)
            sums["diffusion_unconditioned"] += self.denoising_loss(z0, uncond, None, generator).item() * len(stim)
            sums["semantic"] += self.semantic_loss(text, stim, None).item() * len(stim)
            n += len(stim)
        out = {k: v / n for k, v in sums.items()}
        out["loss"] = out["diffusion"] + self.options.semantic_weight * out["semantic"]
        return out

    @torch.no_grad()
    def test_scores(self, stim: np.ndarray, flatmaps: np.ndarray, seed: int) -> dict[str, Any]:
        """Held-out losses on the shared images, against the unconditioned denoiser, against the same model
        conditioned on another image's flatmap (``*_shuffled``: image i gets image i - 1's, same noise and
        steps), and, for the semantic loss, against a constant prediction: the mean caption embedding of the
        test images themselves."""
        if not len(stim):
            return {"n_test_images": 0}
        self.modules.eval()

        def batches(maps: np.ndarray):
            return [(maps[s:s + 16], stim[s:s + 16]) for s in range(0, len(stim), 16)]

        scores = self.evaluate(batches(flatmaps), seed)
        shuffled = self.evaluate(batches(flatmaps[np.roll(np.arange(len(stim)), 1)]), seed)
        scores.update(diffusion_shuffled=shuffled["diffusion"], semantic_shuffled=shuffled["semantic"])
        targets = self.mean_targets(np.searchsorted(self.stim, stim))
        scores["semantic_constant_baseline"] = float(((targets - targets.mean(0)) ** 2).sum(-1).mean())
        return {**scores, "n_test_images": int(len(stim))}
