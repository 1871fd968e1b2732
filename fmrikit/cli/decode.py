"""``fmrikit pretrain``, ``fmrikit roi-train`` and ``fmrikit adapt-subject`` (the decoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli._common import OverwriteOption, RootOption, call, int_list, out_console
from fmrikit.training.settings import SUBJECT_BATCH_SIZE, ModelSize, TrainSettings, TroiSettings

T, M, R = TrainSettings, ModelSize, TroiSettings  # option defaults come from the library's settings

Epochs = Annotated[int, typer.Option(help="Training epochs.")]
BatchSize = Annotated[int, typer.Option(help="Trials per step and process (split over subjects).")]
Lr = Annotated[float, typer.Option("--lr", help="Peak learning rate (one-cycle schedule).")]
WeightDecay = Annotated[float, typer.Option(help="AdamW weight decay.")]
MseWeight = Annotated[float, typer.Option(help="Weight of the embedding-regression MSE against the contrastive "
                                               "loss.")]
Temperature = Annotated[float, typer.Option(help="Contrastive softmax temperature.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last epoch "
                                                       "checkpoint.")]
Backbone = Annotated[Optional[Path], typer.Option(help="Pretrained decoder folder [default: "
                                                       "<root>/models/decoder].")]
Sessions = Annotated[Optional[str], typer.Option(help="Sessions whose trials train, e.g. 1 or 1-3 [default: all]; "
                                                      "the shared images are always the test set.")]
Features = Annotated[str, typer.Option(help="Image features giving the target embeddings: gabor, effnet-lite0, "
                                            "clip, dinov2.")]
ImageModel = Annotated[Optional[str], typer.Option(help="Local folder or cached Hugging Face id for clip / dinov2.")]
Hidden = Annotated[int, typer.Option(help="Backbone width.")]
Blocks = Annotated[int, typer.Option(help="Residual blocks in the backbone.")]
Unfreeze = Annotated[bool, typer.Option("--unfreeze-backbone", help="Train the pretrained backbone too.")]


def _settings(epochs, batch_size, lr, weight_decay, mse_weight, temperature, seed):
    return T(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         mse_weight=mse_weight, temperature=temperature, seed=seed)


def _sessions(text: Optional[str]) -> Optional[list[int]]:
    from fmrikit.data.preprocess import parse_sessions

    return call(parse_sessions, text) if text else None


def _report(label: str, path: Path, scores: dict | None) -> None:
    from fmrikit.training.distributed import env_rank

    if env_rank() != 0:
        return
    out_console.print(f"{label}: {path}")
    if scores:
        out_console.print(f"  retrieval on {scores['n_test_images']} test images ({scores['n_candidates']} candidates, "
                          f"chance {scores['chance']:.1%}): image {scores['image_retrieval']:.1%}, "
                          f"brain {scores['brain_retrieval']:.1%}")


def pretrain(
    subjects: Annotated[str, typer.Option(help="Subjects to pretrain on, e.g. 2,5,7.")],
    model: Annotated[str, typer.Option(help="What to pretrain: decoder.")] = "decoder",
    roi: Annotated[str, typer.Option(help="Voxel selection of the datasets (annotated ROI).")] = "nsdgeneral",
    features: Features = "gabor",
    image_model: ImageModel = None,
    hidden: Hidden = M.hidden,
    blocks: Blocks = M.n_blocks,
    epochs: Epochs = T.epochs,
    batch_size: BatchSize = T.batch_size,
    lr: Lr = T.lr,
    weight_decay: WeightDecay = T.weight_decay,
    mse_weight: MseWeight = T.mse_weight,
    temperature: Temperature = T.temperature,
    seed: Seed = T.seed,
    device: Device = "auto",
    out: Annotated[Optional[Path], typer.Option(help="Model folder [default: <root>/models/decoder].")] = None,
    resume: Resume = False,
    root: RootOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Pretrain the cross-subject decoder (runs unchanged under torchrun)."""
    from fmrikit.errors import InputError
    from fmrikit.training.pretrain import pretrain_decoder

    if model != "decoder":
        call(_raise, InputError("unknown model", expected="decoder", found=model))
    result = call(pretrain_decoder, int_list(subjects), roi=roi, root=root, out=out, features=features,
                  image_model=image_model, size=M(hidden=hidden, n_blocks=blocks, proj_hidden=hidden),
                  settings=_settings(epochs, batch_size, lr, weight_decay, mse_weight, temperature, seed),
                  device=device, resume=resume, overwrite=overwrite)
    for key, scores in result.retrieval.items():
        _report(f"decoder {key}", result.model, scores)


