"""GPU memory plans: how much memory a model preset needs, estimated without a GPU.

A plan is an *estimate*, not a measurement. Parameter counts are exact: the models are built on
PyTorch's ``meta`` device (shapes only, no storage) from the configs written below. Activation
memory is measured device-independently by running the forward pass on ``meta`` tensors and
adding up the bytes autograd saves for the backward pass (training) or the peak of live tensors
(inference). What the ``meta`` device cannot show (CUDA kernels' workspaces, the CUDA context,
allocator fragmentation) is left out, and the plan says so.

Only :func:`plan_neuropictor` exists so far: NeuroPictor (Huo et al., 2024) -- a ViT encoder of
256 x 256 fMRI flatmaps, a high-level guiding network to the text-condition space, a feature
transformation to a latent-resolution control map, a ControlNet and a frozen Stable Diffusion 2.1.

Examples
--------
>>> from fmrikit.methods.neuropictor.plan import plan_neuropictor, format_plan  # doctest: +SKIP
>>> print(format_plan(plan_neuropictor(batch_size=16)))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import TYPE_CHECKING, Any, Iterator

from fmrikit._logging import logger
from fmrikit.errors import FmrikitError, InputError
from fmrikit.checks import check_option
from fmrikit.engine.memory import (ByteCounter, COMMON_GPUS_GIB, GIB, HEADROOM, PRECISIONS, count_parameters,
                                   format_gib, format_millions, measure_no_grad_peak, mixed_precision_mode,
                                   storage_key, tensors_of, verdict)

if TYPE_CHECKING:  # torch stays out of ``import fmrikit``
    from torch import nn

__all__ = ["SD21_TEXT_ENCODER_CONFIG", "SD21_UNET_CONFIG", "SD21_VAE_CONFIG", "format_plan", "plan_neuropictor",
           "plan_rows"]


# Stable Diffusion 2.1 "base" (512 x 512 images, 64 x 64 latents). The 768 model differs only in
# sample_size (96) and prediction type, which change no parameter.
SD21_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "cross_attention_dim": 1024,
    "attention_head_dim": (5, 10, 20, 20),  # diffusers' name for the number of heads in SD 2.x: 64 channels each
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "act_fn": "silu",
}
SD21_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
}
# OpenCLIP ViT-H/14 text tower as shipped with SD 2.x: 23 of its 24 layers (SD uses the penultimate one).
SD21_TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 512,
}
TEXT_TOKENS = 77
VAE_SCALE = 8  # pixels per latent pixel
LATENT_CHANNELS = 4
AE_PATCH = 16
SEMANTIC_LOSS_WEIGHT = 0.1

# Published parameter counts the computed ones are checked against.
PUBLISHED_PARAMETERS: dict[str, tuple[float, str]] = {
    "unet": (865.9e6, "SD 2.1 UNet"),
    "vae": (83.7e6, "SD 2.x VAE"),
    "text_encoder": (340.4e6, "OpenCLIP ViT-H/14 text tower, SD 2.x's 23 layers"),
    "controlnet_sd15": (361.3e6, "ControlNet for SD 1.5"),
    "total": (2.0e9, "NeuroPictor, paper Tab. 4"),
}
PAPER_INFERENCE_GB = 13.6  # paper Tab. 4: fp32, batch 1, 50 DDIM steps, RTX A6000 (GB as printed)




# --------------------------------------------------------------------------------------------------------------
# validation


def _check_int(name: str, value: Any, minimum: int, multiple: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value % multiple:
        what = f"an integer >= {minimum}" + (f" and a multiple of {multiple}" if multiple > 1 else "")
        raise InputError(f"invalid {name}", expected=what, found=repr(value))
    return value


# --------------------------------------------------------------------------------------------------------------
# the NeuroPictor modules that are not Stable Diffusion's


@functools.lru_cache(maxsize=None)
def _views(conditioner) -> tuple[nn.Module, nn.Module]:
    """The guiding network and the feature transformation of a ``NeuroPictorConditioner`` as modules that map
    tokens (B, L, d) to (F_sem, F~txt) and to the control map (B, C, h, w), sharing its parameters."""
    from torch import nn

    class Guiding(nn.Module):
        def __init__(self):
            super().__init__()
            self.to_text, self.auxiliary, self.auxiliary_out = (conditioner.to_text, conditioner.auxiliary,
                                                                conditioner.auxiliary_out)

        def forward(self, tokens):
            text = self.to_text(tokens)
            return text + self.auxiliary_out(self.auxiliary(tokens)), text

    class Transform(nn.Module):
        def __init__(self):
            super().__init__()
            self.to_control = conditioner.to_control

        def forward(self, tokens):
            return self.to_control(tokens).reshape((len(tokens),) + conditioner.control_shape)

    return Guiding(), Transform()


def _build_models(image_size: int, flatmap_size: int, ae_width: int, ae_depth: int,
                  ae_heads: int) -> dict[str, nn.Module]:
    """All NeuroPictor modules on the ``meta`` device, float32, in training mode: the project's own
    conditioner (split into encoder, guiding network and feature transformation) and ControlNet."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from fmrikit.methods.neuropictor.model import build_neuropictor

    latent = image_size // VAE_SCALE
    unet_cfg = dict(SD21_UNET_CONFIG, sample_size=latent)
    encoder = dict(image_size=flatmap_size, patch_size=AE_PATCH, width=ae_width, depth=ae_depth, heads=ae_heads)
    n_down = VAE_SCALE.bit_length() - 1  # log2
    with torch.device("meta"):
        unet = UNet2DConditionModel(**unet_cfg)
        conditioner, controlnet = build_neuropictor(encoder, unet, text_tokens=TEXT_TOKENS,
                                                    text_width=SD21_UNET_CONFIG["cross_attention_dim"],
                                                    vae_downsamplings=n_down)
        guiding, transform = _views(conditioner)
        models = {
            "fmri_encoder": conditioner.encoder,
            "guiding_network": guiding,
            "feature_transform": transform,
            "controlnet": controlnet,
            "unet": unet,
            "vae": AutoencoderKL(**SD21_VAE_CONFIG),
            "text_encoder": CLIPTextModel(CLIPTextConfig(**SD21_TEXT_ENCODER_CONFIG)),
        }
    for m in models.values():
        m.train()
    return models


