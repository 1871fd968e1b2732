"""Sizes and training settings of the embedded autoencoder and the latent mappers (importable without torch).

Presets (``--preset``): ``paper`` is the course report's mapper networks (sections 2.4-2.5) with its Table 2
training, and a Stable Diffusion VAE-shaped autoencoder; ``small`` is sized for a CPU and is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from fmrikit.checks import check_number, check_option
from fmrikit.engine.settings import SupervisedSettings
from fmrikit.errors import InputError


@dataclass
class AutoencoderSize:
    """Architecture of the embedded autoencoder.

    Attributes
    ----------
    image_size : int
        Side (pixels) images are resized to; latents are ``image_size / 2**(len(channels) - 1)`` wide.
    channels : tuple of int
        ``block_out_channels`` of the encoder and decoder (each a multiple of 16).
    latent_channels : int
    layers_per_block : int
    """

    image_size: int = 64
    channels: tuple[int, ...] = (16, 32, 32)
    latent_channels: int = 4
    layers_per_block: int = 1

    @classmethod
    def from_preset(cls, name: str = "small", **overrides: Any) -> AutoencoderSize:
        """A preset of :data:`AUTOENCODER_PRESETS` with some sizes replaced (None values are ignored).

        Raises
        ------
        InputError
            Unknown preset, or an invalid size.
        """
        check_option("--preset", name, AUTOENCODER_PRESETS)
        size = replace(AUTOENCODER_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
        size.check()
        return size

    def check(self) -> None:
        """Refuse a size the autoencoder cannot have (:class:`~fmrikit.errors.InputError`)."""
        check_number("--image-size", self.image_size, low=8)
        factor = 2 ** (len(self.channels) - 1)
        if self.image_size % factor or any(c % 16 for c in self.channels) or self.latent_channels < 1:
            raise InputError("invalid autoencoder size: --image-size must be divisible by the downsampling",
                             expected=f"--image-size divisible by {factor}, channels multiples of 16",
                             found=f"{self.image_size}, {self.channels}")


#: ``small``: the CPU default (64 px, 4 x 16 x 16 latents). ``paper``: no paper trains this autoencoder (the report
#: uses Stable Diffusion's VAE); the preset is that VAE's architecture (block widths 128-512, two layers per
#: block, 4 latent channels, 8x downsampling) at 320 px, whose 4 x 40 x 40 latents are the report's.
AUTOENCODER_PRESETS: dict[str, AutoencoderSize] = {
    "small": AutoencoderSize(),
    "paper": AutoencoderSize(image_size=320, channels=(128, 256, 512, 512), latent_channels=4, layers_per_block=2),
}

#: The image mappers, best first on the simulated world (examples/recon_mappers.sh: standardised latent MSE,
#: 3 worlds; ridge ahead of the others by more than 2 SE); ``reconstruct`` takes the first one trained.
MAPPERS = ("ridge", "cnn", "vae", "gcn")
#: The default image mapper: the mapper study's best (the report's "nonlinear beats linear" did not reproduce).
DEFAULT_MAPPER = MAPPERS[0]
PRESETS = ("small", "paper")

#: Report Table 2 (NSD): learning rate and batch size of each torch mapper.
PAPER_SETTINGS = {"cnn": (5e-4, 256), "vae": (5e-4, 256), "gcn": (1e-3, 64), "text-cnn": (1e-4, 16)}


#: NSD prf-visualrois labels of the GCN nodes: V1 (V1v, V1d), V2 (V2v, V2d), V3 + hV4.
GCN_NODES = ((1, 2), (3, 4), (5, 6, 7))


@dataclass
class MapperOptions:
    """What a latent-mapper run reads and how big its networks are.

    Attributes
    ----------
    image_roi, text_roi : str
        NSD atlas name or NIfTI path of the image (low-level) and text (high-level) voxels.
    image_labels, text_labels : tuple of int or None
        Labels of those atlases to keep (None: every label > 0).
    gcn_nodes : tuple of tuple of int
        ``image_roi`` labels grouped into the GCN's nodes.
    channels, hidden, latent_dim, gcn_width, gcn_hidden : int
        Network sizes (:class:`~fmrikit.methods.latent.models.LatentMapper`); the defaults are the ``small``
        preset's (:data:`MAPPER_PRESETS`).
    text_hidden : tuple of int
        The text CNN's two fully connected widths.
    text_tokens : int
        Leading caption tokens the text mapper predicts.
    image_size : int or None
        Side the stimuli are resized to before encoding (default: the autoencoder's sample size).
    """

    image_roi: str = "prf-visualrois"
    image_labels: tuple[int, ...] | None = (1, 2, 3, 4, 5, 6, 7)
    text_roi: str = "streams"
    text_labels: tuple[int, ...] | None = (5,)
    gcn_nodes: tuple[tuple[int, ...], ...] = GCN_NODES
    channels: int = 8
    hidden: int = 256
    latent_dim: int = 64
    gcn_width: int = 128
    gcn_hidden: int = 256
    text_hidden: tuple[int, int] = (512, 1024)
    text_tokens: int = 15
    image_size: int | None = None

    @classmethod
    def for_rois(cls, image_roi: str, image_labels: tuple[int, ...] | None, text_roi: str,
                 text_labels: tuple[int, ...] | None, image_size: int | None = None,
                 preset: str = "small") -> MapperOptions:
        """Options for these voxels, with the network sizes of ``preset`` (:data:`MAPPER_PRESETS`); labels left
        None default to the default atlas's (V1-hV4 of prf-visualrois, ventral of streams) when the atlas is the
        default one, else to every label > 0."""
        check_option("--preset", preset, MAPPER_PRESETS)
        base = cls()

        def labels(given, roi, default_roi, default):
            return tuple(given) if given is not None else default if roi == default_roi else None

        return cls(image_roi=image_roi, image_labels=labels(image_labels, image_roi, base.image_roi, base.image_labels),
                   text_roi=text_roi, text_labels=labels(text_labels, text_roi, base.text_roi, base.text_labels),
                   image_size=image_size, **MAPPER_PRESETS[preset]["sizes"])


#: Network sizes and training per preset. ``paper``: the report's networks (the CNN's 512-wide and the GCN's
#: 512-wide Chebyshev / 1024-wide fully connected layers, the text CNN's 1024 / 2048) and its Table 2 learning
#: rates and batch sizes, 100 epochs, early stopping patience 5. ``small``: see the mapper study
#: (``examples/recon_mappers.sh``).
MAPPER_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"sizes": {"channels": 16, "hidden": 512, "latent_dim": 256, "gcn_width": 512, "gcn_hidden": 1024,
                        "text_hidden": (1024, 2048)},
              "training": {arch: {"lr": lr, "batch_size": batch} for arch, (lr, batch) in PAPER_SETTINGS.items()},
              "epochs": 100, "patience": 5},
    "small": {"sizes": {f.name: f.default for f in fields(MapperOptions)
                        if f.name in ("channels", "hidden", "latent_dim", "gcn_width", "gcn_hidden", "text_hidden")},
              "training": {arch: {"lr": lr, "batch_size": batch} for arch, (lr, batch) in PAPER_SETTINGS.items()},
              "epochs": 100, "patience": 5},
}


def mapper_settings(arch: str, overrides: dict[str, Any] | None = None, preset: str = "small") -> SupervisedSettings:
    """Training settings of a mapper: its ``preset``'s learning rate, batch size, epochs and patience, then
    ``overrides`` (:class:`SupervisedSettings` fields)."""
    check_option("--preset", preset, MAPPER_PRESETS)
    chosen = MAPPER_PRESETS[preset]
    base = {"epochs": chosen["epochs"], "patience": chosen["patience"], "lr": 5e-4, "batch_size": 64,
            **chosen["training"].get(arch, {})}
    return SupervisedSettings(**{**base, **(overrides or {})})


#: The embedded autoencoder's training: 30 epochs of batch 32 at lr 1e-3, no early stopping.
AUTOENCODER_SETTINGS = SupervisedSettings(epochs=30, batch_size=32, lr=1e-3, patience=None)
