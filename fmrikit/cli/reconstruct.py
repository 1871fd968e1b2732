"""``fmrikit reconstruct``: images from betas through latent mappers or the decoder and diffusers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli import options as o
from fmrikit.cli._common import call, out_console


def reconstruct(
    betas: Annotated[Optional[Path], typer.Argument(help="3D or 4D betas NIfTI on the model's grid.",
                                                    show_default=False)] = None,
    subject: Annotated[int, typer.Option(min=1, help="Subject whose models decode the betas.")] = ...,
    trials: Annotated[Optional[str], typer.Option(help="Instead of a file: 'shared' (the test images, repeats "
                                                       "averaged) or 0-based trial indices of the model's dataset, "
                                                       "e.g. 0-9,20.")] = None,
    method: Annotated[str, typer.Option(help="latent (mappers to autoencoder / Stable Diffusion latents), unclip "
                                             "(decoder image embedding into Stable unCLIP) or neuropictor (flatmap "
                                             "to semantic condition + ControlNet).")] = "latent",
    mapper: Annotated[Optional[str], typer.Option(help="Latent route: the subject's mapper (ridge, cnn, vae, gcn) "
                                                       "[default: the first trained of ridge, cnn, vae, gcn].")] = None,
    model: Annotated[Optional[Path], typer.Option(help="Mapper folder (latent), subject decoder folder (unclip) or "
                                                       "NeuroPictor folder [default: the subject's; neuropictor: "
                                                       "the subject's refined, else the pretrained model].")] = None,
    pipeline: Annotated[Optional[str], typer.Option(help="Stable Diffusion folder or cached Hugging Face id (never "
                                                         "downloaded) [latent default: the mapper's pipeline or "
                                                         "embedded autoencoder].")] = None,
    prior: Annotated[Optional[Path], typer.Option(help="unclip: diffusion prior of the decoder (pretrain --model "
                                                       "prior) sampling the image embedding.")] = None,
    prior_guidance: Annotated[float, typer.Option(min=0.0, help="unclip with --prior: the prior's guidance scale.")]
    = 1.0,
    control_scale: Annotated[Optional[float], typer.Option(
        min=0.0, help="neuropictor: weight of the low-level control (0: semantics only) [default: 1].")] = None,
    high_level_from: Annotated[Optional[int], typer.Option(
        min=0, help="neuropictor: 0-based trial of the subject's dataset whose semantics every input takes "
                    "(structure kept).")] = None,
    input_scale: Annotated[str, typer.Option(help="auto (integer betas: /300 and z-score over the file's volumes; "
                                                  "float: already z-scored), raw or zscored.")] = "auto",
    samples: Annotated[int, typer.Option(min=1, help="Images per input (diffusion routes).")] = 1,
    seed: o.Seed = 0,
    steps: Annotated[int, typer.Option(min=1, help="Denoising steps.")] = 50,
    strength: Annotated[float, typer.Option(min=0.0, max=1.0, help="img2img: fraction of the steps run from the "
                                                                   "noised latent (above 0).")] = 0.75,
    guidance_scale: Annotated[Optional[float], typer.Option(
        min=0.0, help="Classifier-free guidance scale [default: 7.5; neuropictor 5].")] = None,
    noise_level: Annotated[int, typer.Option(min=0, help="unCLIP: noise added to the image embedding.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Inputs per pipeline call.")] = 8,
    max_sheet: Annotated[int, typer.Option(min=0, help="Inputs shown on the contact sheet.")] = 24,
    device: o.Device = "auto",
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: "
                                                     "<root>/sub-NN/sub-NN_recon-<method>_<input>].")] = None,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Reconstruct the seen images from betas: PNGs by trial and stimulus, a contact sheet, a sidecar."""
    from fmrikit.pipelines.reconstruct import reconstruct as run

    result = call(run, subject, betas=betas, trials=trials, method=method, mapper=mapper, model=model,
                  pipeline=pipeline, prior=prior, prior_guidance=prior_guidance, control_scale=control_scale,
                  high_level_from=high_level_from, input_scale=input_scale, samples=samples, seed=seed, steps=steps,
                  strength=strength, guidance_scale=guidance_scale, noise_level=noise_level, batch_size=batch_size,
                  max_sheet=max_sheet, device=device, root=root, out=out, overwrite=overwrite)
    out_console.print(f"{len(result.images)} reconstructions of {result.n_inputs} inputs: {result.out}")
    out_console.print(f"contact sheet: {result.contact_sheet}")
