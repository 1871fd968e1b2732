"""``fmrikit adapt-subject MODEL``: a new subject on a pretrained model (decoder, the default; encoder;
neuropictor). ``--model X`` keeps working."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli import options as o
from fmrikit.cli import reports
from fmrikit.cli._common import ModelGroup, call, sessions_list
from fmrikit.cli.pretrain import AverageRepeats, PresetBatch, PresetEpochs, PresetLr, PresetWeightDecay
from fmrikit.methods.encoder.settings import EncoderSettings, EncoderSize, encoder_preset
from fmrikit.methods.mindeye.settings import TrainSettings, decoder_preset, with_options
from fmrikit.methods.neuropictor.settings import NeuroPictorOptions

app = typer.Typer(cls=ModelGroup, no_args_is_help=True,
                  help="A new subject on a pretrained model: decoder (the default: a new input layer), encoder (new "
                       "voxel embeddings) or neuropictor (single-subject refining). `fmrikit adapt-subject MODEL "
                       "--help` lists each model's options.")


@app.command("decoder")
def decoder(
    subject: o.Subject,
    mask: Annotated[Optional[Path], typer.Option(help="Binary NIfTI selecting the dataset's voxels (e.g. a TROI "
                                                      "mask).")] = None,
    roi: Annotated[Optional[str], typer.Option(help="Dataset (voxel selection) to read [default: nsdgeneral; "
                                                    "brainmask with --mask].")] = None,
    sessions: o.Sessions = None,
    backbone: o.DecoderBackbone = None,
    unfreeze_backbone: Annotated[bool, typer.Option(
        "--unfreeze-backbone", help="Fine-tune the whole pretrained model on the subject (MindEye2's published "
                                    "1-session arm); otherwise only the new input layer trains.")] = False,
    preset: o.Preset = "small",
    epochs: o.PresetEpochs = None,
    batch_size: o.PresetBatch = None,
    lr: o.PresetLr = None,
    weight_decay: o.WeightDecay = TrainSettings.weight_decay,
    mse_weight: o.MseWeight = TrainSettings.mse_weight,
    temperature: o.Temperature = TrainSettings.temperature,
    seed: o.Seed = TrainSettings.seed,
    desc: o.Desc = "adapt",
    device: o.Device = "auto",
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """A new input layer on the pretrained decoder over an ROI or a mask (the annotated-ROI baseline; TROI's stage 2
    on its own)."""
    from fmrikit.methods.mindeye.adapt import adapt_subject

    chosen = call(decoder_preset, preset)
    result = call(adapt_subject, subject, root=root, roi=roi, mask=mask, sessions=sessions_list(sessions),
                  backbone=backbone, unfreeze_backbone=unfreeze_backbone,
                  settings=with_options(chosen.subject, epochs=epochs, batch_size=batch_size, lr=lr,
                                        weight_decay=weight_decay, mse_weight=mse_weight, temperature=temperature,
                                        seed=seed),
                  preset=preset, desc=desc, device=device, resume=resume, overwrite=overwrite)
    reports.retrieval(f"subject decoder ({result.n_voxels} voxels)", result.model, result.retrieval)


@app.command("encoder")
def encoder(
    subject: o.Subject,
    roi: o.Roi = "nsdgeneral",
    sessions: o.Sessions = None,
    n_train: o.NTrain = None,
    backbone: Annotated[Optional[Path], typer.Option(help="Pretrained encoder folder [default: "
                                                          "<root>/models/encoder].")] = None,
    pretrained: Annotated[bool, typer.Option(help="Learn only the new subject's voxel embeddings on the frozen "
                                                  "pretrained encoder (--no-pretrained trains a fresh single-subject "
                                                  "encoder on the same images).")] = True,
    preset: o.EncoderPreset = "small",
    features: Annotated[Optional[str], typer.Option(help="With --no-pretrained: image features, gabor, "
                                                         "effnet-lite0, clip or dinov2 [default: the preset's].")]
    = None,
    image_model: o.ImageModel = None,
    grid: o.Grid = None,
    channels: Annotated[Optional[int], typer.Option(min=1, help="With --no-pretrained: channels each feature level is "
                                                                "projected to [default: the preset's].")] = None,
    embed_dim: Annotated[Optional[int], typer.Option(min=1, help="With --no-pretrained: size of each voxel's "
                                                                 "embedding [default: the preset's].")] = None,
    epochs: o.EncEpochs = None,
    batch_size: o.EncBatch = None,
    voxels_per_image: o.EncVoxelsPerImage = None,
    lr: o.EncLr = None,
    cosine_weight: o.CosineWeight = None,
    seed: o.Seed = EncoderSettings.seed,
    desc: o.Desc = "adapt",
    device: o.Device = "auto",
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """A new subject on the universal encoder: only its voxel embeddings, the image side frozen."""
    from fmrikit.methods.encoder.runs import adapt_encoder

    chosen = call(encoder_preset, preset, features=features, grid=grid, channels=channels, embed_dim=embed_dim,
                  epochs=epochs, batch_images=batch_size, voxels_per_image=voxels_per_image, lr=lr,
                  cosine_weight=cosine_weight, seed=seed)
    if pretrained:  # features and sizes come from the base; the library refuses any given
        sizes = {k: v for k, v in {"channels": channels, "embed_dim": embed_dim}.items() if v is not None}
        image = {"features": features, "grid": grid, "size": EncoderSize(**sizes) if sizes else None}
    else:
        image = {"features": chosen.features, "grid": chosen.grid, "size": chosen.size}
    result = call(adapt_encoder, subject, root=root, roi=roi, base=backbone, pretrained=pretrained, n_train=n_train,
                  sessions=sessions_list(sessions), image_model=image_model, **image, settings=chosen.settings,
                  preset=chosen.name, desc=desc, device=device, resume=resume, overwrite=overwrite)
    for key, scores in result.scores.items():
        reports.encoding(f"encoder {key}", result.model, scores)


@app.command("neuropictor")
def neuropictor(
    subject: o.Subject,
    backbone: Annotated[Optional[Path], typer.Option(help="Pretrained NeuroPictor folder [default: "
                                                          "<root>/models/neuropictor].")] = None,
    preset: o.Preset = "small",
    captions: o.Captions = None,
    sessions: o.Sessions = None,
    average_repeats: AverageRepeats = NeuroPictorOptions.average_repeats,
    semantic_weight: o.SemanticWeight = NeuroPictorOptions.semantic_weight,
    uncond_prob: o.UncondProb = NeuroPictorOptions.uncond_prob,
    train_encoder: o.TrainEncoder = NeuroPictorOptions.train_encoder,
    gradient_checkpointing: o.Checkpointing = NeuroPictorOptions.gradient_checkpointing,
    epochs: PresetEpochs = None,
    batch_size: PresetBatch = None,
    lr: PresetLr = None,
    weight_decay: PresetWeightDecay = None,
    seed: o.Seed = 0,
    desc: o.Desc = "adapt",
    device: o.Device = "auto",
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Single-subject refining of the pretrained NeuroPictor model (every trainable weight continues). --preset
    small: 10 epochs; paper: 217 epochs (the paper's 60k iterations of 32 on one subject)."""
    from fmrikit.methods.neuropictor.settings import neuropictor_settings
    from fmrikit.methods.neuropictor.train import adapt_neuropictor

    settings = call(neuropictor_settings, preset, "adapt", epochs=epochs, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, seed=seed)
    result = call(adapt_neuropictor, subject, root=root, base=backbone, captions=captions,
                  sessions=sessions_list(sessions), preset=preset, settings=settings,
                  options=NeuroPictorOptions(semantic_weight=semantic_weight, uncond_prob=uncond_prob,
                                             train_encoder=train_encoder, gradient_checkpointing=gradient_checkpointing,
                                             average_repeats=average_repeats),
                  device=device, desc=desc, resume=resume, overwrite=overwrite)
    reports.neuropictor(result)
