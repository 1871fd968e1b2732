"""Tiny diffusers pipelines built from config (random weights), as diffusers' own tests do, saved to folders.

Sizes: UNet sample 8 x 8 latents of 4 channels, VAE factor 2 (16 x 16 images), text width 32.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

TEXT_WIDTH = 32


def _bytes_to_unicode() -> dict[int, str]:
    try:  # transformers < 5
        from transformers.models.clip.tokenization_clip import bytes_to_unicode
    except ImportError:
        from transformers.convert_slow_tokenizer import bytes_to_unicode
    return bytes_to_unicode()


def write_tiny_tokenizer(folder: str | os.PathLike) -> Path:
    """A byte-level CLIP tokenizer with no merges (every character is a token), saved to ``folder``."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    ids = tokenizer("a red ball", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.pad_token_id, ids
    tokenizer.save_pretrained(folder)
    return folder


def _tokenizer():
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        return CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp))


def _text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        hidden_size=TEXT_WIDTH, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        vocab_size=len(tokenizer), max_position_embeddings=77, projection_dim=32, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         norm_num_groups=8, sample_size=16)


def _unet(**extra):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=(2, 4), norm_num_groups=8, **extra)


def _ddim(prediction_type: str = "epsilon"):
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type)


def save_tiny_img2img(folder: str | os.PathLike, seed: int = 0) -> Path:
    """A tiny ``StableDiffusionImg2ImgPipeline`` saved to ``folder``."""
    from diffusers import StableDiffusionImg2ImgPipeline

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    pipe = StableDiffusionImg2ImgPipeline(vae=_vae(), text_encoder=_text_encoder(tokenizer), tokenizer=tokenizer,
                                          unet=_unet(), scheduler=_ddim(), safety_checker=None,
                                          feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def save_tiny_unclip(folder: str | os.PathLike, seed: int = 0, embed_dim: int = 32) -> Path:
    """A tiny ``StableUnCLIPImg2ImgPipeline`` (image embeddings of ``embed_dim``) saved to ``folder``."""
    from diffusers import DDPMScheduler, StableUnCLIPImg2ImgPipeline
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=embed_dim, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        intermediate_size=37, patch_size=4))
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32), image_encoder=image_encoder,
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=embed_dim),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"), tokenizer=tokenizer,
        text_encoder=_text_encoder(tokenizer), vae=_vae(), scheduler=_ddim(),
        unet=_unet(class_embed_type="projection", projection_class_embeddings_input_dim=2 * embed_dim))
    pipe.save_pretrained(folder)
    return folder


def save_tiny_sd21(folder: str | os.PathLike, seed: int = 0, prediction_type: str = "v_prediction") -> Path:
    """A tiny Stable Diffusion 2.1-shaped ``StableDiffusionPipeline`` (linear attention projections, 77-token
    CLIP text condition, v-prediction DDIM as SD 2.1-768) saved to ``folder``."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    pipe = StableDiffusionPipeline(vae=_vae(), text_encoder=_text_encoder(tokenizer), tokenizer=tokenizer,
                                   unet=_unet(use_linear_projection=True), scheduler=_ddim(prediction_type),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder
