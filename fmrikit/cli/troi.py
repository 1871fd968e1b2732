"""``fmrikit roi-train``: TROI's data-driven voxel selection for a new subject on the pretrained decoder."""

from __future__ import annotations

from typing import Annotated

import typer

from fmrikit.cli import options as o
from fmrikit.cli import reports
from fmrikit.cli._common import call, sessions_list
from fmrikit.methods.mindeye.settings import SUBJECT_BATCH_SIZE, ModelSize, TrainSettings
from fmrikit.methods.troi.settings import TroiSettings as R


def roi_train(
    subject: o.Subject,
    budget: Annotated[int, typer.Option(min=1, help="Most voxels the mask keeps.")] = R.budget,
    sessions: o.Sessions = None,
    coarse_roi: Annotated[str, typer.Option(help="Dataset of the coarse region to select from.")] = "brainmask",
    backbone: o.DecoderBackbone = None,
    pretrained: Annotated[bool, typer.Option(help="Start from the pretrained backbone (--no-pretrained trains a "
                                                  "fresh decoder on this subject only).")] = True,
    unfreeze_backbone: o.Unfreeze = False,
    lowpass: Annotated[bool, typer.Option(help="Low-pass filter the mask weights before each selection.")] = R.lowpass,
    lowpass_sigma: Annotated[float, typer.Option(min=0.0, help="Low-pass Gaussian sigma (mm).")] = R.lowpass_sigma,
    rewind: Annotated[bool, typer.Option(help="Stage 2 retrains a fresh input layer with the initial schedule "
                                              "(--no-rewind fine-tunes the stage-1 layer).")] = R.rewind,
    stage1_epochs: Annotated[int, typer.Option(min=1, help="Epochs of sparse mask training.")] = R.stage1_epochs,
    warmup_epochs: Annotated[int, typer.Option(min=0, help="Stage-1 epochs before the first voxel selection.")]
    = R.warmup_epochs,
    stage1_lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate of the input layer in stage 1.")]
    = R.stage1_lr,
    threshold: Annotated[float, typer.Option(min=0.0, help="Mask weights below it are zeroed after each step.")]
    = R.threshold,
    lasso: Annotated[float, typer.Option(min=0.0, help="LASSO coefficient on the mask weights.")] = R.lasso,
    mask_lr: Annotated[float, typer.Option(min=0.0, help="Learning rate of the mask weights.")] = R.mask_lr,
    features: Annotated[str, typer.Option(help="With --no-pretrained: image features giving the targets, gabor, "
                                               "effnet-lite0, clip or dinov2.")] = "gabor",
    image_model: o.ImageModel = None,
    hidden: Annotated[int, typer.Option(min=1, help="With --no-pretrained: backbone width.")] = ModelSize.hidden,
    blocks: Annotated[int, typer.Option(min=1, help="With --no-pretrained: residual blocks.")] = ModelSize.n_blocks,
    epochs: o.Epochs = TrainSettings.epochs,
    batch_size: o.TrialBatch = SUBJECT_BATCH_SIZE,
    lr: o.Lr = TrainSettings.lr,
    weight_decay: o.WeightDecay = TrainSettings.weight_decay,
    mse_weight: o.MseWeight = TrainSettings.mse_weight,
    temperature: o.Temperature = TrainSettings.temperature,
    seed: o.Seed = TrainSettings.seed,
    desc: o.Desc = "troi",
    flatmap: Annotated[bool, typer.Option(help="Draw pictures of the mask and weights (pycortex flatmaps, else "
                                               "nilearn mosaics).")] = True,
    device: o.Device = "auto",
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """TROI: learn a subject's voxel mask under a budget, then its decoder input layer."""
    from fmrikit.methods.troi.stages import roi_train as run

    troi = R(budget=budget, stage1_epochs=stage1_epochs, warmup_epochs=warmup_epochs, stage1_lr=stage1_lr,
             threshold=threshold, lasso=lasso, mask_lr=mask_lr, lowpass=lowpass, lowpass_sigma=lowpass_sigma,
             rewind=rewind)
    result = call(run, subject, root=root, troi=troi, sessions=sessions_list(sessions), coarse_roi=coarse_roi,
                  backbone=backbone, pretrained=pretrained, unfreeze_backbone=unfreeze_backbone, features=features,
                  image_model=image_model, size=ModelSize(hidden=hidden, n_blocks=blocks, proj_hidden=hidden),
                  settings=TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                                         mse_weight=mse_weight, temperature=temperature, seed=seed),
                  desc=desc, flatmap=flatmap, device=device, resume=resume, overwrite=overwrite)
    reports.retrieval(f"TROI mask ({result.n_voxels} voxels)", result.outputs["mask"], None)
    reports.retrieval("subject decoder", result.model, result.retrieval)
