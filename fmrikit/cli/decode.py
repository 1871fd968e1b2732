"""``fmrikit pretrain``, ``fmrikit roi-train`` and ``fmrikit adapt-subject``: the decoder, and with
``--model encoder`` the universal encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli._common import OverwriteOption, RootOption, call, int_list, out_console
from fmrikit.errors import InputError
from fmrikit.project import subject_label
from fmrikit.methods.mindeye.settings import SUBJECT_BATCH_SIZE, ModelSize, TrainSettings
from fmrikit.methods.encoder.settings import EncoderSettings, EncoderSize
from fmrikit.methods.troi.settings import TroiSettings

# option defaults come from the library's settings
T, M, R, ES, EZ = TrainSettings, ModelSize, TroiSettings, EncoderSettings, EncoderSize
MODELS = ("decoder", "encoder", "ridge", "autoencoder", "latent-mapper", "prior", "flatmap-ae", "neuropictor")

Epochs = Annotated[int, typer.Option(help="Training epochs.")]
BatchSize = Annotated[int, typer.Option(help="Trials per step and process (split over subjects); encoder: images per "
                                             "step and process.")]
Lr = Annotated[float, typer.Option("--lr", help="Peak learning rate (decoder: one-cycle schedule; encoder: Adam, "
                                                "constant).")]
WeightDecay = Annotated[float, typer.Option(help="AdamW weight decay.")]
MseWeight = Annotated[float, typer.Option(help="Weight of the embedding-regression MSE against the contrastive "
                                               "loss.")]
Temperature = Annotated[float, typer.Option(help="Contrastive softmax temperature.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its last epoch "
                                                       "checkpoint.")]
Backbone = Annotated[Optional[Path], typer.Option(help="Pretrained model folder [default: <root>/models/decoder, or "
                                                       "<root>/models/encoder, <root>/models/neuropictor with "
                                                       "--model encoder, neuropictor].")]
Sessions = Annotated[Optional[str], typer.Option(help="Sessions whose trials train, e.g. 1 or 1-3 [default: all]; "
                                                      "the shared images are always the test set.")]
Features = Annotated[str, typer.Option(help="Image features giving the target embeddings: gabor, effnet-lite0, "
                                            "clip, dinov2.")]
ImageModel = Annotated[Optional[str], typer.Option(help="Local folder or cached Hugging Face id for clip / dinov2.")]
Hidden = Annotated[int, typer.Option(help="Backbone width.")]
Blocks = Annotated[int, typer.Option(help="Residual blocks in the backbone.")]
Unfreeze = Annotated[bool, typer.Option("--unfreeze-backbone", help="Train the pretrained backbone too.")]
Model = Annotated[str, typer.Option(help="decoder (MindEye2-style, retrieval) or encoder (universal image-to-fMRI "
                                         "encoder).")]
PretrainModel = Annotated[str, typer.Option(help="decoder (MindEye2-style, retrieval), encoder (universal image-to-fMRI "
                                                 "encoder), ridge (the encoder's per-subject ridge baseline, written "
                                                 "to <root>/sub-NN/sub-NN_desc-ridge/), autoencoder (the embedded "
                                                 "image autoencoder of reconstruction), latent-mapper (fMRI to "
                                                 "autoencoder / Stable Diffusion latents, one subject), prior (the "
                                                 "diffusion prior of a subject decoder, unCLIP route), flatmap-ae "
                                                 "(NeuroPictor's flatmap autoencoder, calibrated encoding) or "
                                                 "neuropictor (cross-subject NeuroPictor on a Stable Diffusion "
                                                 "pipeline).")]
NTrain = Annotated[Optional[int], typer.Option(help="Encoder: training images per subject, drawn at random with "
                                                    "--seed [default: all].")]
Channels = Annotated[int, typer.Option(help="Encoder: channels each feature level is projected to.")]
EmbedDim = Annotated[int, typer.Option(help="Encoder: size of each voxel's embedding.")]
VoxelsPerImage = Annotated[int, typer.Option(help="Encoder: voxels sampled per image and step.")]
CosineWeight = Annotated[float, typer.Option(help="Encoder: weight of (1 - cosine similarity) against the MSE.")]
SemanticWeight = Annotated[float, typer.Option(help="neuropictor: weight of the semantic (caption embedding) loss "
                                                    "against the diffusion loss.")]
UncondProb = Annotated[float, typer.Option(help="neuropictor: fraction of semantic conditions replaced by the empty "
                                                "prompt (classifier-free guidance).")]
TrainEncoder = Annotated[bool, typer.Option("--train-encoder/--freeze-encoder",
                                            help="neuropictor: fine-tune the flatmap encoder too.")]
Checkpointing = Annotated[bool, typer.Option("--gradient-checkpointing", help="neuropictor: recompute U-Net and "
                                             "ControlNet activations in the backward pass (less GPU memory).")]


def _settings(epochs, batch_size, lr, weight_decay, mse_weight, temperature, seed):
    return T(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         mse_weight=mse_weight, temperature=temperature, seed=seed)


def _sessions(text: Optional[str]) -> Optional[list[int]]:
    from fmrikit.data.preprocess import parse_sessions

    return call(parse_sessions, text) if text else None


def _report(label: str, path: Path, scores: dict | None) -> None:
    from fmrikit.engine.distributed import env_rank

    if env_rank() != 0:
        return
    out_console.print(f"{label}: {path}")
    if scores:
        out_console.print(f"  retrieval on {scores['n_test_images']} test images ({scores['n_candidates']} candidates, "
                          f"chance {scores['chance']:.1%}): image {scores['image_retrieval']:.1%}, "
                          f"brain {scores['brain_retrieval']:.1%}")


def pretrain(
    ctx: typer.Context,
    subjects: Annotated[Optional[str], typer.Option(help="Subjects to pretrain on, e.g. 2,5,7.")] = None,
    subject: Annotated[Optional[int], typer.Option(help="latent-mapper: the subject (or --subjects N).")] = None,
    model: PretrainModel = "decoder",
    roi: Annotated[str, typer.Option(help="Voxel selection of the datasets (annotated ROI).")] = "nsdgeneral",
    features: Annotated[str, typer.Option(help="Image features: decoder targets (pooled) or encoder inputs "
                                               "(multi-level patches): gabor, effnet-lite0, clip, dinov2.")] = "gabor",
    image_model: ImageModel = None,
    hidden: Hidden = M.hidden,
    blocks: Blocks = M.n_blocks,
    channels: Channels = EZ.channels,
    embed_dim: EmbedDim = EZ.embed_dim,
    sessions: Sessions = None,
    n_train: NTrain = None,
    epochs: Epochs = T.epochs,
    batch_size: BatchSize = T.batch_size,
    lr: Lr = T.lr,
    weight_decay: WeightDecay = T.weight_decay,
    mse_weight: MseWeight = T.mse_weight,
    temperature: Temperature = T.temperature,
    voxels_per_image: VoxelsPerImage = ES.voxels_per_image,
    cosine_weight: CosineWeight = ES.cosine_weight,
    mapper: Annotated[str, typer.Option(help="latent-mapper: image mapper ridge, cnn, vae or gcn (text: ridge, or the "
                                             "text CNN).")] = "gcn",
    pipeline: Annotated[Optional[str], typer.Option(help="latent-mapper / neuropictor: Stable Diffusion folder or "
                                                         "cached id whose VAE and text encoder give the targets "
                                                         "[latent-mapper default: the embedded autoencoder, image "
                                                         "latents only; neuropictor: required, 2.1-shaped].")] = None,
    autoencoder: Annotated[Optional[Path], typer.Option(help="latent-mapper: autoencoder folder [default: "
                                                             "<root>/models/autoencoder].")] = None,
    text: Annotated[bool, typer.Option(help="latent-mapper with --pipeline: also train the caption-embedding "
                                            "mapper.")] = True,
    captions: Annotated[Optional[Path], typer.Option(help="latent-mapper / neuropictor: folder of COCO "
                                                          "captions_*.json [default: in the NSD tree].")] = None,
    image_roi: Annotated[str, typer.Option(help="latent-mapper: NSD atlas or mask NIfTI of the image mapper's voxels "
                                                "(with --image-labels).")] = "prf-visualrois",
    image_labels: Annotated[Optional[str], typer.Option(help="latent-mapper: labels of --image-roi, e.g. 1-7 [default: "
                                                             "1-7 of prf-visualrois (V1-hV4), else all > 0].")] = None,
    text_roi: Annotated[str, typer.Option(help="latent-mapper: NSD atlas or mask NIfTI of the text mapper's voxels "
                                               "(with --text-labels).")] = "streams",
    text_labels: Annotated[Optional[str], typer.Option(help="latent-mapper: labels of --text-roi [default: 5 (ventral) "
                                                            "of streams, else all > 0].")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="autoencoder / latent-mapper: image side in pixels "
                                                           "[default: 64 / the autoencoder's].")] = None,
    patience: Annotated[int, typer.Option(help="latent-mapper / prior: epochs without validation gain before "
                                               "stopping [prior: 10].")] = 5,
    backbone: Annotated[Optional[Path], typer.Option(help="prior: the subject decoder folder [default: the subject's "
                                                          "troi, else adapt decoder].")] = None,
    preset: Annotated[str, typer.Option(help="flatmap-ae: architecture preset, paper (256 px, 24 x 1024: a GPU "
                                             "model) or small (64 px, 4 x 128).")] = "paper",
    flatmap_size: Annotated[Optional[int], typer.Option(help="flatmap-ae: flatmap side in pixels [default: the "
                                                             "preset's].")] = None,
    patch_size: Annotated[Optional[int], typer.Option(help="flatmap-ae: patch side [default: the preset's].")] = None,
    width: Annotated[Optional[int], typer.Option(help="flatmap-ae: token width [default: the preset's].")] = None,
    depth: Annotated[Optional[int], typer.Option(help="flatmap-ae: transformer blocks of the encoder and of the "
                                                      "decoder [default: the preset's].")] = None,
    heads: Annotated[Optional[int], typer.Option(help="flatmap-ae: attention heads [default: the preset's].")] = None,
    flatmap_ae: Annotated[Optional[Path], typer.Option(help="neuropictor: flatmap autoencoder folder [default: "
                                                            "<root>/models/flatmap-ae].")] = None,
    semantic_weight: SemanticWeight = 0.1,
    uncond_prob: UncondProb = 0.05,
    train_encoder: TrainEncoder = True,
    gradient_checkpointing: Checkpointing = False,
    seed: Seed = T.seed,
    device: Device = "auto",
    out: Annotated[Optional[Path], typer.Option(help="Model folder [default: <root>/models/decoder, "
                                                     "<root>/models/encoder, <root>/models/autoencoder, "
                                                     "<root>/models/flatmap-ae, <root>/models/neuropictor or "
                                                     "<root>/sub-NN/sub-NN_desc-<mapper>_latentmapper].")] = None,
    resume: Resume = False,
    root: RootOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Pretrain the cross-subject decoder or the universal encoder (runs unchanged under torchrun)."""
    _check_model(model)
    if subject is not None and subjects is None and model in ("latent-mapper", "prior"):
        subjects = str(subject)
    if subjects is None or (subject is not None and model not in ("latent-mapper", "prior")):
        call(_raise, InputError("which subjects?", expected="--subjects (--subject N with --model latent-mapper or "
                                "prior)", found="--subject" if subject is not None else "none"))
    given = {name for name in ("epochs", "batch_size", "lr", "patience")
             if ctx.get_parameter_source(name).name == "COMMANDLINE"}
    if model == "neuropictor":
        from fmrikit.methods.neuropictor.train import pretrain_neuropictor

        result = call(pretrain_neuropictor, int_list(subjects), root=root, roi=roi, pipeline=pipeline,
                      flatmap_ae=flatmap_ae, captions=captions, sessions=_sessions(sessions),
                      settings=_neuropictor_settings(ctx, epochs, batch_size, lr, weight_decay, seed),
                      options=_neuropictor_options(semantic_weight, uncond_prob, train_encoder,
                                                   gradient_checkpointing),
                      device=device, out=out, resume=resume, overwrite=overwrite)
        _report_neuropictor(result)
        return
    if model == "flatmap-ae":
        _pretrain_flatmap_ae(int_list(subjects), given, dict(image_size=flatmap_size, patch_size=patch_size,
                                                             width=width, depth=depth, heads=heads), preset=preset,
                             roi=roi, sessions=_sessions(sessions), epochs=epochs, batch_size=batch_size, lr=lr,
                             patience=patience, seed=seed, device=device, out=out, resume=resume, root=root,
                             overwrite=overwrite)
        return
    if model in ("autoencoder", "latent-mapper", "prior"):
        _pretrain_reconstruction(model, int_list(subjects), given, roi=roi, mapper=mapper, pipeline=pipeline,
                                 autoencoder=autoencoder, text=text, captions=captions, image_size=image_size,
                                 rois=(image_roi, image_labels, text_roi, text_labels), backbone=backbone,
                                 sessions=_sessions(sessions), epochs=epochs, batch_size=batch_size, lr=lr,
                                 patience=patience, seed=seed, device=device, out=out, resume=resume, root=root,
                                 overwrite=overwrite)
        return
    if model == "ridge":
        from fmrikit.methods.encoder.baseline import ridge_baseline

        for subject in int_list(subjects):
            result = call(ridge_baseline, subject, root=root, roi=roi, features=features, image_model=image_model,
                          sessions=_sessions(sessions), n_train=n_train, seed=seed,
                          out=out / subject_label(subject) if out is not None else None, overwrite=overwrite)
            _report_encoding(f"ridge {subject_label(subject)} (fit {result.fit_seconds:.1f} s)", result.out,
                             result.scores)
        return
    if model == "encoder":
        from fmrikit.methods.encoder.runs import pretrain_encoder

        result = call(pretrain_encoder, int_list(subjects), roi=roi, root=root, out=out, features=features,
                      image_model=image_model, size=EZ(channels=channels, embed_dim=embed_dim),
                      settings=_encoder_settings(epochs, batch_size, voxels_per_image, lr, cosine_weight, seed),
                      sessions=_sessions(sessions), n_train=n_train, device=device, resume=resume,
                      overwrite=overwrite)
        for key, scores in result.scores.items():
            _report_encoding(f"encoder {key}", result.model, scores)
        return
    _refuse_encoder_only(sessions=sessions, n_train=n_train)
    from fmrikit.methods.mindeye.pretrain import pretrain_decoder

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
    from fmrikit.methods.troi.stages import roi_train as run

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
    ctx: typer.Context,
    subject: Annotated[int, typer.Option(help="The new subject.")],
    model: Model = "decoder",
    mask: Annotated[Optional[Path], typer.Option(help="Decoder: binary NIfTI selecting the dataset's voxels (e.g. a "
                                                      "TROI mask).")] = None,
    roi: Annotated[Optional[str], typer.Option(help="Dataset (voxel selection) to read [default: nsdgeneral; "
                                                    "brainmask with --mask].")] = None,
    sessions: Sessions = None,
    n_train: NTrain = None,
    backbone: Backbone = None,
    pretrained: Annotated[bool, typer.Option(help="Encoder: learn only the new subject's voxel embeddings on the "
                                                  "frozen pretrained encoder (--no-pretrained trains a fresh "
                                                  "single-subject encoder on the same images).")] = True,
    features: Annotated[Optional[str], typer.Option(help="Encoder with --no-pretrained: image features [default: "
                                                         "gabor].")] = None,
    image_model: ImageModel = None,
    channels: Channels = EZ.channels,
    embed_dim: EmbedDim = EZ.embed_dim,
    unfreeze_backbone: Unfreeze = False,
    epochs: Epochs = T.epochs,
    batch_size: Annotated[int, typer.Option(help="Decoder: trials per step and process; encoder: images per step "
                                                 "and process.")] = SUBJECT_BATCH_SIZE,
    lr: Lr = T.lr,
    weight_decay: WeightDecay = T.weight_decay,
    mse_weight: MseWeight = T.mse_weight,
    temperature: Temperature = T.temperature,
    voxels_per_image: VoxelsPerImage = ES.voxels_per_image,
    cosine_weight: CosineWeight = ES.cosine_weight,
    semantic_weight: SemanticWeight = 0.1,
    uncond_prob: UncondProb = 0.05,
    train_encoder: TrainEncoder = True,
    gradient_checkpointing: Checkpointing = False,
    captions: Annotated[Optional[Path], typer.Option(help="neuropictor: folder of COCO captions_*.json [default: in "
                                                          "the NSD tree].")] = None,
    seed: Seed = T.seed,
    desc: Annotated[str, typer.Option(help="desc- label of the outputs.")] = "adapt",
    device: Device = "auto",
    resume: Resume = False,
    root: RootOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """A new subject on a pretrained model: the decoder's input layer, the encoder's voxel embeddings, or every
    NeuroPictor weight (single-subject refining)."""
    _check_model(model, MODELS[:2] + ("neuropictor",))
    if model == "neuropictor":
        from fmrikit.methods.neuropictor.train import adapt_neuropictor

        result = call(adapt_neuropictor, subject, root=root, base=backbone, captions=captions,
                      sessions=_sessions(sessions),
                      settings=_neuropictor_settings(ctx, epochs, batch_size, lr, weight_decay, seed),
                      options=_neuropictor_options(semantic_weight, uncond_prob, train_encoder,
                                                   gradient_checkpointing),
                      device=device, desc=desc, resume=resume, overwrite=overwrite)
        _report_neuropictor(result)
        return
    if model == "encoder":
        from fmrikit.errors import InputError
        from fmrikit.methods.encoder.runs import adapt_encoder

        if mask is not None or unfreeze_backbone:
            call(_raise, InputError("--mask and --unfreeze-backbone apply to --model decoder",
                                    expected="no --mask, no --unfreeze-backbone", found="given"))
        if pretrained and (features or image_model):
            call(_raise, InputError("--features and --image-model come from the pretrained encoder",
                                    expected="--no-pretrained with --features", found="--features with a base"))
        result = call(adapt_encoder, subject, root=root, roi=roi or "nsdgeneral", base=backbone,
                      pretrained=pretrained, n_train=n_train, sessions=_sessions(sessions),
                      features=features or "gabor", image_model=image_model,
                      size=EZ(channels=channels, embed_dim=embed_dim),
                      settings=_encoder_settings(epochs, batch_size, voxels_per_image, lr, cosine_weight, seed),
                      desc=desc, device=device, resume=resume, overwrite=overwrite)
        for key, scores in result.scores.items():
            _report_encoding(f"encoder {key}", result.model, scores)
        return
    _refuse_encoder_only(n_train=n_train, features=features, image_model=image_model,
                         **({"no-pretrained": True} if not pretrained else {}))
    from fmrikit.methods.mindeye.adapt import adapt_subject as run

    result = call(run, subject, root=root, roi=roi, mask=mask, sessions=_sessions(sessions), backbone=backbone,
                  unfreeze_backbone=unfreeze_backbone,
                  settings=_settings(epochs, batch_size, lr, weight_decay, mse_weight, temperature, seed), desc=desc,
                  device=device, resume=resume, overwrite=overwrite)
    _report(f"subject decoder ({result.n_voxels} voxels)", result.model, result.retrieval)