_TRAINABLE = ("fmri_encoder", "guiding_network", "feature_transform", "controlnet")
_ROLES = {
    "fmri_encoder": "ViT encoder of the flatmap autoencoder (fine-tuned)",
    "guiding_network": "high-level guiding network: tokens -> 77 x 1024 text condition",
    "feature_transform": "feature transformation: tokens -> 4 x 64 x 64 control map",
    "controlnet": "ControlNet copy of the UNet encoder (hint encoder without downsampling)",
    "unet": "SD 2.1 UNet (frozen, in the backward path)",
    "vae": "SD 2.1 VAE (frozen; encodes targets, decodes samples)",
    "text_encoder": "OpenCLIP ViT-H text encoder (frozen; caption targets, empty prompt)",
}


def _reference_counts() -> dict[str, int]:
    """Parameter counts of reference models that are not part of NeuroPictor (published-count checks)."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    with torch.device("meta"):
        sd15 = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # SD 1.5 = diffusers' defaults
        sd21 = UNet2DConditionModel(**SD21_UNET_CONFIG)
        return {"controlnet_sd15": count_parameters(ControlNetModel.from_unet(sd15)),
                "controlnet_sd21_default_hint": count_parameters(ControlNetModel.from_unet(sd21))}


# --------------------------------------------------------------------------------------------------------------
# measuring on the meta device


def _checkpoint_units(models: dict[str, nn.Module]) -> list[nn.Module]:
    """The modules diffusers checkpoints (ResNet and transformer blocks), plus the fMRI encoder's blocks."""
    from diffusers.models.attention import BasicTransformerBlock
    from diffusers.models.resnet import ResnetBlock2D

    units = [m for name in ("controlnet", "unet") for m in models[name].modules()
             if isinstance(m, (ResnetBlock2D, BasicTransformerBlock))]
    enc = models["fmri_encoder"]
    blocks = getattr(enc, "blocks", None) or getattr(enc, "layers", None)
    if blocks is None:
        import torch

        blocks = [m for m in enc.modules() if isinstance(m, torch.nn.TransformerEncoderLayer)]
    return units + list(blocks)


