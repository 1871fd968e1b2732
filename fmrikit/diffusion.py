"""Image generation through diffusers' own pipelines, and VAE encode/decode (weights are never downloaded).

Three routes: ``img2img`` (``StableDiffusionImg2ImgPipeline``) starts from a predicted VAE latent, passed as
the pipeline's ``image`` (diffusers takes 4-channel tensors as latents, already scaled), with predicted CLIP
text embeddings as ``prompt_embeds`` (any token count: the unconditional embeddings of classifier-free
guidance are built with the same length); ``unclip`` (``StableUnCLIPImg2ImgPipeline``) is conditioned on
``image_embeds`` only; ``controlnet`` (``StableDiffusionControlNetPipeline``, NeuroPictor) is conditioned on
``prompt_embeds`` and a control map (as many channels as the latents, which the pipeline passes
through unresized) repeated from latent to pixel size (:func:`control_image`), its ControlNet
residuals scaled by ``controlnet_conditioning_scale``. Randomness enters through one
``torch.Generator`` per sample, seeded by ``seeds[i]``, so a sample does not depend on the rest of its
batch (up to float rounding).
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from fmrikit.io.provenance import checksum_digest, file_checksum
from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError
from fmrikit.checks import check_option
from fmrikit.data.dataset import DatasetInfo, read_stimuli
from fmrikit.io.hub import offline_hub

KINDS = {"img2img": "StableDiffusionImg2ImgPipeline", "unclip": "StableUnCLIPImg2ImgPipeline",
         "controlnet": "StableDiffusionControlNetPipeline"}
_WHERE = "a diffusers save_pretrained folder or a cached Hugging Face id"


def _first_line(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]


def resolve_pipeline(source: str | os.PathLike) -> tuple[Path, dict]:
    """The local folder of a diffusers pipeline and what identifies it.

    Returns ``(folder, record)``: ``{"pipeline": folder}`` for a folder with ``model_index.json``,
    ``{"pipeline": id, "revision": snapshot}`` for a Hugging Face id already in the local cache.
    Raises :class:`MissingInputError` for anything else: weights are never downloaded.
    """
    folder = Path(source).expanduser()
    if folder.is_dir():
        if not (folder / "model_index.json").is_file():
            raise MissingInputError("no model_index.json in the pipeline folder", path=folder,
                                    expected=_WHERE, found="no model_index.json")
        return folder, {"pipeline": str(folder.resolve())}
    from huggingface_hub import snapshot_download

    try:
        with offline_hub():
            snapshot = Path(snapshot_download(str(source), local_files_only=True))
    except Exception as exc:  # not cached, or not a valid id: the hub raises several types
        raise MissingInputError("diffusers model not found locally (weights are never downloaded)", path=source,
                                expected=_WHERE, found=_first_line(exc)) from exc
    if not (snapshot / "model_index.json").is_file():
        raise MissingInputError("cached snapshot has no model_index.json", path=snapshot, expected=_WHERE,
                                found="no model_index.json")
    return snapshot, {"pipeline": str(source), "revision": snapshot.name}


@contextmanager
def quiet_loading():
    """Switch off loading bars and advice (``pip install accelerate``...) of diffusers and transformers, restored
    afterwards, and the ``torch_dtype`` renaming warning of diffusers >= 0.36; the hub is offline meanwhile
    (:func:`~fmrikit.io.hub.offline_hub`)."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    was = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    levels = dlog.get_verbosity(), tlog.get_verbosity()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    try:
        with warnings.catch_warnings(), offline_hub():
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            yield
    finally:
        dlog.set_verbosity(levels[0])
        tlog.set_verbosity(levels[1])
        if was[0]:
            dlog.enable_progress_bar()
        if was[1]:
            tlog.enable_progress_bar()