def _pretrain_reconstruction(model: str, subjects: list[int], given: set[str], *, roi, mapper, pipeline, autoencoder,
                             text, captions, image_size, rois, backbone, sessions, epochs, batch_size, lr, patience,
                             seed, device, out, resume, root, overwrite) -> None:
    """``pretrain --model autoencoder`` and ``--model latent-mapper``; ``given`` names the options set on the
    command line (the others take these models' own defaults, not the decoder's)."""
    from fmrikit.engine.supervised import SupervisedSettings

    if model == "autoencoder":
        from fmrikit.methods.latent.autoencoder import AutoencoderSize, pretrain_autoencoder

        settings = SupervisedSettings(epochs=epochs if "epochs" in given else 30,
                                      batch_size=batch_size if "batch_size" in given else 32,
                                      lr=lr if "lr" in given else 1e-3, patience=None, seed=seed)
        path = call(pretrain_autoencoder, subjects, root=root, out=out, size=AutoencoderSize(image_size=image_size or 64),
                    settings=settings, device=device, resume=resume, overwrite=overwrite)
        out_console.print(f"autoencoder: {path}")
        return
    if len(subjects) != 1:
        call(_raise, InputError(f"a {model} is trained per subject", expected="--subject N (one subject)",
                                found=",".join(map(str, subjects))))
    if model == "prior":
        from fmrikit.methods.mindeye.prior import pretrain_prior

        settings = SupervisedSettings(epochs=epochs if "epochs" in given else 100,
                                      batch_size=batch_size if "batch_size" in given else 64,
                                      lr=lr if "lr" in given else 3e-4,
                                      patience=patience if "patience" in given else 10, seed=seed)
        path = call(pretrain_prior, subjects[0], root=root, decoder=backbone, settings=settings, device=device,
                    out=out, resume=resume, overwrite=overwrite)
        out_console.print(f"diffusion prior: {path}")
        return
    from fmrikit.methods.latent.train import pretrain_latent_mapper

    values = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience}
    overrides = {"seed": seed, **{k: v for k, v in values.items() if k in given}}
    result = call(pretrain_latent_mapper, subjects[0], mapper=mapper, root=root, roi=roi, autoencoder=autoencoder,
                  pipeline=pipeline, text=text, captions=captions, sessions=sessions,
                  options=_mapper_options(image_size, *rois), overrides=overrides, device=device, out=out,
                  resume=resume, overwrite=overwrite)
    out_console.print(f"latent mapper ({mapper}): {result.model}")
    for name, s in result.scores.items():
        out_console.print(f"  {name} ({s['arch']}, {s['n_voxels']} voxels): test MSE {s['test_mse']:.4f} on "
                          f"{s['n_test_images']} images (predicting the training mean: "
                          f"{s['baseline_mse_train_mean']:.4f})")


