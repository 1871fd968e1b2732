"""The unCLIP route of ``reconstruct``: the decoder's image embedding into Stable unCLIP (MindEye2 / TROI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fmrikit.diffusion import Route
from fmrikit.errors import DataValueError, InputError
from fmrikit.project import default_subject_decoder


def unclip_route(subject: int, *, model=None, pipeline: str | None = None, root=None, device: torch.device,
                 prior=None, prior_guidance: float = 1.0) -> Route:
    """MindEye2 / TROI's route: the subject decoder's predicted image embedding conditions
    ``StableUnCLIPImg2ImgPipeline`` through ``image_embeds``, optionally sampled by a diffusion prior first.

    Parameters
    ----------
    subject : int
    model : path-like, optional
        Subject decoder folder (default the subject's troi, else adapt decoder).
    pipeline : str
        Stable unCLIP folder or cached id (required).
    root : path-like, optional
    device : torch.device
    prior : path-like, optional
        Diffusion prior of the decoder (``pretrain --model prior``).
    prior_guidance : float
        The prior's guidance scale.

    Returns
    -------
    Route
    """
    from fmrikit.methods.mindeye.subject import load_subject_model, subject_dataset
    from fmrikit.diffusion import generate_unclip, load_pipeline
    from fmrikit.methods.mindeye.prior import load_prior, sample_prior

    if pipeline is None:
        raise InputError("--method unclip needs a Stable unCLIP pipeline", expected="--pipeline PATH_OR_ID",
                         found="none")
    folder = Path(model) if model is not None else default_subject_decoder(root, subject)
    sub = load_subject_model(folder, device="cpu")
    dataset = subject_dataset(sub, folder)
    pipe, pipe_record = load_pipeline(pipeline, "unclip", device=device)
    width = pipe.unet.config.projection_class_embeddings_input_dim // 2
    features = sub.record.get("features") or {}
    if features.get("targets", "pooled") != "pooled":
        raise DataValueError("an unCLIP pipeline takes one pooled image embedding per image, the decoder predicts "
                             "image tokens", path=folder, expected="a decoder trained with --targets pooled",
                             found=f"--targets {features.get('targets')}")
    if sub.model.config["embed_dim"] != width:
        raise DataValueError("the decoder's image embedding does not fit the pipeline", path=folder,
                             expected=f"{width}-dimensional embeddings (a decoder trained on the pipeline's CLIP image "
                             "features: --features clip --image-model)", found=str(sub.model.config["embed_dim"]))

    sampler = None if prior is None else load_prior(prior, folder, device=device)[0]

    @torch.no_grad()
    def predict(x: torch.Tensor):
        _, regression = sub.model(x, sub.key)
        return regression * sub.model.target_std + sub.model.target_mean, None

    def generate(pred, seeds, *, steps, guidance_scale, noise_level, **_):
        embeds = pred[0]
        if sampler is not None:
            std = sample_prior(sampler, sub.model.standardize(embeds), seeds=seeds, steps=steps,
                               guidance_scale=prior_guidance).cpu()
            embeds = std * sub.model.target_std + sub.model.target_mean
        return generate_unclip(pipe, embeds, seeds=seeds, steps=steps, guidance_scale=guidance_scale,
                               noise_level=noise_level)

    return Route(ijk=sub.ijk.astype(np.int64), affine=sub.affine, volume_shape=sub.volume_shape,
                 mesh=sub.record.get("mesh", ""), dataset=dataset,
                 model_path=folder, record={"decoder": str(folder), "features": sub.record.get("features"),
                                           "prior": str(prior) if prior else None,
                                           "prior_guidance": prior_guidance if prior else None, **pipe_record},
                 inputs=[{"model": str(Path(folder).resolve())}], predict=predict, generate=generate,
                 train_sessions=sub.record.get("train_sessions"))