def load_pipeline(source: str | os.PathLike, kind: str, device: str | torch.device = "cpu",
                  dtype: torch.dtype | None = None, controlnet=None):
    """Load a pipeline of ``kind`` ("img2img", "unclip" or "controlnet") offline; dtype defaults to float32 on CPU,
    bf16 on CUDA. ``controlnet`` (a ``ControlNetModel``) is required by, and only taken by, "controlnet".

    Returns ``(pipeline, record)``, the record of :func:`resolve_pipeline` plus ``"class"``. Raises
    :class:`InputError` for an unknown kind, :class:`CorruptFileError` for a folder that does not load as it.
    """
    check_option("pipeline kind", kind, KINDS)
    import diffusers

    folder, record = resolve_pipeline(source)
    device = torch.device(device)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    cls = getattr(diffusers, KINDS[kind])
    if (controlnet is None) == (kind == "controlnet"):
        raise InputError("a ControlNet goes with the controlnet pipeline only", expected="controlnet with kind "
                         "'controlnet'", found=f"kind {kind!r}, controlnet {'given' if controlnet else 'none'}")
    kwargs = {"local_files_only": True, "torch_dtype": dtype}
    if kind in ("img2img", "controlnet"):
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    if controlnet is not None:
        with quiet_loading():
            kwargs["controlnet"] = controlnet if controlnet.dtype == dtype else controlnet.to(dtype)
    try:
        with quiet_loading():
            pipe = cls.from_pretrained(folder, **kwargs)
    except Exception as exc:
        raise CorruptFileError(f"folder does not load as a {kind} pipeline", path=folder, expected=cls.__name__,
                               found=_first_line(exc)) from exc
    if kind != "unclip" and pipe.unet.config.class_embed_type is not None:
        raise CorruptFileError(f"folder does not load as a {kind} pipeline", path=folder, expected=cls.__name__,
                               found="a U-Net that needs class labels (an unCLIP U-Net?)")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device), {**record, "class": cls.__name__}


def load_autoencoder(source: str | os.PathLike, device: str | torch.device = "cpu"):
    """Load an ``AutoencoderKL`` (float32): a standalone folder, or the ``vae`` of a pipeline folder / cached id.

    Returns ``(vae, record)``. Raises :class:`MissingInputError` when nothing is found locally,
    :class:`CorruptFileError` when the folder holds something else.
    """
    from diffusers import AutoencoderKL

    folder = Path(source).expanduser()
    if (folder / "config.json").is_file():
        record = {"autoencoder": str(folder.resolve())}
    else:
        pipeline, record = resolve_pipeline(source)
        folder, record = pipeline / "vae", {**record, "subfolder": "vae"}
    try:
        found = json.loads((folder / "config.json").read_text()).get("_class_name")
    except (OSError, ValueError) as exc:
        raise CorruptFileError("autoencoder config not readable", path=folder / "config.json",
                               expected="AutoencoderKL", found=_first_line(exc)) from exc
    if found != "AutoencoderKL":
        raise CorruptFileError("not an AutoencoderKL folder", path=folder, expected="AutoencoderKL", found=str(found))
    try:
        with quiet_loading():
            vae = AutoencoderKL.from_pretrained(folder, local_files_only=True, torch_dtype=torch.float32)
    except Exception as exc:
        raise CorruptFileError("autoencoder weights not readable", path=folder, expected="AutoencoderKL",
                               found=_first_line(exc)) from exc
    return vae.to(device).eval(), {**record, "class": "AutoencoderKL"}


def latent_shape(vae, image_size: int) -> tuple[int, int, int]:
    """``(latent_channels, h, w)`` of a square image of side ``image_size`` (px)."""
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if image_size % factor:
        raise InputError("image size not divisible by the autoencoder's downsampling factor",
                         expected=f"a multiple of {factor}", found=str(image_size))
    return int(vae.config.latent_channels), image_size // factor, image_size // factor


