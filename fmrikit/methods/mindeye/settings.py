"""Options of the training commands, importable without torch (the CLI reads its defaults here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fmrikit.errors import InputError

#: Batch size of new-subject training (TROI's stages 1 and 2 and the annotated-ROI baseline), as in the paper.
SUBJECT_BATCH_SIZE = 24

@dataclass
class ModelSize:
    """Decoder widths (CPU defaults; MindEye2 uses hidden 4096, 4 blocks)."""

    hidden: int = 256
    n_blocks: int = 2
    proj_hidden: int = 256
    dropout: float = 0.15


@dataclass
class TrainSettings:
    """Optimisation options of one training stage.

    Attributes
    ----------
    epochs : int
    batch_size : int
        Trials per step and process, split evenly over the subjects.
    lr : float
        Peak learning rate (one-cycle schedule) or the constant rate.
    weight_decay : float
    schedule : {"onecycle", "constant"}
    mixco_fraction : float
        Fraction of the epochs trained with MixCo; soft CLIP afterwards.
    mixco_beta : float
    temperature : float
        Softmax temperature of the contrastive losses.
    mse_weight : float
        Weight of the embedding-regression MSE (TROI eq. 4).
    seed : int
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "onecycle"
    mixco_fraction: float = 1 / 3
    mixco_beta: float = 0.15
    temperature: float = 0.05
    mse_weight: float = 1.0
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise InputError("bad training settings", expected="epochs >= 1, batch_size >= 2, lr > 0",
                             found=f"epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}")
        if self.schedule not in ("onecycle", "constant"):
            raise InputError("unknown learning-rate schedule", expected="onecycle or constant", found=self.schedule)


@dataclass
class TroiSettings:
    """Options of TROI's voxel selection.

    Attributes
    ----------
    budget : int
        Most voxels the mask may keep.
    stage1_epochs : int
        Epochs of sparse mask training (the budget is reached at the last one).
    warmup_epochs : int
        Stage-1 epochs before the first selection.
    threshold : float
        Mask weights below it are zeroed after every step.
    lasso : float
        LASSO coefficient on the sum of absolute mask weights.
    mask_lr : float
        Learning rate of the mask weights.
    stage1_lr : float
        Peak learning rate of the new input layer in stage 1 (the mask's gradients are only
        informative once that layer has learnt something, so it learns fast).
    lowpass : bool
        Gaussian low-pass filter of the weights in 3D before each selection.
    lowpass_sigma : float
        Filter sigma (mm).
    rewind : bool
        Stage 2 retrains a fresh input layer with the initial schedule; otherwise the stage-1
        layer (its weights times the mask) is fine-tuned at a constant ``lr * finetune_lr_factor``.
    finetune_lr_factor : float
    """

    budget: int = 3000
    stage1_epochs: int = 15
    warmup_epochs: int = 5
    threshold: float = 0.05
    lasso: float = 1e-5
    mask_lr: float = 2e-2
    stage1_lr: float = 3e-2
    lowpass: bool = True
    lowpass_sigma: float = 2.0
    rewind: bool = True
    finetune_lr_factor: float = 0.04

    def check(self) -> None:
        if self.budget < 1 or not 0 <= self.warmup_epochs < self.stage1_epochs or self.lowpass_sigma <= 0:
            raise InputError("bad TROI settings",
                             expected="budget >= 1, 0 <= warmup_epochs < stage1_epochs, lowpass_sigma > 0",
                             found=f"budget={self.budget}, warmup_epochs={self.warmup_epochs}, "
                                   f"stage1_epochs={self.stage1_epochs}, lowpass_sigma={self.lowpass_sigma}")


def settings_record(settings) -> dict:
    """Settings as a JSON-ready dict."""
    return asdict(settings)


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