@contextlib.contextmanager
def _emulated_checkpointing(units: list[nn.Module], outer: ByteCounter) -> Iterator[dict[str, int]]:
    """Count what activation checkpointing keeps: each unit's inputs, and the largest unit's own saved tensors.

    Inside a unit, the tensors autograd saves go to a per-unit counter instead of ``outer``: with
    checkpointing they are dropped after the forward and recomputed, one unit at a time, in the backward.
    """
    import torch

    state = {"recompute_bytes": 0}
    handles, stack = [], []

    def pre(module, args, kwargs):
        needs_grad = torch.is_grad_enabled() and (
            any(t.requires_grad for t in tensors_of((args, kwargs))) or any(p.requires_grad for p in module.parameters()))
        if not needs_grad or stack:  # only the outermost unit is a checkpoint region
            stack.append(None)
            return
        for t in tensors_of((args, kwargs)):
            outer.add(t)
        inner = ByteCounter(outer.exclude)
        hooks = torch.autograd.graph.saved_tensors_hooks(lambda t: (inner.add(t), t)[1], lambda t: t)
        hooks.__enter__()
        stack.append((inner, hooks))

    def post(module, args, kwargs, output):
        entry = stack.pop()
        if entry is not None:
            inner, hooks = entry
            hooks.__exit__(None, None, None)
            state["recompute_bytes"] = max(state["recompute_bytes"], inner.bytes)

    for m in units:
        handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(m.register_forward_hook(post, with_kwargs=True))
    try:
        yield state
    finally:
        for h in handles:
            h.remove()


def _weight_keys(models: dict[str, nn.Module]) -> set[int]:
    return {storage_key(t) for m in models.values() for t in (*m.parameters(), *m.buffers())}


def _set_training_dtypes(models: dict[str, nn.Module], precision: str) -> None:
    """Trainable parts: float32 masters with gradients; frozen parts: in the compute precision, no gradients."""
    import torch

    compute = getattr(torch, PRECISIONS[precision])
    for name, m in models.items():
        trainable = name in _TRAINABLE
        torch.nn.Module.to(m, torch.float32 if trainable else compute)  # ModelMixin.to warns about dtypes
        m.requires_grad_(trainable)


def _measure_training(models: dict[str, nn.Module], batch_size: int, image_size: int, flatmap_size: int,
                      precision: str, gradient_checkpointing: bool) -> dict[str, int]:
    """Bytes autograd saves for the backward of one NeuroPictor training step, on the meta device.

    The step: fMRI encoder on (B, 1, F, F) flatmaps -> guiding network and feature transformation ->
    ControlNet(z_t, t, text condition, control map) -> frozen UNet with the ControlNet residuals -> diffusion
    loss + semantic loss. Parameters are set to their training dtypes first (see ``_set_training_dtypes``).
    """
    import torch
    import torch.nn.functional as F

    from fmrikit.diffusion import control_image

    low = None if precision == "fp32" else getattr(torch, PRECISIONS[precision])
    exclude = _weight_keys(models)
    counter = ByteCounter(exclude)
    latent = image_size // VAE_SCALE
    text_width = SD21_UNET_CONFIG["cross_attention_dim"]
    meta = torch.device("meta")
    units = _checkpoint_units(models) if gradient_checkpointing else []
    with contextlib.ExitStack() as stack:
        mode = stack.enter_context(mixed_precision_mode(low, exclude))
        ckpt = stack.enter_context(_emulated_checkpointing(units, counter))
        stack.enter_context(torch.autograd.graph.saved_tensors_hooks(lambda t: (counter.add(t), t)[1],
                                                                     lambda t: t))
        flatmaps = torch.empty(batch_size, 1, flatmap_size, flatmap_size, device=meta)
        z_t = torch.empty(batch_size, LATENT_CHANNELS, latent, latent, device=meta)
        noise = torch.empty_like(z_t)
        timesteps = torch.zeros(batch_size, dtype=torch.long, device=meta)
        caption_target = torch.empty(batch_size, TEXT_TOKENS, text_width, device=meta)
        tokens = models["fmri_encoder"](flatmaps)
        condition, text = models["guiding_network"](tokens)
        control = models["feature_transform"](tokens)
        down, mid = models["controlnet"](z_t, timesteps, encoder_hidden_states=condition,
                                         controlnet_cond=control_image(control, VAE_SCALE), return_dict=False)
        eps = models["unet"](z_t, timesteps, encoder_hidden_states=condition, down_block_additional_residuals=down,
                             mid_block_additional_residual=mid, return_dict=False)[0]
        loss = F.mse_loss(eps, noise) + SEMANTIC_LOSS_WEIGHT * F.mse_loss(text, caption_target)
        if not loss.requires_grad:
            raise FmrikitError("the planned training step has no gradient path")
        trainable = {id(p) for name in _TRAINABLE for p in models[name].parameters()}
        result = {"saved_bytes": counter.bytes, "largest_saved_bytes": counter.largest,
                  "recompute_bytes": ckpt["recompute_bytes"],
                  "autocast_copy_bytes": sum(t.untyped_storage().nbytes() for (pid, dtype), t in mode.cache.items()
                                             if pid in trainable and dtype == low)}
    del loss, eps, down, mid  # the graph (and its saved meta tensors) goes now
    return result


def _measure_inference(models: dict[str, nn.Module], batch_size: int, image_size: int, flatmap_size: int,
                       precision: str) -> dict[str, int]:
    """Peak live bytes of the inference stages, all modules in the compute dtype, on the meta device."""
    import torch

    dtype = getattr(torch, PRECISIONS[precision])
    for m in models.values():
        torch.nn.Module.to(m, dtype).requires_grad_(False).eval()
    exclude = _weight_keys(models)
    latent = image_size // VAE_SCALE
    meta = torch.device("meta")

    def condition():
        tokens = models["fmri_encoder"](torch.empty(batch_size, 1, flatmap_size, flatmap_size, device=meta,
                                                    dtype=dtype))
        cond, _ = models["guiding_network"](tokens)
        empty = models["text_encoder"](torch.zeros(1, TEXT_TOKENS, dtype=torch.long, device=meta))[0]
        return torch.cat([empty.expand(batch_size, -1, -1), cond]), models["feature_transform"](tokens)

    def denoise_step():  # one classifier-free-guidance step: ControlNet + UNet on the doubled batch
        n = 2 * batch_size
        z = torch.empty(batch_size, LATENT_CHANNELS, latent, latent, device=meta, dtype=dtype)
        cond = torch.empty(n, TEXT_TOKENS, SD21_UNET_CONFIG["cross_attention_dim"], device=meta, dtype=dtype)
        control = torch.empty(n, LATENT_CHANNELS, image_size, image_size, device=meta, dtype=dtype)  # pixel size
        z_in = torch.cat([z, z])
        t = torch.zeros(n, dtype=torch.long, device=meta)
        down, mid = models["controlnet"](z_in, t, encoder_hidden_states=cond, controlnet_cond=control,
                                         return_dict=False)
        eps = models["unet"](z_in, t, encoder_hidden_states=cond, down_block_additional_residuals=down,
                             mid_block_additional_residual=mid, return_dict=False)[0]
        uncond, cond_eps = eps.chunk(2)
        return z - (uncond + 5.0 * (cond_eps - uncond))

    def decode():
        z = torch.empty(batch_size, LATENT_CHANNELS, latent, latent, device=meta, dtype=dtype)
        return models["vae"].decode(z).sample

    return {"condition_peak_bytes": measure_no_grad_peak(condition, exclude, None),
            "denoise_step_peak_bytes": measure_no_grad_peak(denoise_step, exclude, None),
            "vae_decode_peak_bytes": measure_no_grad_peak(decode, exclude, None)}


