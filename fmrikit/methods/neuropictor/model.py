"""NeuroPictor's fMRI side: flatmap tokens to Stable Diffusion's two conditions (Huo et al. 2024, Sec. 3.2-3.3).

The flatmap encoder (:class:`~fmrikit.methods.neuropictor.flatmap_ae_model.FlatmapEncoder`, from the calibrated
autoencoder) turns a flatmap (S, S) into tokens S^r (L_r, d_r). Two heads read them:

- the high-level guiding network: the fMRI-to-text encoder E_txt gives F~txt (L_T, d_T) in the
  text-condition space, trained with an MSE to the caption's CLIP text embedding (the semantic
  loss); an auxiliary encoder of the same shape, ending in a zero-initialised 1D convolution, adds
  F_au, so ``F_sem = F~txt + F_au`` starts equal to F~txt and conditions the U-Net's cross-attention;
- the feature transformation E_ft of the low-level manipulation network gives a control map
  F0 (C, h, w) at latent resolution, the input of the ControlNet (the trainable U-Net encoder copy,
  built in :mod:`fmrikit.methods.neuropictor.train` with diffusers' ``ControlNetModel``).

Each head is two 1D convolutions over the token axis (tokens as channels: L_r to L_out) then an MLP
over the feature axis (d_r to d_out).
"""

from __future__ import annotations

import torch
from torch import nn

from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapEncoder
from fmrikit.engine.serialization import PretrainedModule


class TokenHead(nn.Module):
    """(B, L_in, d_in) -> (B, L_out, d_out): two 1D convolutions across tokens, then an MLP across features.

    Parameters
    ----------
    in_tokens, out_tokens : int
    in_width, out_width : int
    hidden_tokens, hidden_width : int
        Width of the middle convolution / MLP layer.
    """

    def __init__(self, in_tokens: int, out_tokens: int, in_width: int, out_width: int, hidden_tokens: int,
                 hidden_width: int):
        super().__init__()
        self.tokens = nn.Sequential(nn.Conv1d(in_tokens, hidden_tokens, 1), nn.GELU(),
                                    nn.Conv1d(hidden_tokens, out_tokens, 1))
        self.features = nn.Sequential(nn.LayerNorm(in_width), nn.Linear(in_width, hidden_width), nn.GELU(),
                                      nn.Linear(hidden_width, out_width))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.features(self.tokens(tokens))


class NeuroPictorConditioner(PretrainedModule):
    """Flatmaps to NeuroPictor's semantic condition and control map.

    Parameters
    ----------
    encoder : dict
        :class:`FlatmapEncoder` arguments (``image_size``, ``patch_size``, ``width``, ``depth``,
        ``heads``...), as saved with the flatmap autoencoder.
    text_tokens, text_width : int
        The text-condition shape (L_T, d_T): the pipeline tokenizer's length (77) and the text
        encoder's width (1024 for Stable Diffusion 2.1).
    latent_channels, latent_size : int
        The control map's shape (C, h, w) with h = w = ``latent_size``: the U-Net's latent.
    hidden_tokens : int, optional
        Middle token count of every head (default: mean of the input and output counts).
    hidden_width : int, optional
        Middle width of the MLPs (default: the encoder's width).
    """

    def __init__(self, encoder: dict, text_tokens: int = 77, text_width: int = 1024, latent_channels: int = 4,
                 latent_size: int = 64, hidden_tokens: int | None = None, hidden_width: int | None = None):
        super().__init__(encoder=encoder, text_tokens=text_tokens, text_width=text_width,
                         latent_channels=latent_channels, latent_size=latent_size, hidden_tokens=hidden_tokens,
                         hidden_width=hidden_width)
        self.encoder = FlatmapEncoder(**encoder)
        n, d = self.encoder.n_tokens, self.encoder.width
        width = hidden_width or d

        def head(out_tokens: int, out_width: int) -> TokenHead:
            return TokenHead(n, out_tokens, d, out_width, hidden_tokens or (n + out_tokens) // 2, width)

        self.to_text = head(text_tokens, text_width)
        self.auxiliary = head(text_tokens, text_width)
        self.auxiliary_out = nn.Conv1d(text_tokens, text_tokens, 1)
        nn.init.zeros_(self.auxiliary_out.weight)
        nn.init.zeros_(self.auxiliary_out.bias)
        self.to_control = head(latent_channels, latent_size * latent_size)
        self.control_shape = (latent_channels, latent_size, latent_size)

    @property
    def image_size(self) -> int:
        """Side (px) of the flatmaps the encoder takes."""
        return self.config["encoder"]["image_size"]

    def forward(self, flatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The conditions of a batch of flatmaps.

        Parameters
        ----------
        flatmaps : Tensor, shape (B, S, S)

        Returns
        -------
        semantic : Tensor, shape (B, L_T, d_T)
            F_sem = F~txt + F_au, the U-Net's (and ControlNet's) ``encoder_hidden_states``.
        text : Tensor, shape (B, L_T, d_T)
            F~txt, the target of the semantic loss.
        control : Tensor, shape (B, C, h, w)
            F0, the ControlNet's ``controlnet_cond``.
        """
        tokens = self.encoder(flatmaps)
        text = self.to_text(tokens)
        semantic = text + self.auxiliary_out(self.auxiliary(tokens))
        control = self.to_control(tokens).reshape((len(tokens),) + self.control_shape)
        return semantic, text, control


#: Widths of the ControlNet's conditioning embedding (diffusers' default): its first entries, one more than the
#: VAE's downsamplings, take the control image from pixel back to latent size.
CONDITIONING_CHANNELS = (16, 32, 96, 256)


def build_neuropictor(encoder_config: dict, unet, *, text_tokens: int, text_width: int,
                      vae_downsamplings: int) -> tuple[NeuroPictorConditioner, nn.Module]:
    """NeuroPictor's trainable parts for a Stable Diffusion U-Net: the conditioner and the ControlNet.

    Parameters
    ----------
    encoder_config : dict
        :class:`~fmrikit.methods.neuropictor.flatmap_ae_model.FlatmapEncoder` arguments.
    unet : diffusers.UNet2DConditionModel
        The frozen U-Net; the ControlNet starts as a copy of its encoder, the control map has its latent
        channels and size.
    text_tokens, text_width : int
        Shape of the text condition (77 x 1024 for SD 2.1).
    vae_downsamplings : int
        log2 of the VAE's pixel / latent size ratio (3 for SD).

    Returns
    -------
    conditioner : NeuroPictorConditioner
    controlnet : diffusers.ControlNetModel
    """
    from diffusers import ControlNetModel

    conditioner = NeuroPictorConditioner(encoder_config, text_tokens=text_tokens, text_width=text_width,
                                         latent_channels=unet.config.in_channels,
                                         latent_size=unet.config.sample_size)
    controlnet = ControlNetModel.from_unet(
        unet, conditioning_channels=unet.config.in_channels,
        conditioning_embedding_out_channels=CONDITIONING_CHANNELS[:vae_downsamplings + 1])
    return conditioner, controlnet
