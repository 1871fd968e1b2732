"""The latent route of ``reconstruct``: fMRI to autoencoder / Stable Diffusion latents (Takagi & Nishimoto)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fmrikit.diffusion import Route
from fmrikit.errors import DataValueError, MissingInputError
from fmrikit.io.provenance import recorded_file, resolve_source
from fmrikit.methods.latent.settings import MAPPERS


def latent_route(subject: int, *, model=None, pipeline: str | None = None, root=None, device: torch.device,
                 mapper: str | None = None) -> Route:
    """Takagi & Nishimoto's route: the subject's latent mappers, decoded by the embedded autoencoder or run
    through ``StableDiffusionImg2ImgPipeline`` from the predicted latent with the predicted caption embeddings.

    Parameters
    ----------
    subject : int
    model : path-like, optional
        Mapper folder (default the subject's ``mapper``, else its first trained in the order of
        :data:`~fmrikit.methods.latent.settings.MAPPERS`).
    pipeline : str, optional
        Stable Diffusion folder or cached id (default: the one the mapper was trained with, else the
        mapper's embedded autoencoder).
    root : path-like, optional
    device : torch.device
    mapper : str, optional

    Returns
    -------
    Route
    """
    from fmrikit.methods.latent.models import LatentMapper
    from fmrikit.engine.serialization import read_config
    from fmrikit.diffusion import (decode_latents, generate_img2img, load_autoencoder, load_pipeline,
                                             resolve_pipeline)
    from fmrikit.project import mapper_dir
    from fmrikit.diffusion import component_checksum

    if model is not None:
        folder = Path(model)
    elif mapper is not None:
        folder = mapper_dir(root, subject, mapper)
    else:  # the subject's first trained mapper, the report's best first
        folder = next((f for f in (mapper_dir(root, subject, m) for m in MAPPERS)
                       if (f / "image" / "config.json").is_file()), mapper_dir(root, subject, "gcn"))
    if not (folder / "image" / "config.json").is_file():
        raise MissingInputError("no latent mapper", path=folder, expected=f"run fmrikit pretrain --model latent-mapper "
                                f"--subject {subject} --mapper {mapper or 'gcn'} first (or pass --model)")
    record = read_config(folder / "image")
    generator = {**record["generator"], **{k: resolve_source(record["generator"][k], folder / "image", record)
                                           for k in ("source", "vae_folder")}}
    dataset = recorded_file(record["dataset"], record.get("dataset_sha256"), folder / "image", record,
                            "the mapper's dataset")
    image = LatentMapper.from_pretrained(folder / "image").eval()
    text, text_shape = None, None
    if (folder / "text" / "config.json").is_file():
        text, text_shape = LatentMapper.from_pretrained(folder / "text").eval(), \
            tuple(read_config(folder / "text")["target_shape"])
    shape = tuple(record["target_shape"])
    inputs = [{"model": str(folder.resolve())}]
    if pipeline is None and generator["kind"] == "pipeline":
        pipeline = generator["source"]
    if pipeline is None:
        vae, _ = load_autoencoder(generator["vae_folder"], device=device)
        if component_checksum(Path(generator["vae_folder"])) != generator["vae_sha256"]:
            raise DataValueError("the autoencoder changed since the mapper was trained", path=generator["vae_folder"],
                                 expected=f"sha256 {generator['vae_sha256'][:12]}...")

        def generate(pred, seeds, **_):
            return decode_latents(vae, pred[0].reshape((-1,) + shape), device=device)

        deterministic, route_record = True, {"generator": "autoencoder", "autoencoder": generator["vae_folder"]}
    else:
        pipe_folder, _ = resolve_pipeline(pipeline)
        if component_checksum(pipe_folder / "vae") != generator["vae_sha256"]:
            raise DataValueError("the pipeline's VAE is not the one the mapper was trained on", path=pipe_folder / "vae",
                                 expected=f"the VAE of {generator['source']}",
                                 found="other weights (train the mapper with --pipeline on this pipeline)")
        pipe, pipe_record = load_pipeline(pipeline, "img2img", device=device)

        def generate(pred, seeds, *, steps, strength, guidance_scale, **_):
            latents, embeds = pred
            return generate_img2img(pipe, latents.reshape((-1,) + shape), embeds, seeds=seeds, strength=strength,
                                    steps=steps, guidance_scale=guidance_scale)

        deterministic, route_record = False, {"generator": "img2img", **pipe_record}

    def predict(x: torch.Tensor):
        latents = image.predict(x[:, image_cols])
        embeds = None
        if text is not None and not deterministic:
            embeds = text.predict(x[:, text_cols]).reshape((len(x),) + text_shape)
        return latents, embeds

    ijk, image_cols, text_cols = union_voxels(image, text)
    return Route(deterministic=deterministic, ijk=ijk, affine=np.asarray(record["affine"]),
                 volume_shape=tuple(record["volume_shape"]), mesh=record.get("mesh", ""), dataset=dataset,
                 model_path=folder,
                 record={"mapper": record["config"]["arch"], "text_mapper": text is not None, **route_record},
                 inputs=inputs, predict=predict, generate=generate, train_sessions=record.get("train_sessions"))


def union_voxels(image, text) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All input voxels of the mappers (V, 3) and each mapper's positions among them."""
    from fmrikit.io.nifti import volume_index

    parts = [image.ijk.numpy()] + ([text.ijk.numpy()] if text is not None else [])
    shape = tuple(int(v) + 1 for v in np.concatenate(parts).max(0))
    flats = [volume_index(p, shape) for p in parts]
    union = np.unique(np.concatenate(flats))
    ijk = np.stack(np.unravel_index(union, shape, order="F"), axis=1).astype(np.int64)
    pos = [np.searchsorted(union, f) for f in flats]
    return ijk, pos[0], pos[1] if text is not None else np.zeros(0, np.int64)
