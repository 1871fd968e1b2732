"""Universal-encoder sizes, training options and presets, importable without torch (the CLI reads its defaults here).

Two presets (:func:`encoder_preset`):

``paper``
    The Universal Brain Encoder's published configuration (Beliy et al., section 3.2 and appendix B.3): E = 256
    values per voxel embedding, 32 images per step with 5000 voxels drawn for each, Adam at 1e-3 (constant), the
    MSE / cosine loss with w = 0.1, features of DINOv2 ViT-L/14 layers 1, 6, 12, 18, 24 (``--image-model``
    required). The paper gives no epoch count and no value of C; 64 channels and 30 epochs are ours. Its LoRA
    fine-tuning of DINOv2 is not done: features are cached.
``small``
    CPU-sized defaults, the library's: the paper's E = 256, loss, batch and learning rate, ImageNet EfficientNet-Lite0
    features (installed with fmrikit), and what costs CPU time scaled down: C = 32 (the per-level MLP runs once per
    image and voxel) and 1000 voxels per image. E stays the paper's because the encoder study found it better than
    E = 64 at equal epochs (median r / oracle r 0.43 against 0.25 at 20 epochs, 0.57 against 0.42 at 60), for 2.2x
    the CPU time of a step; 60 epochs because 20 were undertrained there and 120 added only 0.02 (0.59).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fmrikit.checks import check_number, check_option

PRESETS = ("small", "paper")


@dataclass
class EncoderSize:
    """Universal-encoder widths: C channels per feature level, E values per voxel embedding."""

    channels: int = 32
    embed_dim: int = 256

    def check(self) -> None:
        """Refuse sizes below 1, naming the command-line option (:class:`~fmrikit.errors.InputError`)."""
        check_number("--channels", self.channels, low=1)
        check_number("--embed-dim", self.embed_dim, low=1)


@dataclass
class EncoderSettings:
    """Options of universal-encoder training.

    Attributes
    ----------
    epochs : int
    batch_images : int
        Images per step and process.
    voxels_per_image : int
        Voxels drawn for each image of a step (all of a subject's when it has fewer).
    lr : float
        Adam learning rate.
    cosine_weight : float
        Weight of (1 - cosine similarity) against the MSE.
    seed : int
    """

    epochs: int = 60
    batch_images: int = 32
    voxels_per_image: int = 1000
    lr: float = 1e-3
    cosine_weight: float = 0.1
    seed: int = 0

    def check(self) -> None:
        """Refuse values out of range (NaN and infinities included), naming the command-line option.

        Raises
        ------
        InputError
        """
        check_number("--epochs", self.epochs, low=1)
        check_number("--batch-size", self.batch_images, low=1)
        check_number("--voxels-per-image", self.voxels_per_image, low=2)
        check_number("--lr", self.lr, low=0, low_open=True)
        check_number("--cosine-weight", self.cosine_weight, low=0)


@dataclass(frozen=True)
class EncoderPreset:
    """A named set of defaults: image features, sizes and training options.

    Attributes
    ----------
    name : str
    features : str
        Feature extractor (:func:`~fmrikit.features.registry.get_extractor`).
    grid : int or None
        Patch grid side of the features (None: the extractor's own).
    size : EncoderSize
    settings : EncoderSettings
    """

    name: str
    features: str
    grid: int | None
    size: EncoderSize = field(default_factory=EncoderSize)
    settings: EncoderSettings = field(default_factory=EncoderSettings)

    def record(self) -> dict:
        """What the preset set, for sidecars."""
        return {"name": self.name, "features": self.features, "grid": self.grid, "size": vars(self.size),
                "training": vars(self.settings)}


def encoder_preset(name: str = "small", *, features: str | None = None, grid: int | None = None,
                   channels: int | None = None, embed_dim: int | None = None, **training) -> EncoderPreset:
    """The ``small`` or ``paper`` preset (see the module docstring), with the values given overriding it.

    Parameters
    ----------
    name : {"small", "paper"}
    features, grid, channels, embed_dim : optional
        Override the preset's (None keeps it).
    **training
        :class:`EncoderSettings` fields to override (None keeps the preset's).

    Raises
    ------
    InputError
        Unknown name or out-of-range value.
    """
    check_option("encoder preset", name, PRESETS)
    if name == "paper":
        preset = EncoderPreset("paper", "dinov2", None, EncoderSize(channels=64, embed_dim=256),
                               EncoderSettings(epochs=30, voxels_per_image=5000))
    else:
        preset = EncoderPreset("small", "effnet-lite0", None)
    size = replace(preset.size, **{k: v for k, v in (("channels", channels), ("embed_dim", embed_dim))
                                   if v is not None})
    settings = replace(preset.settings, **{k: v for k, v in training.items() if v is not None})
    if grid is not None:
        check_number("--grid", grid, low=1)
    size.check()
    settings.check()
    return EncoderPreset(name, features or preset.features, grid if grid is not None else preset.grid, size, settings)
