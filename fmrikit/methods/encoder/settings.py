"""Universal-encoder sizes and training options, importable without torch (the CLI reads its defaults here)."""

from __future__ import annotations

from dataclasses import dataclass

from fmrikit.checks import check_number


@dataclass
class EncoderSize:
    """Universal-encoder widths: C channels per feature level, E values per voxel embedding."""

    channels: int = 64
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