def _pretrain_flatmap_ae(subjects: list[int], given: set[str], sizes: dict, *, preset, roi, sessions, epochs,
                         batch_size, lr, patience, seed, device, out, resume, root, overwrite) -> None:
    """``pretrain --model flatmap-ae``: options not in ``given`` take the flatmap autoencoder's defaults."""
    from dataclasses import replace

    from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAESize
    from fmrikit.engine.distributed import env_rank
    from fmrikit.methods.neuropictor.flatmap_ae import default_settings, pretrain_flatmap_ae

    size = call(FlatmapAESize.from_preset, preset, **sizes)
    values = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience}
    settings = replace(default_settings(), seed=seed, **{k: v for k, v in values.items() if k in given})
    result = call(pretrain_flatmap_ae, subjects, root=root, roi=roi, size=size, settings=settings, sessions=sessions,
                  device=device, out=out, resume=resume, overwrite=overwrite)
    if env_rank() != 0:
        return
    out_console.print(f"flatmap autoencoder: {result.model}")
    for key, s in result.scores.items():
        out_console.print(f"  {key}: flatmap AE test masked MSE {_num(s['mse'], 4)} vs mean-flatmap baseline "
                          f"{_num(s['baseline_mse'], 4)} (ratio {_num(s['mse_ratio'])}), r {_num(s['r'])} vs "
                          f"{_num(s['baseline_r'])} on {s['n_test_images']} images")


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _mapper_options(image_size, image_roi, image_labels, text_roi, text_labels):
    """MapperOptions from the CLI: labels default to V1-hV4 of prf-visualrois / ventral of streams."""
    from fmrikit.data.preprocess import parse_ranges
    from fmrikit.methods.latent.train import MapperOptions

    def labels(text, roi, atlas, default):
        if text:
            return tuple(call(parse_ranges, text, "ROI labels", 1))
        return default if roi == atlas else None

    base = MapperOptions()
    return MapperOptions(image_roi=image_roi, image_labels=labels(image_labels, image_roi, "prf-visualrois",
                                                                  base.image_labels),
                         text_roi=text_roi, text_labels=labels(text_labels, text_roi, "streams", base.text_labels),
                         image_size=image_size)