@torch.no_grad()
def encode_images(vae, images: np.ndarray, *, batch_size: int = 16, device: str | torch.device = "cpu",
                  size: int | None = None) -> np.ndarray:
    """Scaled VAE latents of images: posterior mean times ``scaling_factor``.

    ``images`` (N, H, W, 3) uint8, resized to ``size`` x ``size`` (PIL bicubic) when given; returns
    (N, C, h, w) float32. The VAE is moved to ``device``.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise DataValueError("images must be uint8 RGB", expected="(N, H, W, 3) uint8, N > 0",
                             found=f"{images.shape} {images.dtype}")
    if size is not None and images.shape[1:3] != (size, size):
        from PIL import Image

        images = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in images])
    vae = vae.to(device)
    dtype = next(vae.parameters()).dtype
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start:start + batch_size]).to(device).permute(0, 3, 1, 2)
        x = (x.float() / 127.5 - 1.0).to(dtype)
        out.append((vae.encode(x).latent_dist.mean * vae.config.scaling_factor).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def decode_latents(vae, latents: np.ndarray | torch.Tensor, *, batch_size: int = 16,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Images (N, H, W, 3) uint8 from scaled latents (N, C, h, w), as :func:`encode_images` gives."""
    latents = torch.as_tensor(latents)
    if latents.ndim != 4 or latents.shape[1] != vae.config.latent_channels or not len(latents):
        raise DataValueError("latents do not fit the autoencoder",
                             expected=f"(N, {vae.config.latent_channels}, h, w)", found=str(tuple(latents.shape)))
    vae = vae.to(device)
    dtype = next(vae.parameters()).dtype
    out = []
    for start in range(0, len(latents), batch_size):
        z = latents[start:start + batch_size].to(device, dtype) / vae.config.scaling_factor
        x = ((vae.decode(z).sample.float() + 1.0) * 127.5).clamp(0, 255).round()
        out.append(x.permute(0, 2, 3, 1).to(torch.uint8).cpu())
    return torch.cat(out).numpy()


def _generators(pipe, seeds: Sequence[int], n: int) -> list[torch.Generator]:
    if len(seeds) != n:
        raise InputError("one seed per sample is needed", expected=f"{n} seeds", found=f"{len(seeds)}")
    return [torch.Generator(device=pipe.device).manual_seed(int(s)) for s in seeds]


def _prompt(pipe, prompt_embeds, n: int) -> dict:
    """``prompt_embeds`` cast to the pipeline, or the empty prompt for each sample."""
    if prompt_embeds is None:
        return {"prompt": [""] * n}
    embeds = torch.as_tensor(prompt_embeds)
    width = pipe.text_encoder.config.hidden_size
    if embeds.ndim != 3 or embeds.shape[0] != n or embeds.shape[2] != width:
        raise DataValueError("prompt_embeds do not fit the pipeline", expected=f"({n}, n_tokens, {width})",
                             found=str(tuple(embeds.shape)))
    return {"prompt_embeds": embeds.to(pipe.device, pipe.dtype)}


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return (np.asarray(images, dtype=np.float32) * 255).round().clip(0, 255).astype(np.uint8)


def generate_img2img(pipe, latents: np.ndarray | torch.Tensor, prompt_embeds: np.ndarray | torch.Tensor | None,
                     *, seeds: Sequence[int], strength: float = 0.75, steps: int = 50,
                     guidance_scale: float = 7.5) -> np.ndarray:
    """Images (B, H, W, 3) uint8 from scaled latents (B, 4, h, w) and optional ``prompt_embeds`` (B, T, D).

    ``strength`` is the fraction of the ``steps`` run from the noised latent; guidance applies when
    ``guidance_scale`` > 1 (against the empty prompt).
    """
    latents = torch.as_tensor(latents)
    if latents.ndim != 4 or latents.shape[1] != 4 or pipe.unet.config.in_channels != 4:
        raise DataValueError("diffusers' img2img takes only 4-channel latents as latents",
                             expected=f"(B, 4, h, w) for a UNet of {pipe.unet.config.in_channels} channels",
                             found=str(tuple(latents.shape)))
    if not 0 < strength <= 1 or int(steps * strength) < 1:
        raise InputError("strength leaves no denoising step", expected="0 < strength <= 1, steps * strength >= 1",
                         found=f"strength {strength}, steps {steps}")
    n = len(latents)
    out = pipe(image=latents.to(pipe.device, pipe.dtype), **_prompt(pipe, prompt_embeds, n), strength=strength,
               num_inference_steps=steps, guidance_scale=guidance_scale, generator=_generators(pipe, seeds, n),
               output_type="np")
    return _to_uint8(out.images)


