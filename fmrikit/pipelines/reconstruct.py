"""``fmrikit reconstruct``: images from fMRI through the latent mappers or the decoder and diffusers.

Routes
------
``latent``  the subject's latent mappers predict the autoencoder latent z (and, with a Stable
            Diffusion pipeline, the CLIP text-condition embeddings); the embedded autoencoder decodes
            z directly, or ``StableDiffusionImg2ImgPipeline`` denoises from z noised to ``strength``
            with the predicted embeddings as ``prompt_embeds`` (Takagi & Nishimoto).
``unclip``  the subject's decoder predicts the image embedding (its regression head), which
            conditions ``StableUnCLIPImg2ImgPipeline`` through ``image_embeds`` (MindEye2 / TROI).
``neuropictor``  the betas become the subject's cortical flatmap; the NeuroPictor conditioner turns
            it into the semantic condition (``prompt_embeds``) and a control map that drives the
            ControlNet of ``StableDiffusionControlNetPipeline``, scaled by the control scale; the
            semantics can come from another trial (``high_level_from``) while the structure stays.

Inputs are a 3D or 4D betas NIfTI on the model's grid (masked with the model's voxels; integer NSD
betas are divided by 300 and z-scored per voxel over the file's volumes, as ``preprocess`` does per
session) or trials of the subject's preprocessed dataset (``shared``: the test images, repeats averaged).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from fmrikit._progress import track
from fmrikit.errors import DataValueError, InputError, MissingInputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import file_checksum, new_run_id, write_sidecar
from fmrikit.project import subject_dir, subject_label

log = logging.getLogger("fmrikit")

METHODS = ("latent", "unclip", "neuropictor")
#: Classifier-free guidance scale by method (NeuroPictor evaluates with 5.0).
GUIDANCE = {"latent": 7.5, "unclip": 7.5, "neuropictor": 5.0}
INPUT_SCALES = ("auto", "raw", "zscored")
#: NSD stores betas as int16 percent signal change times this.
NSD_BETA_SCALE = 300.0
SESSION_FILE = re.compile(r"betas_session(\d+)")


@dataclass
class Inputs:
    """Betas to reconstruct from, over the model's voxels.

    Attributes
    ----------
    x : ndarray of float32, shape (n, V)
        Z-scored betas.
    names : list of str
        Output stem per row: ``trial-NNNN`` plus ``_stim-<id>`` when the stimulus is known.
    stim_id : ndarray of int64, shape (n,)
        0-based stimulus id per row, -1 when unknown.
    source : dict
        What was read (for the sidecar).
    """

    x: np.ndarray
    names: list[str]
    stim_id: np.ndarray
    source: dict[str, Any]


@dataclass
class ReconstructResult:
    """Where a reconstruction run wrote its images."""

    out: Path
    images: list[Path]
    contact_sheet: Path
    n_inputs: int


def read_nifti_inputs(path: str | os.PathLike, ijk: np.ndarray, affine: np.ndarray,
                      volume_shape: tuple[int, int, int], input_scale: str = "auto") -> tuple[np.ndarray, dict]:
    """Betas of a 3D or 4D NIfTI at the model's voxels, scaled as in training.

    Parameters
    ----------
    path : path-like
    ijk : ndarray of int, shape (V, 3)
        The model's voxels on its source grid.
    affine : ndarray, shape (4, 4)
    volume_shape : tuple of int
        The model's source grid, which the file must share.
    input_scale : {"auto", "raw", "zscored"}
        ``raw``: divide integer betas by 300 and z-score each voxel over the file's volumes (needs
        >= 2 volumes); ``zscored``: use the values as they are; ``auto``: ``raw`` for integer files,
        ``zscored`` for float files.

    Returns
    -------
    x : ndarray of float32, shape (n_volumes, V)
    record : dict
        Checksum and the scaling applied.

    Raises
    ------
    GridMismatchError
        The file's grid or affine differs from the model's.
    DataValueError
        Too few volumes to z-score, non-finite values, or a voxel constant over the volumes.
    """
    from fmrikit.io.nifti import check_same_grid, iter_masked_volumes, load_image

    if input_scale not in INPUT_SCALES:
        raise InputError("unknown --input-scale", expected=" or ".join(INPUT_SCALES), found=repr(input_scale))
    img = load_image(path, ndim=(3, 4))
    check_same_grid({str(path): (img.shape[:3], img.affine), "the model's grid": (tuple(volume_shape), affine)})
    checksum: dict = {}
    if img.ndim == 3:
        raw = np.asarray(img.dataobj)[tuple(np.asarray(ijk).T)][None]
        checksum = file_checksum(path)
    else:
        raw = np.concatenate([block for _, block in iter_masked_volumes(path, ijk, checksum=checksum)])
    proxy = img.dataobj
    integer = np.issubdtype(np.dtype(img.get_data_dtype()), np.integer) and proxy.slope in (1, None) \
        and proxy.inter in (0, None)  # stored integers, not rescaled by the header
    scale = ("raw" if integer else "zscored") if input_scale == "auto" else input_scale
    x = raw.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataValueError("betas contain NaN or Inf", path=path, expected="finite values",
                             found=f"{int((~np.isfinite(x)).sum())} non-finite values at the model's voxels")
    if scale == "raw":
        if len(x) < 2:
            raise DataValueError("one volume cannot be z-scored", path=path,
                                 expected="a session's 4D betas, or --input-scale zscored for z-scored betas",
                                 found="a single volume of raw betas")
        if integer:
            x /= NSD_BETA_SCALE
        std = x.std(0)
        if (std == 0).any():
            raise DataValueError("voxels are constant over the file's volumes", path=path,
                                 expected="varying betas at every model voxel", found=f"{int((std == 0).sum())} constant")
        x = (x - x.mean(0)) / std
    return x, {**checksum, "input_scale": scale, "n_volumes": int(len(x)), "integer_betas": bool(integer)}


def _session_stimuli(path: Path, dataset: Path | None, n: int) -> np.ndarray:
    """Stimulus ids of an NSD session file's volumes, from the subject's dataset (-1 when unknown)."""
    from fmrikit.data.dataset import read_info
    from fmrikit.io.hdf5 import open_h5

    match = SESSION_FILE.search(path.name)
    unknown = np.full(n, -1, np.int64)
    if match is None or dataset is None or not dataset.is_file():
        return unknown
    info = read_info(dataset)
    with open_h5(dataset) as f:
        index = f["trials/index_in_session"][:] if "trials/index_in_session" in f else None
    rows = np.nonzero(info.session == int(match.group(1)))[0]
    if index is None or len(rows) != n:
        return unknown
    out = unknown.copy()
    out[index[rows]] = info.stim_id[rows]
    return out


def dataset_inputs(dataset: Path, ijk: np.ndarray, trials: str) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """Betas of a preprocessed dataset's trials at the model's voxels.

    Parameters
    ----------
    dataset : Path
    ijk : ndarray, shape (V, 3)
    trials : str
        ``shared`` (the test images, repeats averaged, named by their position) or trial indices
        (0-based rows of the dataset) such as ``0-9,20``.

    Returns
    -------
    x : ndarray of float32, shape (n, V)
    stim_id : ndarray of int64, shape (n,)
    names : list of str
    record : dict
    """
    from fmrikit.data.dataset import read_info, voxel_columns
    from fmrikit.data.splits import average_repeats, read_columns

    info = read_info(dataset)
    columns = voxel_columns(info, ijk)
    if trials == "shared":
        rows = np.nonzero(info.shared)[0]
        if not len(rows):
            raise DataValueError("the dataset has no shared trials", path=dataset, expected="trials/shared set")
        stim, x = average_repeats(read_columns(dataset, rows, columns), info.stim_id[rows])
        names = [f"trial-{k:04d}_stim-{s}" for k, s in enumerate(stim)]
    else:
        rows = _parse_rows(trials, info.n_trials, dataset)
        x, stim = read_columns(dataset, rows, columns), info.stim_id[rows]
        names = [f"trial-{r:04d}_stim-{s}" for r, s in zip(rows, stim)]
    return x.astype(np.float32), stim.astype(np.int64), names, {**file_checksum(dataset), "trials": trials}


def _parse_rows(text: str, n: int, dataset: Path) -> np.ndarray:
    from fmrikit.data.preprocess import parse_ranges

    rows = parse_ranges(text, "--trials", minimum=0)
    if rows[-1] >= n:
        raise InputError("trial indices out of range", path=dataset, expected=f"0 to {n - 1}", found=str(rows[-1]))
    return np.asarray(rows, np.int64)


def sample_seed(seed: int, row: int, sample: int) -> int:
    """The generator seed of one output image: fixed by (seed, input row, sample), not by batching."""
    return int(np.random.SeedSequence([seed, row, sample]).generate_state(1)[0])


def reconstruct(subject: int, *, betas: str | os.PathLike | None = None, trials: str | None = None,
                method: str = "latent", mapper: str | None = None, model: str | os.PathLike | None = None,
                pipeline: str | None = None, prior: str | os.PathLike | None = None, prior_guidance: float = 1.0,
                control_scale: float | None = None, high_level_from: int | None = None, input_scale: str = "auto",
                samples: int = 1, seed: int = 0, steps: int = 50, strength: float = 0.75,
                guidance_scale: float | None = None, noise_level: int = 0, batch_size: int = 8, max_sheet: int = 24,
                device: str = "auto", root: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                overwrite: bool = False) -> ReconstructResult:
    """Reconstruct images from a subject's betas.

    Parameters
    ----------
    subject : int
    betas : path-like, optional
        3D or 4D NIfTI on the model's grid (exactly one of ``betas`` and ``trials``).
    trials : str, optional
        ``shared`` or 0-based trial indices of the model's preprocessed dataset.
    method : {"latent", "unclip", "neuropictor"}
    mapper : str, optional
        Latent route: which of the subject's mappers (``pretrain --model latent-mapper --mapper``);
        default the first trained of gcn, cnn, vae, ridge.
    model : path-like, optional
        The mapper folder (latent), subject decoder folder (unclip) or NeuroPictor folder
        (neuropictor: default the subject's refined model, else the pretrained one) instead of the default.
    pipeline : str, optional
        Stable Diffusion folder or cached id: img2img for ``latent`` (default: the one the mapper
        was trained with, or the mapper's embedded autoencoder), unCLIP for ``unclip`` (required),
        the base model for ``neuropictor`` (default: the one it was trained on; its U-Net must match).
    prior : path-like, optional
        ``unclip``: a diffusion prior of the decoder (``pretrain --model prior``) that samples the
        image embedding from the decoder's prediction (guidance ``prior_guidance``), with the
        sample's seed.
    control_scale : float, optional
        ``neuropictor``: alpha, the weight of the ControlNet's residuals (0: semantics only; default 1).
    high_level_from : int, optional
        ``neuropictor``: 0-based trial of the subject's dataset whose semantic condition replaces
        every input's (its structure is kept).
    input_scale : {"auto", "raw", "zscored"}
        How a NIfTI's values are turned into model inputs (:func:`read_nifti_inputs`).
    samples : int
        Images per input (diffusion routes), each from its own seed (:func:`sample_seed`).
    steps, strength, guidance_scale, noise_level
        Diffusion settings (``strength``: img2img; ``noise_level``: unCLIP; ``guidance_scale``
        default :data:`GUIDANCE` of the method).
    batch_size : int
        Inputs per pipeline call.
    max_sheet : int
        Inputs shown on the contact sheet.
    out : path-like, optional
        Output folder (default ``<root>/sub-NN/sub-NN_recon-<method>_<input>``).

    Returns
    -------
    ReconstructResult
    """
    from fmrikit.features.networks import resolve_device

    if method not in METHODS:
        raise InputError("unknown --method", expected=" or ".join(METHODS), found=repr(method))
    if (betas is None) == (trials is None):
        raise InputError("give a betas file or --trials", expected="exactly one", found="both" if betas else "neither")
    if samples < 1 or batch_size < 1 or steps < 1:
        raise InputError("--samples, --batch-size and --steps must be positive",
                         found=f"{samples}, {batch_size}, {steps}")
    dev = resolve_device(device)
    if prior is not None and method != "unclip":
        raise InputError("--prior applies to --method unclip", expected="--method unclip", found=f"--method {method}")
    if (control_scale is not None or high_level_from is not None) and method != "neuropictor":
        raise InputError("--control-scale and --high-level-from apply to --method neuropictor",
                         expected="--method neuropictor", found=f"--method {method}")
    guidance_scale = GUIDANCE[method] if guidance_scale is None else guidance_scale
    if method == "neuropictor":
        route = _neuropictor_route(subject, model, pipeline, root, dev, 1.0 if control_scale is None else control_scale,
                                   high_level_from)
    else:
        route = _load_route(subject, method, mapper, model, pipeline, root, dev, prior, prior_guidance)
    if route.deterministic and samples > 1:
        raise InputError("the embedded autoencoder decodes deterministically: one sample per input",
                         expected="--samples 1, or --pipeline for diffusion", found=f"--samples {samples}")
    swap = f"-semantics{high_level_from}" if high_level_from is not None else ""
    tag = {"latent": f"latent-{route.record.get('mapper')}", "unclip": "unclip",
           "neuropictor": "neuropictor" + swap}[method]
    if betas is not None:
        betas = Path(betas)
        x, source = read_nifti_inputs(betas, route.ijk, route.affine, route.volume_shape, input_scale)
        stim = _session_stimuli(betas, route.dataset, len(x))
        names = [f"trial-{k:04d}" + (f"_stim-{s}" if s >= 0 else "") for k, s in enumerate(stim)]
        stem = betas.name.split(".")[0]
    else:
        if route.dataset is None or not route.dataset.is_file():
            raise MissingInputError("the model's dataset is gone", path=route.dataset, expected="a preprocessed dataset")
        x, stim, names, source = dataset_inputs(route.dataset, route.ijk, trials)
        stem = "trials-" + re.sub(r"[^0-9A-Za-z]+", "", trials)
    out = Path(out) if out is not None else subject_dir(root, subject) / f"{subject_label(subject)}_recon-{tag}_{stem}"
    run_id = new_run_id()
    with staged_dir(out, overwrite=overwrite) as stage:
        n_sheet = min(max_sheet, len(x))
        sheet = np.empty((samples, n_sheet), dtype=object)  # only these images stay in memory
        predictions, written = [], []
        for start in track(range(0, len(x), batch_size), f"reconstruct {subject_label(subject)}",
                           total=-(-len(x) // batch_size)):
            rows = np.arange(start, min(start + batch_size, len(x)))
            pred = route.predict(torch.from_numpy(x[rows]))
            predictions.append(pred)
            for s in range(samples):
                seeds = [sample_seed(seed, int(r), s) for r in rows]
                out_images = route.generate(pred, seeds, steps=steps, strength=strength,
                                            guidance_scale=guidance_scale, noise_level=noise_level)
                written += _write_images(stage, out_images, [names[r] for r in rows], s, samples)
                for r, im in zip(rows[rows < n_sheet], out_images):
                    sheet[s, r] = im
        _contact_sheet(stage / "contact_sheet.png", sheet, _truth_images(route, stim[:n_sheet]), names[:n_sheet])
        _write_predictions(stage / "predictions.h5", predictions, stim, names)
        write_sidecar(stage / "reconstruct.json", command="reconstruct", seed=seed, run_id=run_id,
                      inputs=[source, *route.inputs],
                      parameters={"subject": subject, "method": method, "mapper": route.record.get("mapper"),
                                  "model": str(route.model_path), "pipeline": route.record.get("pipeline"),
                                  "prior": str(prior) if prior else None, "prior_guidance": prior_guidance,
                                  "control_scale": control_scale, "high_level_from": high_level_from,
                                  "input_scale": input_scale, "samples": samples, "steps": steps,
                                  "strength": strength, "guidance_scale": guidance_scale, "noise_level": noise_level,
                                  "batch_size": batch_size, "device": str(dev), "betas": str(betas) if betas else None,
                                  "trials": trials},
                      outputs=["contact_sheet.png", "predictions.h5"] + [str(p.relative_to(stage)) for p in written],
                      extra={"route": route.record, "n_inputs": int(len(x)), "stim_id": stim.tolist(),
                             "seeds": [[sample_seed(seed, r, s) for r in range(len(x))] for s in range(samples)]})
    return ReconstructResult(out=out, images=[out / p.relative_to(stage) for p in written],
                             contact_sheet=out / "contact_sheet.png", n_inputs=len(x))


@dataclass
class _Route:
    """A loaded model and the generator that turns its predictions into images.

    ``predict`` maps z-scored betas (B, V) over ``ijk`` to (prediction (B, D), text embeddings or
    None); ``generate`` maps those and one seed per input to uint8 images (B, H, W, 3).
    """

    ijk: np.ndarray
    affine: np.ndarray
    volume_shape: tuple[int, int, int]
    dataset: Path | None
    model_path: Path
    record: dict[str, Any]
    inputs: list[dict]
    predict: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
    generate: Callable[..., np.ndarray]
    deterministic: bool = False


def _load_route(subject: int, method: str, mapper: str, model, pipeline, root, dev, prior, prior_guidance) -> _Route:
    if method == "latent":
        return _latent_route(subject, mapper, model, pipeline, root, dev)
    return _unclip_route(subject, model, pipeline, root, dev, prior, prior_guidance)


def _latent_route(subject: int, mapper: str, model, pipeline, root, dev) -> _Route:
    from fmrikit.methods.latent.models import LatentMapper
    from fmrikit.engine.serialization import read_config
    from fmrikit.diffusion import (decode_latents, generate_img2img, load_autoencoder, load_pipeline,
                                             resolve_pipeline)
    from fmrikit.methods.latent.train import mapper_dir, weights_file_checksum

    if model is not None:
        folder = Path(model)
    elif mapper is not None:
        folder = mapper_dir(root, subject, mapper)
    else:  # the subject's first trained mapper, the report's best first
        folder = next((f for f in (mapper_dir(root, subject, m) for m in ("gcn", "cnn", "vae", "ridge"))
                       if (f / "image" / "config.json").is_file()), mapper_dir(root, subject, "gcn"))
    if not (folder / "image" / "config.json").is_file():
        raise MissingInputError("no latent mapper", path=folder, expected=f"run fmrikit pretrain --model latent-mapper "
                                f"--subject {subject} --mapper {mapper or 'gcn'} first (or pass --model)")
    record = read_config(folder / "image")
    image = LatentMapper.from_pretrained(folder / "image").eval()
    text, text_shape = None, None
    if (folder / "text" / "config.json").is_file():
        text, text_shape = LatentMapper.from_pretrained(folder / "text").eval(), \
            tuple(read_config(folder / "text")["target_shape"])
    generator = record["generator"]
    shape = tuple(record["target_shape"])
    inputs = [{"model": str(folder.resolve())}]
    if pipeline is None and generator["kind"] == "pipeline":
        pipeline = generator["source"]
    if pipeline is None:
        vae, _ = load_autoencoder(generator["vae_folder"], device=dev)
        if weights_file_checksum(Path(generator["vae_folder"])) != generator["vae_sha256"]:
            raise DataValueError("the autoencoder changed since the mapper was trained", path=generator["vae_folder"],
                                 expected=f"sha256 {generator['vae_sha256'][:12]}...")

        def generate(pred, seeds, **_):
            return decode_latents(vae, pred[0].reshape((-1,) + shape), device=dev)

        deterministic, route_record = True, {"generator": "autoencoder", "autoencoder": generator["vae_folder"]}
    else:
        pipe_folder, _ = resolve_pipeline(pipeline)
        if weights_file_checksum(pipe_folder / "vae") != generator["vae_sha256"]:
            raise DataValueError("the pipeline's VAE is not the one the mapper was trained on", path=pipe_folder / "vae",
                                 expected=f"the VAE of {generator['source']}",
                                 found="other weights (train the mapper with --pipeline on this pipeline)")
        pipe, pipe_record = load_pipeline(pipeline, "img2img", device=dev)

        def generate(pred, seeds, *, steps, strength, guidance_scale, **_):
            latents, embeds = pred
            return generate_img2img(pipe, latents.reshape((-1,) + shape), embeds, seeds=seeds, strength=strength,
                                    steps=steps, guidance_scale=guidance_scale)

        deterministic, route_record = False, {"generator": "img2img", **pipe_record}

    def predict(x: torch.Tensor):
        latents = image.predict(x[:, image_cols])
        embeds = None
        if text is not None and not deterministic:
            embeds = text.predict(x[:, text_cols]).reshape((len(x),) + text_shape)
        return latents, embeds

    ijk, image_cols, text_cols = _union_voxels(image, text)
    return _Route(deterministic=deterministic, ijk=ijk, affine=np.asarray(record["affine"]),
                  volume_shape=tuple(record["volume_shape"]), dataset=Path(record["dataset"]), model_path=folder,
                  record={"mapper": record["config"]["arch"], "text_mapper": text is not None, **route_record},
                  inputs=inputs, predict=predict, generate=generate)


def _union_voxels(image, text) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All input voxels of the mappers (V, 3) and each mapper's positions among them."""
    from fmrikit.io.nifti import volume_index

    parts = [image.ijk.numpy()] + ([text.ijk.numpy()] if text is not None else [])
    shape = tuple(int(v) + 1 for v in np.concatenate(parts).max(0))
    flats = [volume_index(p, shape) for p in parts]
    union = np.unique(np.concatenate(flats))
    ijk = np.stack(np.unravel_index(union, shape, order="F"), axis=1).astype(np.int64)
    pos = [np.searchsorted(union, f) for f in flats]
    return ijk, pos[0], pos[1] if text is not None else np.zeros(0, np.int64)


def _unclip_route(subject: int, model, pipeline, root, dev, prior_path, prior_guidance) -> _Route:
    from fmrikit.methods.mindeye.subject import load_subject_model
    from fmrikit.diffusion import generate_unclip, load_pipeline
    from fmrikit.methods.mindeye.prior import load_prior, sample_prior

    if pipeline is None:
        raise InputError("--method unclip needs a Stable unCLIP pipeline", expected="--pipeline PATH_OR_ID",
                         found="none")
    folder = Path(model) if model is not None else default_decoder(root, subject)
    sub = load_subject_model(folder, device="cpu")
    pipe, pipe_record = load_pipeline(pipeline, "unclip", device=dev)
    width = pipe.unet.config.projection_class_embeddings_input_dim // 2
    if sub.model.config["embed_dim"] != width:
        raise DataValueError("the decoder's image embedding does not fit the pipeline", path=folder,
                             expected=f"{width}-dimensional embeddings (a decoder trained on the pipeline's CLIP image "
                             "features: --features clip --image-model)", found=str(sub.model.config["embed_dim"]))

    prior, prior_record = (None, None) if prior_path is None else load_prior(prior_path, folder, device=dev)

    @torch.no_grad()
    def predict(x: torch.Tensor):
        _, regression = sub.model(x, sub.key)
        return regression * sub.model.target_std + sub.model.target_mean, None

    def generate(pred, seeds, *, steps, guidance_scale, noise_level, **_):
        embeds = pred[0]
        if prior is not None:
            std = sample_prior(prior, sub.model.standardize(embeds), seeds=seeds, steps=steps,
                               guidance_scale=prior_guidance).cpu()
            embeds = std * sub.model.target_std + sub.model.target_mean
        return generate_unclip(pipe, embeds, seeds=seeds, steps=steps, guidance_scale=guidance_scale,
                               noise_level=noise_level)

    dataset = Path(sub.record.get("dataset", "")) if sub.record.get("dataset") else None
    return _Route(ijk=sub.ijk.astype(np.int64), affine=sub.affine, volume_shape=sub.volume_shape, dataset=dataset,
                  model_path=folder, record={"decoder": str(folder), "features": sub.record.get("features"),
                                             "prior": str(prior_path) if prior_path else None,
                                             "prior_guidance": prior_guidance if prior_path else None, **pipe_record},
                  inputs=[{"model": str(Path(folder).resolve())}], predict=predict, generate=generate)


def _neuropictor_route(subject: int, model, pipeline, root, dev, control_scale: float,
                       high_level_from: int | None) -> _Route:
    from fmrikit.data.dataset import read_info, voxel_columns
    from fmrikit.data.flatmaps import flatmap_mapping, flatmap_path, read_flatmap_info
    from fmrikit.diffusion import generate_controlnet, load_pipeline, resolve_pipeline
    from fmrikit.project import preproc_betas_path
    from fmrikit.data.splits import read_columns
    from fmrikit.methods.latent.train import weights_file_checksum
    from fmrikit.methods.neuropictor.train import adapted_neuropictor_path, default_neuropictor_path, load_neuropictor

    if model is not None:
        folder = Path(model)
    else:  # the subject's refined model, else the cross-subject one
        folder = next((f for f in (adapted_neuropictor_path(root, subject), default_neuropictor_path(root))
                       if (f / "config.json").is_file()), adapted_neuropictor_path(root, subject))
    if not (folder / "config.json").is_file():
        raise MissingInputError("no NeuroPictor model", path=folder, expected="run fmrikit pretrain --model "
                                f"neuropictor (and adapt-subject --model neuropictor --subject {subject}) first")
    conditioner, controlnet, record = load_neuropictor(folder, device=dev)
    dataset = preproc_betas_path(root, subject, record["roi"])
    if not dataset.is_file():
        raise MissingInputError("no preprocessed dataset for the model's ROI", path=dataset,
                                expected=f"run fmrikit preprocess --subject {subject} first")
    info = read_info(dataset)
    cache = flatmap_path(root, subject, record["roi"], record["flatmap_size"])
    # the operator training used (it keeps a pycortex subject given explicitly), else the dataset's own
    mapping = read_flatmap_info(cache).mapping if cache.is_file() else flatmap_mapping(info, record["flatmap_size"])
    trained_on = record["pipeline"]
    pipe_folder, _ = resolve_pipeline(pipeline or trained_on["source"])
    if weights_file_checksum(pipe_folder / "unet") != trained_on["unet_sha256"]:
        raise DataValueError("the pipeline's U-Net is not the one the model was trained on", path=pipe_folder / "unet",
                             expected=f"the U-Net of {trained_on['source']}", found="other weights")
    pipe, pipe_record = load_pipeline(pipe_folder, "controlnet", device=dev, controlnet=controlnet)

    @torch.no_grad()
    def conditions(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        semantic, _, control = conditioner(torch.from_numpy(mapping.to_flatmaps(x.numpy())).to(dev))
        return semantic.float().cpu(), control.float().cpu()

    fixed = None
    if high_level_from is not None:
        row = _parse_rows(str(high_level_from), info.n_trials, dataset)
        fixed = conditions(torch.from_numpy(read_columns(dataset, row, voxel_columns(info, mapping.ijk))))[0]

    def predict(x: torch.Tensor):
        semantic, control = conditions(x)
        return control.flatten(1), semantic if fixed is None else fixed.expand(len(x), -1, -1)

    def generate(pred, seeds, *, steps, guidance_scale, **_):
        control, semantic = pred
        return generate_controlnet(pipe, semantic, control.reshape((-1,) + conditioner.control_shape), seeds=seeds,
                                   steps=steps, guidance_scale=guidance_scale, control_scale=control_scale)

    return _Route(ijk=mapping.ijk.astype(np.int64), affine=info.affine, volume_shape=info.volume_shape,
                  dataset=dataset, model_path=folder,
                  record={"neuropictor": str(folder), "control_scale": control_scale,
                          "high_level_from": high_level_from, "flatmap_size": record["flatmap_size"], **pipe_record},
                  inputs=[{"model": str(folder.resolve())}, file_checksum(dataset)], predict=predict,
                  generate=generate)


def default_decoder(root, subject: int) -> Path:
    """The subject's decoder folder: its ``troi``, else its ``adapt`` model."""
    for desc in ("troi", "adapt"):
        folder = subject_dir(root, subject) / f"{subject_label(subject)}_desc-{desc}_decoder"
        if (folder / "config.json").is_file():
            return folder
    raise MissingInputError("no subject decoder", path=subject_dir(root, subject),
                            expected=f"run fmrikit roi-train or adapt-subject --subject {subject} (or pass --model)")


def _truth_images(route: _Route, stim: np.ndarray) -> list[np.ndarray] | None:
    """Ground-truth stimuli of the inputs, when every stimulus is known and readable."""
    from fmrikit.data.dataset import read_info, read_stimuli
    from fmrikit.errors import FmrikitError

    if route.dataset is None or not route.dataset.is_file() or (stim < 0).any():
        return None
    try:
        return list(read_stimuli(read_info(route.dataset), stim))
    except FmrikitError as exc:
        log.warning("no ground truth on the contact sheet: %s", exc.one_line())
        return None


def _write_images(stage: Path, images: np.ndarray, names: list[str], sample: int, n_samples: int) -> list[Path]:
    """PNGs of one sample of a batch: ``images/NAME.png``, or ``images/sample-KK/NAME.png`` for several samples."""
    from PIL import Image

    folder = stage / "images" if n_samples == 1 else stage / "images" / f"sample-{sample + 1:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, im in zip(names, images):
        Image.fromarray(im).save(folder / f"{name}.png")
    return [folder / f"{name}.png" for name in names]


def _write_predictions(path: Path, predictions: list, stim: np.ndarray, names: list[str]) -> None:
    """``predictions.h5``: the predicted latents / embeddings per input, with stim_id and names."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("prediction", data=torch.cat([p[0] for p in predictions]).float().numpy())
        if all(p[1] is not None for p in predictions):
            f.create_dataset("text_embeddings", data=torch.cat([p[1] for p in predictions]).float().numpy())
        f.create_dataset("stim_id", data=stim)
        f.create_dataset("name", data=np.array(names, dtype=h5py.string_dtype()))


def _contact_sheet(path: Path, images: np.ndarray, truth: list[np.ndarray] | None, names: list[str],
                   tile: int = 128, columns: int = 4) -> None:
    """A PNG grid: per input, [ground truth |] its samples, labelled by name."""
    from PIL import Image, ImageDraw

    n_samples, n = images.shape
    per = n_samples + (truth is not None)
    cols = max(1, columns // per) * per
    rows = -(-n * per // cols)
    sheet = Image.new("RGB", (cols * tile, rows * (tile + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for k in range(n):
        tiles = ([truth[k]] if truth is not None else []) + [images[s, k] for s in range(n_samples)]
        for j, im in enumerate(tiles):
            slot = k * per + j
            x, y = (slot % cols) * tile, (slot // cols) * (tile + 14)
            sheet.paste(Image.fromarray(im).resize((tile, tile), Image.BICUBIC), (x, y + 14))
            label = ("truth " if truth is not None and j == 0 else "") + names[k].split("_")[-1]
            draw.text((x + 2, y + 1), label, fill="black")
    sheet.save(path)