def _check_model(model: str, allowed: tuple[str, ...] = MODELS) -> None:
    from fmrikit.errors import InputError

    if model not in allowed:
        call(_raise, InputError("unknown model", expected=" or ".join(allowed), found=repr(model)))


def _refuse_encoder_only(**given) -> None:
    from fmrikit.errors import InputError

    names = [f"--{k.replace('_', '-')}" for k, v in given.items() if v]
    if names:
        call(_raise, InputError(f"{', '.join(names)} apply to --model encoder", expected="--model encoder",
                                found="--model decoder"))


def _encoder_settings(epochs, batch_size, voxels_per_image, lr, cosine_weight, seed):
    return ES(epochs=epochs, batch_images=batch_size, voxels_per_image=voxels_per_image, lr=lr,
              cosine_weight=cosine_weight, seed=seed)


def _report_encoding(label: str, path: Path, scores: dict | None) -> None:
    from fmrikit.engine.distributed import env_rank

    if env_rank() != 0:
        return
    out_console.print(f"{label}: {path}")
    if scores:
        nc = "" if scores["nc_score_median"] is None else f", noise-ceiling score {scores['nc_score_median']:.1f}%"
        out_console.print(f"  on {scores['n_test_images']} test images: voxel r median {scores['median_r']:.3f}, "
                          f"75th percentile {scores['p75_r']:.3f}{nc}; retrieval among "
                          f"{scores['retrieval_candidates']}: top-1 {scores['retrieval_top1']:.1%}, "
                          f"top-5 {scores['retrieval_top5']:.1%}")