def generate_unclip(pipe, image_embeds: np.ndarray | torch.Tensor, *, seeds: Sequence[int], steps: int = 20,
                    guidance_scale: float = 7.5, noise_level: int = 0,
                    prompt_embeds: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Images (B, H, W, 3) uint8 conditioned on ``image_embeds`` (B, E); the size is the UNet's sample size."""
    embeds = torch.as_tensor(image_embeds)
    width = pipe.unet.config.projection_class_embeddings_input_dim // 2
    if embeds.ndim != 2 or embeds.shape[1] != width:
        raise DataValueError("image_embeds do not fit the pipeline", expected=f"(B, {width})",
                             found=str(tuple(embeds.shape)))
    n_levels = pipe.image_noising_scheduler.config.num_train_timesteps
    if not 0 <= noise_level < n_levels:
        raise InputError("noise_level out of range", expected=f"0 to {n_levels - 1}", found=str(noise_level))
    n, side = len(embeds), pipe.unet.config.sample_size * pipe.vae_scale_factor
    out = pipe(image_embeds=embeds.to(pipe.device, pipe.dtype), **_prompt(pipe, prompt_embeds, n), height=side,
               width=side, num_inference_steps=steps, guidance_scale=guidance_scale, noise_level=noise_level,
               generator=_generators(pipe, seeds, n), output_type="np")
    return _to_uint8(out.images)


def control_image(control: torch.Tensor, factor: int) -> torch.Tensor:
    """Control maps (B, C, h, w) at latent size repeated to pixel size (B, C, h * factor, w * factor), the size
    ``StableDiffusionControlNetPipeline`` takes; the ControlNet's conditioning embedding downsamples them back."""
    return torch.nn.functional.interpolate(control, scale_factor=factor, mode="nearest")


def generate_controlnet(pipe, prompt_embeds: np.ndarray | torch.Tensor, control: np.ndarray | torch.Tensor, *,
                        seeds: Sequence[int], steps: int = 50, guidance_scale: float = 5.0,
                        control_scale: float = 1.0) -> np.ndarray:
    """Images (B, H, W, 3) uint8 from ``prompt_embeds`` (B, T, D) and control maps (B, C, h, w) at latent size.

    ``control_scale`` multiplies the ControlNet's residuals (NeuroPictor's alpha, eq. 7); guidance
    applies when ``guidance_scale`` > 1, against the empty prompt with the same control map. The
    image side is the UNet's sample size times the VAE factor.
    """
    control = torch.as_tensor(control)
    c, side = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    if control.ndim != 4 or control.shape[1:] != (c, side, side):
        raise DataValueError("control maps do not fit the pipeline", expected=f"(B, {c}, {side}, {side})",
                             found=str(tuple(control.shape)))
    n = len(control)
    px = side * pipe.vae_scale_factor
    image = control_image(control.to(pipe.device, pipe.dtype), pipe.vae_scale_factor)
    out = pipe(image=image, **_prompt(pipe, prompt_embeds, n), height=px, width=px,
               num_inference_steps=steps, guidance_scale=guidance_scale, controlnet_conditioning_scale=control_scale,
               generator=_generators(pipe, seeds, n), output_type="np")
    return _to_uint8(out.images)


def component_checksum(folder: Path) -> str:
    """Checksum of a diffusers model folder's weights file (VAE, U-Net...): SHA-256, or the fingerprint of
    a file over :data:`~fmrikit.io.provenance.FULL_HASH_LIMIT`."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix in (".safetensors", ".bin")) \
        if Path(folder).is_dir() else []
    if not files:
        raise MissingInputError("no model weights", path=folder, expected="a .safetensors file")
    return checksum_digest(file_checksum(files[0]))


@dataclass
class Route:
    """What a reconstruction method gives ``reconstruct``: its model's voxels and the generator of its images.

    ``predict`` maps z-scored betas (B, V) over ``ijk`` to (prediction (B, D), text embeddings or
    None); ``generate`` maps those and one seed per input to uint8 images (B, H, W, 3). ``mesh`` names the
    surface of a model trained on a surface dataset (``ijk`` then holds (hemi, vertex, 0)), "" for a volume.
    ``train_sessions``: the sessions of ``dataset`` whose non-shared trials trained the model (None: the model
    saw none of this subject's trials, or does not say).
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
    mesh: str = ""
    train_sessions: list[int] | None = None


def image_targets(info: DatasetInfo, stim_ids: np.ndarray, vae, image_size: int, device) -> np.ndarray:
    """Scaled autoencoder latents of stimuli, float32 (n, C, h, w), encoded a block at a time."""
    from fmrikit.diffusion import encode_images

    out = [encode_images(vae, read_stimuli(info, stim_ids[s:s + 256]), size=image_size, device=device)
           for s in range(0, len(stim_ids), 256)]
    return np.concatenate(out)


@torch.no_grad()
def text_targets(captions: list[list[str]], tokenizer, text_encoder, n_tokens: int, device,
                 batch_size: int = 64) -> np.ndarray:
    """CLIP text-condition embeddings of captions: first ``n_tokens`` tokens, averaged over an image's captions.

    Parameters
    ----------
    captions : list of list of str
        Per image, its captions.

    Returns
    -------
    ndarray of float32, shape (n_images, n_tokens, D)
        The text encoder's last hidden state, as Stable Diffusion conditions on it. CLIP's text
        transformer is causal, so these tokens equal those of the full 77-token encoding.
    """
    flat = [c for caps in captions for c in caps]
    owner = np.repeat(np.arange(len(captions)), [len(c) for c in captions])
    text_encoder = text_encoder.to(device)
    chunks = []
    for s in range(0, len(flat), batch_size):
        ids = tokenizer(flat[s:s + batch_size], padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids.to(device)
        chunks.append(text_encoder(ids)[0][:, :n_tokens].float().cpu())
    per_caption = torch.cat(chunks).numpy()
    total = np.zeros((len(captions),) + per_caption.shape[1:], np.float64)
    np.add.at(total, owner, per_caption)
    return (total / np.bincount(owner, minlength=len(captions))[:, None, None]).astype(np.float32)


def text_model(pipeline_folder: Path):
    """The CLIP tokenizer and text encoder (eval mode) of a Stable Diffusion folder."""
    from transformers import CLIPTextModel, CLIPTokenizer

    from fmrikit.diffusion import quiet_loading

    try:
        with quiet_loading():
            tokenizer = CLIPTokenizer.from_pretrained(pipeline_folder / "tokenizer", local_files_only=True)
            encoder = CLIPTextModel.from_pretrained(pipeline_folder / "text_encoder", local_files_only=True)
    except (OSError, ValueError) as exc:
        raise MissingInputError("the pipeline has no usable CLIP text encoder", path=pipeline_folder,
                                expected="tokenizer/ and text_encoder/ (latent-mapper: or pass --no-text)",
                                found=str(exc).splitlines()[0]) from exc
    return tokenizer, encoder.eval()
