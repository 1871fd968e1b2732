"""Takagi & Nishimoto's route: fMRI to image latents (and caption embeddings) by ridge, CNN, VAE or GCN mappers,
decoded by the embedded autoencoder or Stable Diffusion img2img.

Library entry points: :func:`pretrain_autoencoder` (``fmrikit pretrain autoencoder``),
:func:`pretrain_latent_mapper` (``fmrikit pretrain latent-mapper``), :func:`latent_route`
(``fmrikit reconstruct --method latent``).
"""

from fmrikit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "pretrain_autoencoder": "autoencoder", "pretrain_latent_mapper": "train", "latent_route": "route",
    "LatentMapper": "models", "MapperOptions": "settings", "AutoencoderSize": "settings",
})
