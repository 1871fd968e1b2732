"""Every command-line option declared once: its name, help and valid range. Commands give the defaults, which
they read from the library's settings (``fmrikit.methods.*.settings``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Root = Annotated[Optional[Path], typer.Option(
    "--root", envvar="FMRIKIT_ROOT", show_envvar=True,
    help="Project folder for outputs [default: ./derivatives/fmrikit].")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]


def _check_device(value: str) -> str:
    """Refuse a device this machine does not have while the command line is read (before any work)."""
    from fmrikit.devices import resolve_device
    from fmrikit.errors import InputError

    try:
        resolve_device(value)
    except InputError as exc:
        raise typer.BadParameter(exc.one_line()) from None
    return value


Device = Annotated[str, typer.Option(callback=_check_device, help="auto, cpu, cuda or cuda:N.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last epoch checkpoint.")]
Preset = Annotated[str, typer.Option(help="small (CPU-sized defaults) or paper (the published sizes and schedule, a "
                                          "GPU model); options given explicitly override the preset.")]

# -- data -------------------------------------------------------------------------------------------------------
Subject = Annotated[int, typer.Option(min=1, help="The subject (1-based).")]
Subjects = Annotated[str, typer.Option(help="Subjects, e.g. 2,5,7.")]
Roi = Annotated[str, typer.Option(help="Voxel selection of the datasets (preprocess --roi).")]
Sessions = Annotated[Optional[str], typer.Option(help="Sessions whose trials train, e.g. 1 or 1-3 [default: all]; "
                                                      "the shared images are always the test set.")]
NTrain = Annotated[Optional[int], typer.Option(min=1, help="Training images per subject, drawn at random with "
                                                           "--seed [default: all].")]
Captions = Annotated[Optional[Path], typer.Option(help="Folder of COCO captions_*.json [default: in the NSD tree].")]
Desc = Annotated[str, typer.Option(help="desc- label of the outputs (letters and digits).")]

# -- image features -------------------------------------------------------------------------------------------
Features = Annotated[str, typer.Option(help="Image features: gabor, effnet-lite0, clip or dinov2.")]
ImageModel = Annotated[Optional[str], typer.Option(help="Local folder or cached Hugging Face id for clip / dinov2.")]

# -- optimisation -------------------------------------------------------------------------------------------------
Epochs = Annotated[int, typer.Option(min=1, help="Training epochs.")]
TrialBatch = Annotated[int, typer.Option(min=2, help="Trials per step and process (split over subjects).")]
ImageBatch = Annotated[int, typer.Option(min=1, help="Images per step and process.")]
RowBatch = Annotated[int, typer.Option(min=1, help="Samples per step and process.")]
Lr = Annotated[float, typer.Option("--lr", min=0.0, help="Learning rate (peak of the schedule).")]
WeightDecay = Annotated[float, typer.Option(min=0.0, help="AdamW weight decay.")]
Patience = Annotated[int, typer.Option(min=0, help="Epochs without validation gain before stopping.")]
MseWeight = Annotated[float, typer.Option(min=0.0, help="Weight of the embedding-regression MSE against the "
                                                        "contrastive loss.")]
Temperature = Annotated[float, typer.Option(min=0.0, help="Contrastive softmax temperature.")]

# -- the decoder (MindEye2-style) ---------------------------------------------------------------------------------
Hidden = Annotated[int, typer.Option(min=1, help="Backbone width.")]
Blocks = Annotated[int, typer.Option(min=1, help="Residual blocks in the backbone.")]
DecoderBackbone = Annotated[Optional[Path], typer.Option(help="Pretrained decoder folder [default: "
                                                              "<root>/models/decoder].")]
# the decoder's options a --preset sets (None: the preset's value)
PresetFeatures = Annotated[Optional[str], typer.Option(
    "--features", help="Image features of the targets: gabor, effnet-lite0, clip or dinov2 [default: the preset's: "
                       "gabor (small), clip (paper)].")]
Targets = Annotated[Optional[str], typer.Option(help="What the decoder predicts: tokens (the image's patch tokens of "
                                                     "the features' last level, as MindEye2) or pooled (one vector) "
                                                     "[default: the preset's: tokens].")]
PresetHidden = Annotated[Optional[int], typer.Option("--hidden", min=1, help="Backbone width [default: the "
                                                                              "preset's: 256 (small), 4096 (paper)].")]
PresetBlocks = Annotated[Optional[int], typer.Option("--blocks", min=1, help="Residual blocks in the backbone "
                                                                              "[default: the preset's: 2, 4].")]
PresetEpochs = Annotated[Optional[int], typer.Option("--epochs", min=1, help="Training epochs [default: the preset's: "
                                                    "3 for pretraining and 30 for a new subject (small), 150 "
                                                    "(paper)].")]
PresetBatch = Annotated[Optional[int], typer.Option("--batch-size", min=2, help="Trials per step and process, split "
                                                    "over subjects [default: the preset's: 32 for pretraining and 24 "
                                                    "for a new subject (small), 24 (paper)].")]
PresetLr = Annotated[Optional[float], typer.Option("--lr", min=0.0, help="Peak learning rate [default: the preset's: "
                                                                          "1e-3 (small), 3e-4 (paper)].")]
Unfreeze = Annotated[bool, typer.Option("--unfreeze-backbone", help="Train the pretrained backbone too.")]

# -- the universal encoder ---------------------------------------------------------------------------------------
EncoderPreset = Annotated[str, typer.Option(help="small (CPU: EfficientNet-Lite0 features) or paper (the Universal "
                                                 "Brain Encoder's: DINOv2 features, needs --image-model); the options "
                                                 "below override it.")]
Grid = Annotated[Optional[int], typer.Option(min=1, help="Patch grid side of gabor / effnet-lite0 features, e.g. 14 "
                                                         "or 16 for small receptive fields [default: the "
                                                         "extractor's, 8 / 7].")]
EncEpochs = Annotated[Optional[int], typer.Option("--epochs", min=1, help="Training epochs [default: the preset's].")]
EncBatch = Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Images per step and process [default: "
                                                                             "the preset's].")]
EncVoxelsPerImage = Annotated[Optional[int], typer.Option("--voxels-per-image", min=2, help="Voxels drawn for each "
                                                          "image of a step [default: the preset's].")]
EncLr = Annotated[Optional[float], typer.Option("--lr", min=0.0, help="Adam learning rate [default: the preset's].")]
CosineWeight = Annotated[Optional[float], typer.Option("--cosine-weight", min=0.0, help="Weight of (1 - cosine "
                                                       "similarity) against the MSE [default: the preset's].")]

# -- Stable Diffusion and NeuroPictor -----------------------------------------------------------------------------
Pipeline = Annotated[Optional[str], typer.Option(help="Stable Diffusion folder or cached Hugging Face id (never "
                                                      "downloaded).")]
SemanticWeight = Annotated[float, typer.Option(min=0.0, help="Weight of the semantic (caption embedding) loss "
                                                             "against the diffusion loss.")]
UncondProb = Annotated[float, typer.Option(min=0.0, max=1.0, help="Fraction of semantic conditions replaced by the "
                                                                  "empty prompt (classifier-free guidance).")]
TrainEncoder = Annotated[bool, typer.Option("--train-encoder/--freeze-encoder",
                                            help="Fine-tune the flatmap encoder too.")]
Checkpointing = Annotated[bool, typer.Option("--gradient-checkpointing", help="Recompute U-Net and ControlNet "
                                             "activations in the backward pass (less GPU memory).")]
