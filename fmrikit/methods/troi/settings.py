"""Options of TROI's voxel selection, importable without torch (the CLI reads its defaults here)."""

from __future__ import annotations

from dataclasses import dataclass

from fmrikit.checks import check_number
from fmrikit.errors import InputError


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
        Gaussian low-pass filter of the weights before each selection: in 3D, or over surface distance for a
        surface dataset.
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
        """Refuse values out of range (NaN and infinities included), naming the command-line option.

        Raises
        ------
        InputError
        """
        check_number("--budget", self.budget, low=1)
        check_number("--stage1-epochs", self.stage1_epochs, low=1)
        check_number("--warmup-epochs", self.warmup_epochs, low=0)
        if self.warmup_epochs >= self.stage1_epochs:
            raise InputError("--warmup-epochs must be fewer than --stage1-epochs",
                             expected=f"fewer than {self.stage1_epochs}", found=str(self.warmup_epochs))
        check_number("--threshold", self.threshold, low=0)
        check_number("--lasso", self.lasso, low=0)
        check_number("--mask-lr", self.mask_lr, low=0, low_open=True)
        check_number("--stage1-lr", self.stage1_lr, low=0, low_open=True)
        check_number("--lowpass-sigma", self.lowpass_sigma, low=0, low_open=True)
        check_number("fine-tuning learning-rate factor", self.finetune_lr_factor, low=0, low_open=True)
