"""``fmrikit pretrain MODEL``: one subcommand per trainable model, each with only its own options.

``fmrikit pretrain --subjects 2,3,4`` (the decoder) and ``fmrikit pretrain --model X ...`` keep working.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli import options as o
from fmrikit.cli import reports
from fmrikit.cli._common import ModelGroup, call, int_list, out_console, sessions_list
from fmrikit.methods.encoder.settings import EncoderSettings, encoder_preset
from fmrikit.methods.latent.settings import AUTOENCODER_SETTINGS, DEFAULT_MAPPER
from fmrikit.methods.mindeye.settings import (PRIOR_SETTINGS, DecoderPreset, ModelSize, TrainSettings,
                                             decoder_preset, with_options)
from fmrikit.methods.neuropictor.settings import NeuroPictorOptions
from fmrikit.project import subject_label

app = typer.Typer(cls=ModelGroup, no_args_is_help=True,
                  help="Train a model: decoder (the default), encoder, ridge, autoencoder, latent-mapper, prior, "
                       "flatmap-ae or neuropictor. `fmrikit pretrain MODEL --help` lists each model's options.")

Out = Annotated[Optional[Path], typer.Option(help="Model folder [default: <root>/models/<model>].")]
# training options whose default is the --preset's
PresetEpochs = Annotated[Optional[int], typer.Option(min=1, help="Training epochs [default: the preset's].")]
PresetBatch = Annotated[Optional[int], typer.Option(min=1, help="Samples per step and process [default: the "
                                                                "preset's].")]
PresetLr = Annotated[Optional[float], typer.Option("--lr", min=0.0, help="Learning rate [default: the preset's].")]
PresetWeightDecay = Annotated[Optional[float], typer.Option(min=0.0, help="AdamW weight decay [default: the "
                                                                          "preset's].")]
PresetPatience = Annotated[Optional[int], typer.Option(min=0, help="Epochs without validation gain before stopping "
                                                                   "[default: the preset's].")]
AverageRepeats = Annotated[bool, typer.Option("--average-repeats/--single-trials",
                                              help="Train on each image's flatmap averaged over its trials (the "
                                                   "paper), or on single trials.")]


@app.command("decoder")
def decoder(
    subjects: o.Subjects,
    roi: o.Roi = "nsdgeneral",
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
    device: o.Device = "auto",
    out: Out = None,
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """The cross-subject MindEye2-style decoder (contrastive retrieval + embedding regression); runs unchanged
    under torchrun."""
    from fmrikit.methods.mindeye.pretrain import pretrain_decoder

    chosen = call(decoder_preset, preset)
    result = call(pretrain_decoder, int_list(subjects, "--subjects"), roi=roi, root=root, out=out,
                  features=features or chosen.features, image_model=image_model, targets=targets or chosen.targets,
                  size=decoder_size(chosen, hidden, blocks),
                  settings=with_options(chosen.pretrain, epochs=epochs, batch_size=batch_size, lr=lr,
                                        weight_decay=weight_decay, mse_weight=mse_weight, temperature=temperature,
                                        seed=seed),
                  preset=preset, device=device, resume=resume, overwrite=overwrite)
    for key, scores in result.retrieval.items():
        reports.retrieval(f"decoder {key}", result.model, scores)


def decoder_size(preset: DecoderPreset, hidden: Optional[int], blocks: Optional[int]) -> ModelSize:
    """A preset's decoder size with the width (of the backbone and the projector) and depth given on the command
    line."""
    return with_options(preset.size, hidden=hidden, proj_hidden=hidden, n_blocks=blocks)


@app.command("encoder")
def encoder(
    subjects: o.Subjects,
    roi: o.Roi = "nsdgeneral",
    preset: o.EncoderPreset = "small",
    features: Annotated[Optional[str], typer.Option(help="Image features (multi-level patches): gabor, "
                                                         "effnet-lite0, clip or dinov2 [default: the "
                                                         "preset's].")] = None,
    image_model: o.ImageModel = None,
    grid: o.Grid = None,
    channels: Annotated[Optional[int], typer.Option(min=1, help="Channels each feature level is projected to "
                                                                "[default: the preset's].")] = None,
    embed_dim: Annotated[Optional[int], typer.Option(min=1, help="Size of each voxel's embedding [default: the "
                                                                 "preset's].")] = None,
    sessions: o.Sessions = None,
    n_train: o.NTrain = None,
    epochs: o.EncEpochs = None,
    batch_size: o.EncBatch = None,
    voxels_per_image: o.EncVoxelsPerImage = None,
    lr: o.EncLr = None,
    cosine_weight: o.CosineWeight = None,
    seed: o.Seed = EncoderSettings.seed,
    device: o.Device = "auto",
    out: Out = None,
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """The voxel-centric universal image-to-fMRI encoder, trained on several subjects at once (torchrun-ready)."""
    from fmrikit.methods.encoder.runs import pretrain_encoder

    chosen = call(encoder_preset, preset, features=features, grid=grid, channels=channels, embed_dim=embed_dim,
                  epochs=epochs, batch_images=batch_size, voxels_per_image=voxels_per_image, lr=lr,
                  cosine_weight=cosine_weight, seed=seed)
    result = call(pretrain_encoder, int_list(subjects, "--subjects"), roi=roi, root=root, out=out,
                  features=chosen.features, image_model=image_model, grid=chosen.grid, size=chosen.size,
                  settings=chosen.settings, sessions=sessions_list(sessions), n_train=n_train, preset=chosen.name,
                  device=device, resume=resume, overwrite=overwrite)
    for key, scores in result.scores.items():
        reports.encoding(f"encoder {key}", result.model, scores)


@app.command("ridge")
def ridge(
    subjects: o.Subjects,
    roi: o.Roi = "nsdgeneral",
    features: Annotated[str, typer.Option(help="Image features (flattened patches): gabor, effnet-lite0, clip or "
                                               "dinov2.")] = "gabor",
    image_model: o.ImageModel = None,
    sessions: o.Sessions = None,
    n_train: o.NTrain = None,
    seed: o.Seed = 0,
    out: Annotated[Optional[Path], typer.Option(help="Output folder; one sub-NN folder per subject inside "
                                                     "[default: <root>/sub-NN/sub-NN_desc-ridge].")] = None,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """The universal encoder's per-subject baseline: ridge regression from image features (himalaya, one alpha per
    voxel by cross-validation)."""
    from fmrikit.methods.encoder.baseline import ridge_baseline

    for subject in int_list(subjects, "--subjects"):
        label = call(subject_label, subject)
        result = call(ridge_baseline, subject, root=root, roi=roi, features=features, image_model=image_model,
                      sessions=sessions_list(sessions), n_train=n_train, seed=seed,
                      out=out / label if out is not None else None, overwrite=overwrite)
        reports.encoding(f"ridge {subject_label(subject)} (fit {result.fit_seconds:.1f} s)", result.out,
                         result.scores)


@app.command("autoencoder")
def autoencoder(
    subjects: o.Subjects,
    preset: o.Preset = "small",
    image_size: Annotated[Optional[int], typer.Option(min=8, help="Image side in pixels [default: the preset's: 64; "
                                                                  "paper 320].")] = None,
    epochs: o.Epochs = AUTOENCODER_SETTINGS.epochs,
    batch_size: o.ImageBatch = AUTOENCODER_SETTINGS.batch_size,
    lr: o.Lr = AUTOENCODER_SETTINGS.lr,
    seed: o.Seed = AUTOENCODER_SETTINGS.seed,
    device: o.Device = "auto",
    out: Out = None,
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """The embedded image autoencoder of reconstruction (a small diffusers AutoencoderKL), for machines without
    Stable Diffusion weights; --preset paper gives it Stable Diffusion's VAE architecture (4 x 40 x 40 latents)."""
    from fmrikit.methods.latent.autoencoder import pretrain_autoencoder
    from fmrikit.methods.latent.settings import AutoencoderSize

    settings = replace(AUTOENCODER_SETTINGS, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    path = call(pretrain_autoencoder, int_list(subjects, "--subjects"), root=root, out=out, preset=preset,
                size=call(AutoencoderSize.from_preset, preset, image_size=image_size),
                settings=settings, device=device, resume=resume, overwrite=overwrite)
    out_console.print(f"autoencoder: {path}")


@app.command("latent-mapper")
def latent_mapper(
    subject: o.Subject,
    mapper: Annotated[str, typer.Option(help="Image mapper: ridge (the mapper study's best), cnn, vae or gcn (the "
                                             "text mapper is ridge for ridge, else the text CNN).")] = DEFAULT_MAPPER,
    preset: o.Preset = "small",
    roi: o.Roi = "nsdgeneral",
    pipeline: Annotated[Optional[str], typer.Option(help="Stable Diffusion folder or cached id whose VAE and text "
                                                         "encoder give the targets [default: the embedded "
                                                         "autoencoder, image latents only].")] = None,
    autoencoder: Annotated[Optional[Path], typer.Option(help="Autoencoder folder [default: "
                                                             "<root>/models/autoencoder].")] = None,
    text: Annotated[bool, typer.Option(help="With --pipeline: also train the caption-embedding mapper.")] = True,
    captions: o.Captions = None,
    image_roi: Annotated[str, typer.Option(help="NSD atlas or mask NIfTI of the image mapper's voxels.")]
    = "prf-visualrois",
    image_labels: Annotated[Optional[str], typer.Option(help="Labels of --image-roi, e.g. 1-7 [default: 1-7 of "
                                                             "prf-visualrois (V1-hV4), else all > 0].")] = None,
    text_roi: Annotated[str, typer.Option(help="NSD atlas or mask NIfTI of the text mapper's voxels.")] = "streams",
    text_labels: Annotated[Optional[str], typer.Option(help="Labels of --text-roi [default: 5 (ventral) of streams, "
                                                            "else all > 0].")] = None,
    image_size: Annotated[Optional[int], typer.Option(min=8, help="Image side in pixels [default: the "
                                                                  "autoencoder's].")] = None,
    sessions: o.Sessions = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Most epochs [default: the preset's, 100].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Batch size [default: the preset's; paper: the "
                                                                  "report's per mapper, cnn, vae 256; gcn 64; text "
                                                                  "CNN 16].")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", min=0.0, help="Learning rate [default: the preset's; paper: "
                                                                      "the report's per mapper, cnn, vae 5e-4; gcn "
                                                                      "1e-3; text CNN 1e-4].")] = None,
    patience: Annotated[Optional[int], typer.Option(min=0, help="Epochs without validation gain before stopping "
                                                                "[default: the preset's, 5].")] = None,
    seed: o.Seed = 0,
    device: o.Device = "auto",
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: "
                                                     "<root>/sub-NN/sub-NN_desc-<mapper>_latentmapper].")] = None,
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Takagi & Nishimoto's mappers for one subject: early visual voxels to the autoencoder / Stable Diffusion
    latent, higher visual voxels to the caption embeddings. --preset paper: the report's networks and its Table 2
    learning rates and batch sizes; small: CPU-sized networks."""
    from fmrikit.data.preprocess import parse_ranges
    from fmrikit.methods.latent.settings import MapperOptions
    from fmrikit.methods.latent.train import pretrain_latent_mapper

    def labels(text_value: Optional[str]):
        return None if text_value is None else tuple(call(parse_ranges, text_value, "ROI labels", 1))

    options = call(MapperOptions.for_rois, image_roi, labels(image_labels), text_roi, labels(text_labels), image_size,
                   preset)
    given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience}
    result = call(pretrain_latent_mapper, subject, mapper=mapper, root=root, roi=roi, autoencoder=autoencoder,
                  pipeline=pipeline, text=text, captions=captions, sessions=sessions_list(sessions), preset=preset,
                  options=options,
                  overrides={"seed": seed, **{k: v for k, v in given.items() if v is not None}}, device=device,
                  out=out, resume=resume, overwrite=overwrite)
    reports.latent_mapper(mapper, result)


@app.command("prior")
def prior(
    subject: o.Subject,
    backbone: Annotated[Optional[Path], typer.Option(help="The subject decoder folder [default: the subject's troi, "
                                                          "else adapt decoder].")] = None,
    epochs: o.Epochs = PRIOR_SETTINGS.epochs,
    batch_size: o.RowBatch = PRIOR_SETTINGS.batch_size,
    lr: o.Lr = PRIOR_SETTINGS.lr,
    patience: o.Patience = PRIOR_SETTINGS.patience,
    seed: o.Seed = PRIOR_SETTINGS.seed,
    device: o.Device = "auto",
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: "
                                                     "<root>/sub-NN/sub-NN_desc-prior_prior].")] = None,
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """The diffusion prior of a subject decoder (diffusers PriorTransformer) for the unCLIP route."""
    from fmrikit.methods.mindeye.prior import pretrain_prior

    settings = replace(PRIOR_SETTINGS, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed)
    path = call(pretrain_prior, subject, root=root, decoder=backbone, settings=settings, device=device, out=out,
                resume=resume, overwrite=overwrite)
    out_console.print(f"diffusion prior: {path}")


@app.command("flatmap-ae")
def flatmap_ae(
    subjects: o.Subjects,
    roi: o.Roi = "nsdgeneral",
    preset: o.Preset = "small",
    flatmap_size: Annotated[Optional[int], typer.Option(min=1, help="Flatmap side in pixels [default: the "
                                                                    "preset's].")] = None,
    patch_size: Annotated[Optional[int], typer.Option(min=1, help="Patch side [default: the preset's].")] = None,
    width: Annotated[Optional[int], typer.Option(min=1, help="Token width [default: the preset's].")] = None,
    depth: Annotated[Optional[int], typer.Option(min=1, help="Transformer blocks of the encoder and of the decoder "
                                                             "[default: the preset's].")] = None,
    heads: Annotated[Optional[int], typer.Option(min=1, help="Attention heads [default: the preset's].")] = None,
    sessions: o.Sessions = None,
    average_repeats: AverageRepeats = NeuroPictorOptions.average_repeats,
    epochs: PresetEpochs = None,
    batch_size: PresetBatch = None,
    lr: PresetLr = None,
    weight_decay: PresetWeightDecay = None,
    patience: PresetPatience = None,
    seed: o.Seed = 0,
    device: o.Device = "auto",
    out: Out = None,
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """NeuroPictor's flatmap autoencoder (calibrated encoding): a ViT that rebuilds each image's cortical flatmap
    from its [CLS] token; runs under torchrun. --preset small: 64 px, 4 x 128, for a CPU; paper: 256 px, 24 x 1024,
    AdamW at 5e-4, 48 per GPU for 650 epochs (a GPU model)."""
    from fmrikit.methods.neuropictor.flatmap_ae import pretrain_flatmap_ae
    from fmrikit.methods.neuropictor.settings import FlatmapAESize, flatmap_ae_settings

    size = call(FlatmapAESize.from_preset, preset, image_size=flatmap_size, patch_size=patch_size, width=width,
                depth=depth, heads=heads)
    settings = call(flatmap_ae_settings, preset, epochs=epochs, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, patience=patience, seed=seed)
    result = call(pretrain_flatmap_ae, int_list(subjects, "--subjects"), root=root, roi=roi, preset=preset, size=size,
                  settings=settings, sessions=sessions_list(sessions), average_repeats=average_repeats,
                  device=device, out=out, resume=resume, overwrite=overwrite)
    reports.flatmap_ae(result)


@app.command("neuropictor")
def neuropictor(
    subjects: o.Subjects,
    pipeline: Annotated[Optional[str], typer.Option(help="Stable Diffusion 2.1-shaped folder or cached Hugging Face "
                                                         "id (required; never downloaded).")] = None,
    preset: o.Preset = "small",
    roi: o.Roi = "nsdgeneral",
    flatmap_ae: Annotated[Optional[Path], typer.Option(help="Flatmap autoencoder folder [default: "
                                                            "<root>/models/flatmap-ae].")] = None,
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
    device: o.Device = "auto",
    out: Out = None,
    resume: o.Resume = False,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Cross-subject NeuroPictor on a Stable Diffusion pipeline: flatmap tokens to a semantic condition and a
    ControlNet; runs under torchrun. --preset small: 10 epochs; paper: 100 epochs (the paper's 100k iterations of
    64 pairs)."""
    from fmrikit.methods.neuropictor.settings import neuropictor_settings
    from fmrikit.methods.neuropictor.train import pretrain_neuropictor

    settings = call(neuropictor_settings, preset, "pretrain", epochs=epochs, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, seed=seed)
    result = call(pretrain_neuropictor, int_list(subjects, "--subjects"), root=root, roi=roi, pipeline=pipeline,
                  flatmap_ae=flatmap_ae, captions=captions, sessions=sessions_list(sessions), preset=preset,
                  settings=settings,
                  options=NeuroPictorOptions(semantic_weight=semantic_weight, uncond_prob=uncond_prob,
                                             train_encoder=train_encoder, gradient_checkpointing=gradient_checkpointing,
                                             average_repeats=average_repeats),
                  device=device, out=out, resume=resume, overwrite=overwrite)
    reports.neuropictor(result)