def roi_train(
    subject: Annotated[int, typer.Option(help="The new subject.")],
    budget: Annotated[int, typer.Option(help="Most voxels the mask keeps.")] = R.budget,
    sessions: Sessions = None,
    coarse_roi: Annotated[str, typer.Option(help="Dataset of the coarse region to select from.")] = "brainmask",
    backbone: Backbone = None,
    pretrained: Annotated[bool, typer.Option(help="Start from the pretrained backbone (--no-pretrained trains a "
                                                  "fresh decoder on this subject only).")] = True,
    unfreeze_backbone: Unfreeze = False,
    lowpass: Annotated[bool, typer.Option(help="Low-pass filter the mask weights before each selection.")] = R.lowpass,
    lowpass_sigma: Annotated[float, typer.Option(help="Low-pass Gaussian sigma (mm).")] = R.lowpass_sigma,
    rewind: Annotated[bool, typer.Option(help="Stage 2 retrains a fresh input layer with the initial schedule "
                                              "(--no-rewind fine-tunes the stage-1 layer).")] = R.rewind,
    stage1_epochs: Annotated[int, typer.Option(help="Epochs of sparse mask training.")] = R.stage1_epochs,
    warmup_epochs: Annotated[int, typer.Option(help="Stage-1 epochs before the first voxel selection.")]
    = R.warmup_epochs,
    stage1_lr: Annotated[float, typer.Option(help="Peak learning rate of the input layer in stage 1.")] = R.stage1_lr,
    threshold: Annotated[float, typer.Option(help="Mask weights below it are zeroed after each step.")] = R.threshold,
    lasso: Annotated[float, typer.Option(help="LASSO coefficient on the mask weights.")] = R.lasso,
    mask_lr: Annotated[float, typer.Option(help="Learning rate of the mask weights.")] = R.mask_lr,
    features: Features = "gabor",
    image_model: ImageModel = None,
    hidden: Hidden = M.hidden,
    blocks: Blocks = M.n_blocks,
    epochs: Epochs = T.epochs,
    batch_size: BatchSize = SUBJECT_BATCH_SIZE,
    lr: Lr = T.lr,
    weight_decay: WeightDecay = T.weight_decay,
    mse_weight: MseWeight = T.mse_weight,
    temperature: Temperature = T.temperature,
    seed: Seed = T.seed,
    desc: Annotated[str, typer.Option(help="desc- label of the outputs.")] = "troi",
    flatmap: Annotated[bool, typer.Option(help="Render flatmap PNGs of the mask.")] = True,
    device: Device = "auto",
    resume: Resume = False,
    root: RootOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """TROI: learn a subject's voxel mask under a budget, then its decoder input layer."""
    from fmrikit.training.troi import roi_train as run

    troi = R(budget=budget, stage1_epochs=stage1_epochs, warmup_epochs=warmup_epochs, stage1_lr=stage1_lr,
             threshold=threshold, lasso=lasso, mask_lr=mask_lr, lowpass=lowpass, lowpass_sigma=lowpass_sigma,
             rewind=rewind)
    result = call(run, subject, root=root, troi=troi, sessions=_sessions(sessions), coarse_roi=coarse_roi,
                  backbone=backbone, pretrained=pretrained, unfreeze_backbone=unfreeze_backbone, features=features,
                  image_model=image_model, size=M(hidden=hidden, n_blocks=blocks, proj_hidden=hidden),
                  settings=_settings(epochs, batch_size, lr, weight_decay, mse_weight, temperature, seed), desc=desc,
                  flatmap=flatmap, device=device, resume=resume, overwrite=overwrite)
    _report(f"TROI mask ({result.n_voxels} voxels)", result.outputs["mask"], None)
    _report("subject decoder", result.model, result.retrieval)


def adapt_subject(
    subject: Annotated[int, typer.Option(help="The new subject.")],
    mask: Annotated[Optional[Path], typer.Option(help="Binary NIfTI selecting the dataset's voxels (e.g. a TROI "
                                                      "mask).")] = None,
    roi: Annotated[Optional[str], typer.Option(help="Dataset (voxel selection) to read [default: nsdgeneral; "
                                                    "brainmask with --mask].")] = None,
    sessions: Sessions = None,
    backbone: Backbone = None,
    unfreeze_backbone: Unfreeze = False,
    epochs: Epochs = T.epochs,
    batch_size: BatchSize = SUBJECT_BATCH_SIZE,
    lr: Lr = T.lr,
    weight_decay: WeightDecay = T.weight_decay,
    mse_weight: MseWeight = T.mse_weight,
    temperature: Temperature = T.temperature,
    seed: Seed = T.seed,
    desc: Annotated[str, typer.Option(help="desc- label of the outputs.")] = "adapt",
    device: Device = "auto",
    resume: Resume = False,
    root: RootOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Train a new subject's input layer on the pretrained decoder over an ROI or a mask."""
    from fmrikit.training.adapt import adapt_subject as run

    result = call(run, subject, root=root, roi=roi, mask=mask, sessions=_sessions(sessions), backbone=backbone,
                  unfreeze_backbone=unfreeze_backbone,
                  settings=_settings(epochs, batch_size, lr, weight_decay, mse_weight, temperature, seed), desc=desc,
                  device=device, resume=resume, overwrite=overwrite)
    _report(f"subject decoder ({result.n_voxels} voxels)", result.model, result.retrieval)


def _raise(exc: Exception) -> None:
    raise exc


def register(app: typer.Typer) -> None:
    """Add the decoder commands to the app."""
    app.command("pretrain")(pretrain)
    app.command("roi-train")(roi_train)
    app.command("adapt-subject")(adapt_subject)