def _measure_targets(models: dict[str, nn.Module], batch_size: int, image_size: int, precision: str) -> int:
    """Peak live bytes of encoding the training targets (VAE latents, caption features) without gradients."""
    import torch

    dtype = getattr(torch, PRECISIONS[precision])
    exclude = _weight_keys(models)
    meta = torch.device("meta")

    def targets():
        latents = models["vae"].encode(torch.empty(batch_size, 3, image_size, image_size, device=meta,
                                                   dtype=dtype)).latent_dist.mean
        captions = models["text_encoder"](torch.zeros(batch_size, TEXT_TOKENS, dtype=torch.long, device=meta))[0]
        return latents, captions

    return measure_no_grad_peak(targets, exclude, None)


# --------------------------------------------------------------------------------------------------------------
# the plan


def plan_neuropictor(batch_size: int = 16, *, image_size: int = 512, flatmap_size: int = 256, ae_width: int = 1024,
                     ae_depth: int = 24, ae_heads: int = 16, precision: str = "bf16",
                     gradient_checkpointing: bool = False) -> dict[str, Any]:
    """Estimate the GPU memory NeuroPictor needs to train and to sample, per GPU.

    Parameters
    ----------
    batch_size : int
        Samples per GPU and step (the paper: 64 over 4 GPUs in pretraining, 32 over 2 in fine-tuning: 16).
        For inference, images sampled at once (classifier-free guidance runs the networks on twice as many).
    image_size : int
        Image side in pixels, a multiple of 8; latents are ``image_size // 8`` pixels on a side.
    flatmap_size : int
        Flatmap side in pixels, a multiple of 16 (patch size); ``(flatmap_size // 16) ** 2 + 1`` tokens.
    ae_width, ae_depth, ae_heads : int
        Width, depth and heads of the flatmap autoencoder's ViT encoder (the paper: 1024, 24, 16).
    precision : {"bf16", "fp16", "fp32"}
        Compute precision: mixed precision (autocast) with float32 master weights for the trainable parts
        and frozen parts stored in it, or float32 throughout. Inference runs fully in it.
    gradient_checkpointing : bool
        Plan with activation checkpointing of the ResNet and transformer blocks (as diffusers does) and of
        the encoder's blocks.

    Returns
    -------
    dict
        JSON-serialisable: ``settings``, ``components`` (parameters, trainable or frozen), ``parameters``,
        ``published_checks``, ``training`` and ``inference`` (bytes), ``gpus`` (verdicts against common cards),
        ``current_device`` (the CUDA card present, or None), ``method`` (how it was estimated, and its biases).
        All memory in bytes. An estimate from meta-device models, not a measurement.

    Raises
    ------
    InputError
        For a batch size, size or precision out of range.
    """
    _check_int("batch_size", batch_size, 1)
    _check_int("image_size", image_size, 64, VAE_SCALE)
    _check_int("flatmap_size", flatmap_size, AE_PATCH, AE_PATCH)
    _check_int("ae_width", ae_width, 1)
    _check_int("ae_depth", ae_depth, 1)
    _check_int("ae_heads", ae_heads, 1)
    if ae_width % ae_heads:
        raise InputError("ae_width must be divisible by ae_heads", expected=f"a multiple of {ae_heads}",
                         found=str(ae_width))
    check_option("precision", precision, PRECISIONS)
    import torch

    t0 = time.process_time()
    models = _build_models(image_size, flatmap_size, ae_width, ae_depth, ae_heads)
    counts = {name: count_parameters(m) for name, m in models.items()}
    trainable = sum(counts[n] for n in _TRAINABLE)
    frozen = sum(counts.values()) - trainable
    reference = _reference_counts()
    compute_bytes = torch.empty((), dtype=getattr(torch, PRECISIONS[precision])).element_size()

    # training. Fixed: frozen weights in the compute precision; float32 weights, gradients and AdamW's two
    # moments of the trainable parts. Per sample: what autograd saves (measured at batch 1, scaled).
    frozen_bytes = frozen * compute_bytes
    trainable_bytes = trainable * 16
    static = frozen_bytes + trainable_bytes
    _set_training_dtypes(models, precision)
    act = _measure_training(models, 1, image_size, flatmap_size, precision, gradient_checkpointing)
    targets = _measure_targets(models, 1, image_size, precision)
    autocast_copies = act["autocast_copy_bytes"]
    per_sample = act["saved_bytes"]
    # The backward holds, next to what is left of the saved tensors, the gradients of the activations of
    # the layer in progress: a few of the largest saved tensors (float32 gradients of low-precision ones).
    transient = 4 * act["largest_saved_bytes"] + act["recompute_bytes"]
    optimizer_step = trainable * 4  # foreach AdamW: a float32 sqrt(v) temporary of every trainable tensor
    phases = {"encode_targets": static + targets * batch_size,
              "forward_backward": static + autocast_copies + (per_sample + transient) * batch_size,
              "optimizer_step": static + optimizer_step}
    training_total = max(phases.values())

    # inference: every module in the compute precision
    inf = _measure_inference(models, 1, image_size, flatmap_size, precision)
    inference_weights = sum(counts.values()) * compute_bytes
    inference_per_sample = max(inf.values())
    inference_total = inference_weights + inference_per_sample * batch_size
    # the paper's setting (float32, one image); activations scale with the element size
    fp32_batch1 = sum(counts.values()) * 4 + inference_per_sample * 4 // compute_bytes

    components = [{"name": name, "parameters": counts[name], "trainable": name in _TRAINABLE,
                   "role": _ROLES[name]} for name in models]
    checks = []
    computed = dict(counts, **reference, total=sum(counts.values()))
    for key, (published, what) in PUBLISHED_PARAMETERS.items():
        checks.append({"name": key, "what": what, "computed": computed[key], "published": published,
                       "relative_difference": round(computed[key] / published - 1, 4)})
    checks.append({"name": "controlnet_sd21_default_hint", "what": "SD 2.1 ControlNet, default hint encoder "
                   "(the 361M often quoted is SD 1.5's)",
                   "computed": reference["controlnet_sd21_default_hint"], "published": None,
                   "relative_difference": None})

    def max_batch(capacity: float) -> int:
        room = HEADROOM * capacity
        if phases["optimizer_step"] > room:
            return 0
        per = max(per_sample + transient, targets)
        return max(0, int((room - static - autocast_copies) // per))

    gpus = [{"name": name, "memory_bytes": gib * GIB, "training": verdict(training_total, gib * GIB),
             "inference": verdict(inference_total, gib * GIB), "max_training_batch": max_batch(gib * GIB)}
            for name, gib in COMMON_GPUS_GIB.items()]
    current = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        current = {"name": props.name, "memory_bytes": int(props.total_memory),
                   "training": verdict(training_total, props.total_memory),
                   "inference": verdict(inference_total, props.total_memory),
                   "max_training_batch": max_batch(props.total_memory)}
    elapsed = time.process_time() - t0
    logger.debug("planned neuropictor in %.1f s of CPU time", elapsed)
    return {
        "plan": "neuropictor",
        "estimate": True,
        "note": "estimate from models built on the meta device, not a measurement on a GPU",
        "settings": {"batch_size": batch_size, "image_size": image_size, "latent_size": image_size // VAE_SCALE,
                     "flatmap_size": flatmap_size, "flatmap_tokens": (flatmap_size // AE_PATCH) ** 2 + 1,
                     "ae_width": ae_width, "ae_depth": ae_depth, "ae_heads": ae_heads, "precision": precision,
                     "gradient_checkpointing": gradient_checkpointing, "optimizer": "AdamW",
                     "sampler": "50 DDIM steps, classifier-free guidance (batch doubled)"},
        "components": components,
        "parameters": {"total": trainable + frozen, "trainable": trainable, "frozen": frozen},
        "published_checks": checks,
        "training": {
            "frozen_weight_bytes": frozen_bytes,
            "trainable_state_bytes": trainable_bytes,
            "static_bytes": static,
            "autocast_weight_copy_bytes": autocast_copies,
            "activation_bytes_per_sample": per_sample,
            "backward_transient_bytes_per_sample": transient,
            "checkpoint_recompute_bytes_per_sample": act["recompute_bytes"],
            "target_encoding_peak_bytes_per_sample": targets,
            "optimizer_step_transient_bytes": optimizer_step,
            "activation_bytes": (per_sample + transient) * batch_size,
            "phase_peak_bytes": phases,
            "total_bytes": training_total,
        },
        "inference": {
            "weight_bytes": inference_weights,
            "condition_peak_bytes_per_sample": inf["condition_peak_bytes"],
            "denoise_step_peak_bytes_per_sample": inf["denoise_step_peak_bytes"],
            "vae_decode_peak_bytes_per_sample": inf["vae_decode_peak_bytes"],
            "activation_bytes": inference_per_sample * batch_size,
            "total_bytes": inference_total,
            "fp32_batch1_bytes": fp32_batch1,
            "paper_fp32_batch1_gb": PAPER_INFERENCE_GB,
        },
        "gpus": gpus,
        "current_device": current,
        "cpu_seconds": round(elapsed, 1),
        "method": _METHOD,
    }


_METHOD = [
    "Parameters: exact counts of the modules built on the meta device from the configs in "
    "fmrikit.methods.neuropictor.plan.",
    "Static training memory: frozen weights (UNet, VAE, text encoder) in the compute precision; trainable "
    "parts 16 bytes per parameter (float32 weights, gradients, two AdamW moments).",
    "Training activations: one step's forward run on meta tensors at batch 1 under saved_tensors_hooks, "
    "adding the bytes of each distinct storage autograd saves (weights and their casts excluded), scaled "
    "linearly with the batch. CUDA autocast's dtype policy (matmuls and convolutions low, normalisations "
    "and losses float32) and flash attention are emulated; the casts of trainable weights autocast keeps "
    "for the backward are counted once, in the forward/backward phase.",
    "Training peak: the largest of three phases: target encoding (VAE encoder and text encoder without "
    "gradients), forward/backward (saved tensors + a backward transient of 4 x the largest saved tensor, "
    "plus with checkpointing the largest block's recomputed activations), optimizer step (foreach AdamW's "
    "float32 sqrt(v) temporary, 4 bytes per trainable parameter).",
    "Gradient checkpointing is emulated at diffusers' granularity (each ResNet and transformer block of "
    "ControlNet and UNet) and per block of the fMRI encoder: a block's inputs are kept, its saved tensors "
    "are recomputed in the backward, one block at a time.",
    "Inference: all modules in the compute precision; peak of live tensors (a dispatch mode on meta "
    "tensors) of one classifier-free-guidance step (ControlNet + UNet at twice the batch), of the VAE "
    "decoder and of the conditioning, scaled linearly with the batch.",
    "Not included: the CUDA context (0.3-1 GiB), cuDNN/cuBLAS workspaces, allocator fragmentation (hence "
    "the 90% headroom in the verdicts), EMA weights, data-loader memory.",
    "Biases: a storage counts whole even when only a view of it is saved (over-count); the same data "
    "saved under two storages counts twice (over-count); ops outside the emulated autocast lists keep "
    "their input dtype; the backward transient is a rough bound (a meta-device forward+backward at batch 1 "
    "peaked 3% above the saved tensors).",
]


# --------------------------------------------------------------------------------------------------------------
# formatting


def plan_rows(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The plan as (section, item, value) rows for a table."""
    s, tr, inf = plan["settings"], plan["training"], plan["inference"]
    b = s["batch_size"]
    rows = [("", "estimate", plan["note"]),
            ("settings", "batch size per GPU", str(b)),
            ("settings", "precision", s["precision"] + (" autocast" if s["precision"] != "fp32" else "")),
            ("settings", "gradient checkpointing", "yes" if s["gradient_checkpointing"] else "no"),
            ("settings", "image / latent / flatmap",
             f"{s['image_size']}^2 / 4x{s['latent_size']}^2 / {s['flatmap_size']}^2 ({s['flatmap_tokens']} tokens)")]
    for c in plan["components"]:
        rows.append(("parameters", c["name"], f"{c['parameters']:,} ({format_millions(c['parameters'])}, "
                     f"{'trainable' if c['trainable'] else 'frozen'})"))
    p = plan["parameters"]
    rows.append(("parameters", "total / trainable / frozen",
                 f"{format_millions(p['total'])} / {format_millions(p['trainable'])} / {format_millions(p['frozen'])}"))
    for c in plan["published_checks"]:
        if c["published"] is None:
            rows.append(("check", c["name"], f"{format_millions(c['computed'])} ({c['what']})"))
        else:
            rows.append(("check", c["name"], f"computed {format_millions(c['computed'])} vs published "
                         f"{format_millions(c['published'])} ({c['relative_difference']:+.1%}; {c['what']})"))
    phases = tr["phase_peak_bytes"]
    rows += [("training", "frozen weights", format_gib(tr["frozen_weight_bytes"])),
             ("training", "trainable weights + grads + AdamW", format_gib(tr["trainable_state_bytes"])),
             ("training", "static total", format_gib(tr["static_bytes"])),
             ("training", "autocast weight copies", format_gib(tr["autocast_weight_copy_bytes"])),
             ("training", "activations per sample", format_gib(tr["activation_bytes_per_sample"])),
             ("training", "backward transient per sample", format_gib(tr["backward_transient_bytes_per_sample"])),
             ("training", f"activations + transient at batch {b}", format_gib(tr["activation_bytes"])),
             ("training", "peak: encode targets / fwd+bwd / optimizer",
              " / ".join(format_gib(phases[k]) for k in ("encode_targets", "forward_backward", "optimizer_step"))),
             ("training", f"TOTAL at batch {b}", format_gib(tr["total_bytes"])),
             ("inference", "weights (all modules)", format_gib(inf["weight_bytes"])),
             ("inference", "CFG step peak per image", format_gib(inf["denoise_step_peak_bytes_per_sample"])),
             ("inference", "VAE decode peak per image", format_gib(inf["vae_decode_peak_bytes_per_sample"])),
             ("inference", f"TOTAL at batch {b}", format_gib(inf["total_bytes"])),
             ("inference", "fp32, batch 1 vs paper Tab. 4",
              f"{inf['fp32_batch1_bytes'] / 1e9:.1f} GB estimated (tensors only) vs "
              f"{inf['paper_fp32_batch1_gb']} GB measured by the authors")]
    for g in plan["gpus"]:
        rows.append(("fit", g["name"], f"training {g['training']} (max batch {g['max_training_batch']}), "
                     f"inference {g['inference']}"))
    cur = plan["current_device"]
    rows.append(("fit", "this machine", "no CUDA device" if cur is None else
                 f"{cur['name']} {format_gib(cur['memory_bytes'])}: training {cur['training']} "
                 f"(max batch {cur['max_training_batch']}), inference {cur['inference']}"))
    return rows


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as plain text, one ``section  item  value`` line per row."""
    rows = plan_rows(plan)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows)
