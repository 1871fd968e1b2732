"""Options of TROI's voxel selection, importable without torch (the CLI reads its defaults here)."""

from __future__ import annotations

from dataclasses import dataclass

from fmrikit.checks import check_number, check_option
from fmrikit.errors import InputError

#: Coarse regions TROI selects from: the occipital crop of the paper, or the whole dataset (e.g. the brainmask).
COARSE_REGIONS = ("occipital", "whole")


@dataclass
class TroiSettings:
    """Options of TROI's voxel selection.

    The defaults are the paper's stage 1 (section 3.1: about 15 epochs of batch 24 to a budget of about 3000
    voxels of an occipital crop) under both ``--preset`` values; the presets differ in the decoder's stage-2
    training (:data:`fmrikit.methods.mindeye.settings.DECODER_PRESETS`).

    Attributes
    ----------
    budget : int
        Most voxels the mask may keep.
    stage1_epochs : int
        Most epochs of sparse mask training; it ends once the mask is within the budget.
    warmup_epochs : int
        Stage-1 epochs without the LASSO (the new input layer must learn before the mask's gradients
        mean anything).
    threshold : float
        After every step, voxels whose (low-passed) mask weight is below it are zeroed for good.
    lasso : float
        LASSO coefficient on the sum of absolute mask weights at the first epoch after the warm-up. It acts by a
        proximal step after each optimiser step (:class:`~fmrikit.methods.troi.gate.VoxelGate`): each weight
        shrinks by ``mask_lr * lasso``, which AdamW's task-gradient step (about ``mask_lr`` times the gradient's
        consistency, between 0 and 1) must beat, so the coefficient is on that 0-1 scale.
    lasso_growth : float
        After an epoch that ends with more voxels than the schedule allows (geometric from all voxels
        to ``budget`` at the last epoch), the LASSO coefficient is multiplied by this.
    mask_lr : float
        Learning rate of the mask weights (AdamW, no weight decay).
    stage1_lr : float
        Peak learning rate of the new input layer in stage 1 (the mask's gradients are only
        informative once that layer has learnt something, so it learns fast).
    lowpass : bool
        Gaussian low-pass filter of the weights before thresholding: in 3D, or over surface distance
        for a surface dataset.
    lowpass_sigma : float
        Filter sigma (mm).
    rewind : bool
        Stage 2 retrains a fresh input layer (and, when they train, the shared parts from their
        state before stage 1) with the initial schedule; otherwise the stage-1 model (its input
        weights times the mask) is fine-tuned at a constant ``lr * finetune_lr_factor``.
    finetune_lr_factor : float
    coarse_region : {"occipital", "whole"}
        ``occipital``: the posterior ``occipital_fraction`` of the coarse dataset along the
        anterior-posterior axis (the paper's crop of the occipital lobe); ``whole``: all of it.
    occipital_fraction : float
        The paper crops 40 voxels of 1.8 mm (72 mm) along the anterior-posterior axis out of a
        brain of about 90 such voxels: 0.45 of its length.
    """

    budget: int = 3000
    stage1_epochs: int = 15
    warmup_epochs: int = 2
    threshold: float = 0.5
    lasso: float = 0.05
    lasso_growth: float = 1.5
    mask_lr: float = 2e-2
    stage1_lr: float = 3e-2
    lowpass: bool = True
    lowpass_sigma: float = 2.0
    rewind: bool = True
    finetune_lr_factor: float = 0.04
    coarse_region: str = "occipital"
    occipital_fraction: float = 0.45

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
        check_number("--lasso-growth", self.lasso_growth, low=1)
        check_number("--mask-lr", self.mask_lr, low=0, low_open=True)
        check_number("--stage1-lr", self.stage1_lr, low=0, low_open=True)
        check_number("--lowpass-sigma", self.lowpass_sigma, low=0, low_open=True)
        check_number("fine-tuning learning-rate factor", self.finetune_lr_factor, low=0, low_open=True)
        check_option("--coarse-region", self.coarse_region, COARSE_REGIONS)
        check_number("--occipital-fraction", self.occipital_fraction, low=0, high=1, low_open=True)

