"""Universal-encoder sizes and training options, importable without torch (the CLI reads its defaults here)."""

from __future__ import annotations

from dataclasses import dataclass

from fmrikit.errors import InputError


@dataclass
class EncoderSize:
    """Universal-encoder widths: C channels per feature level, E values per voxel embedding."""

    channels: int = 64
    embed_dim: int = 256


@dataclass
class EncoderSettings:
    """Options of universal-encoder training.

    Attributes
    ----------
    epochs : int
    batch_images : int
        Images per step and process.
    voxels_per_image : int
        Voxels sampled per image and step (all of a subject's when it has fewer).
    lr : float
        Adam learning rate.
    cosine_weight : float
        Weight of (1 - cosine similarity) against the MSE.
    seed : int
    """

    epochs: int = 30
    batch_images: int = 32
    voxels_per_image: int = 5000
    lr: float = 1e-3
    cosine_weight: float = 0.1
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1 or self.batch_images < 1 or self.voxels_per_image < 2 or self.lr <= 0:
            raise InputError("bad encoder training settings",
                             expected="epochs >= 1, batch_images >= 1, voxels_per_image >= 2, lr > 0",
                             found=f"epochs={self.epochs}, batch_images={self.batch_images}, "
                                   f"voxels_per_image={self.voxels_per_image}, lr={self.lr}")