def _neuropictor_settings(ctx: typer.Context, epochs, batch_size, lr, weight_decay, seed):
    """NeuroPictor's training settings: its own defaults (paper: AdamW, lr 1e-4, weight decay 0.01) for the
    options not set on the command line."""
    from dataclasses import replace

    from fmrikit.methods.neuropictor.train import DEFAULT_SETTINGS

    values = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay}
    given = {k: v for k, v in values.items() if ctx.get_parameter_source(k).name == "COMMANDLINE"}
    return replace(DEFAULT_SETTINGS, seed=seed, **given)


def _neuropictor_options(semantic_weight, uncond_prob, train_encoder, gradient_checkpointing):
    from fmrikit.methods.neuropictor.train import NeuroPictorOptions

    return NeuroPictorOptions(semantic_weight=semantic_weight, uncond_prob=uncond_prob, train_encoder=train_encoder,
                              gradient_checkpointing=gradient_checkpointing)


def _report_neuropictor(result) -> None:
    from fmrikit.engine.distributed import env_rank

    if env_rank() != 0:
        return
    out_console.print(f"NeuroPictor: {result.model}")
    for key, s in result.scores.items():
        if s.get("n_test_images"):
            out_console.print(f"  {key} on {s['n_test_images']} held-out images: diffusion loss {s['diffusion']:.4f} "
                              f"(another image's fMRI: {s['diffusion_shuffled']:.4f}; none: "
                              f"{s['diffusion_unconditioned']:.4f}), semantic loss {s['semantic']:.3f} (another "
                              f"image's fMRI: {s['semantic_shuffled']:.3f}; constant test-mean embedding: "
                              f"{s['semantic_constant_baseline']:.3f})")


def _raise(exc: Exception) -> None:
    raise exc


def register(app: typer.Typer) -> None:
    """Add the decoder commands to the app."""
    app.command("pretrain")(pretrain)
    app.command("roi-train")(roi_train)
    app.command("adapt-subject")(adapt_subject)
