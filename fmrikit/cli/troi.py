"""``fmrikit roi-train``: TROI's data-driven voxel selection for a new subject on the pretrained decoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli import options as o
from fmrikit.cli import reports
from fmrikit.cli._common import call, sessions_list
from fmrikit.cli.pretrain import decoder_size
from fmrikit.methods.mindeye.settings import TrainSettings, decoder_preset, with_options
from fmrikit.methods.troi.settings import COARSE_REGIONS
from fmrikit.methods.troi.settings import TroiSettings as R


def roi_train(
    subject: o.Subject,
    budget: Annotated[int, typer.Option(min=1, help="Most voxels the mask keeps.")] = R.budget,
    sessions: o.Sessions = None,
    coarse_roi: Annotated[str, typer.Option(help="Dataset the coarse region is taken from.")] = "brainmask",
    coarse_region: Annotated[str, typer.Option(help=f"Region of that dataset to select from: {', '.join(COARSE_REGIONS)} "
                                                    "(the paper's crop: the posterior --occipital-fraction along the "
                                                    "anterior-posterior axis) or whole.")] = R.coarse_region,
    occipital_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Posterior fraction of the dataset's "
                                                      "anterior-posterior extent that the occipital crop keeps.")]
    = R.occipital_fraction,
    backbone: o.DecoderBackbone = None,
    pretrained: Annotated[bool, typer.Option(help="Start from the pretrained backbone (--no-pretrained: freshly "
                                                  "initialised shared parts, trained on this subject in both "
                                                  "stages; compare with --unfreeze-backbone).")] = True,
    unfreeze_backbone: o.Unfreeze = False,
    lowpass: Annotated[bool, typer.Option(help="Low-pass filter the mask weights before thresholding.")] = R.lowpass,
    lowpass_sigma: Annotated[float, typer.Option(min=0.0, help="Low-pass Gaussian sigma (mm).")] = R.lowpass_sigma,
    rewind: Annotated[bool, typer.Option(help="Stage 2 retrains a fresh input layer with the initial schedule "
                                              "(--no-rewind fine-tunes the stage-1 model).")] = R.rewind,
    stage1_epochs: Annotated[int, typer.Option(min=1, help="Most epochs of sparse mask training.")] = R.stage1_epochs,
    warmup_epochs: Annotated[int, typer.Option(min=0, help="Stage-1 epochs before the LASSO starts.")]
    = R.warmup_epochs,
    stage1_lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate of the input layer in stage 1.")]
    = R.stage1_lr,
    threshold: Annotated[float, typer.Option(min=0.0, help="Voxels whose low-passed mask weight falls below it are "
                                                           "removed after each step.")] = R.threshold,
    lasso: Annotated[float, typer.Option(min=0.0, help="LASSO coefficient on the mask weights after the warm-up.")]
    = R.lasso,
    lasso_growth: Annotated[float, typer.Option(min=1.0, help="Factor on the LASSO coefficient after an epoch that "
                                                              "ends above the schedule to the budget.")]
    = R.lasso_growth,
    mask_lr: Annotated[float, typer.Option(min=0.0, help="Learning rate of the mask weights.")] = R.mask_lr,
    truth_mask: Annotated[Optional[Path], typer.Option(help="Binary NIfTI of the truly informative voxels (a "
                                                            "simulated world's truth): stage 1 then logs how their "
                                                            "mask weights move against the others'.")] = None,
    preset: o.Preset = "small",
    features: o.PresetFeatures = None,
    image_model: o.ImageModel = None,
    targets: o.Targets = None,
    hidden: o.PresetHidden = None,
    blocks: o.PresetBlocks = None,
    epochs: o.PresetEpochs = None,
    batch_size: o.PresetBatch = None,
    lr: o.PresetLr = None,
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
    """TROI: learn a subject's voxel mask under a budget, then its decoder input layer. The preset sets the decoder's
    stage-2 training (and, with --no-pretrained, its size and targets); TROI's stage 1 is the paper's in both."""
    from fmrikit.methods.troi.stages import roi_train as run

    chosen = call(decoder_preset, preset)
    troi = R(budget=budget, stage1_epochs=stage1_epochs, warmup_epochs=warmup_epochs,
             stage1_lr=stage1_lr, threshold=threshold, lasso=lasso, lasso_growth=lasso_growth, mask_lr=mask_lr,
             lowpass=lowpass, lowpass_sigma=lowpass_sigma, rewind=rewind, coarse_region=coarse_region,
             occipital_fraction=occipital_fraction)
    result = call(run, subject, root=root, troi=troi, sessions=sessions_list(sessions), coarse_roi=coarse_roi,
                  backbone=backbone, pretrained=pretrained, unfreeze_backbone=unfreeze_backbone,
                  features=features or chosen.features, image_model=image_model, targets=targets or chosen.targets,
                  size=decoder_size(chosen, hidden, blocks),
                  settings=with_options(chosen.subject, epochs=epochs, batch_size=batch_size, lr=lr,
                                        weight_decay=weight_decay, mse_weight=mse_weight, temperature=temperature,
                                        seed=seed),
                  truth_mask=truth_mask, preset=preset, desc=desc, flatmap=flatmap, device=device, resume=resume,
                  overwrite=overwrite)
    reports.retrieval(f"TROI mask ({result.n_voxels} voxels)", result.outputs["mask"], None)
    reports.retrieval("subject decoder", result.model, result.retrieval)
