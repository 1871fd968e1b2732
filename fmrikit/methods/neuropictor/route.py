"""The NeuroPictor route of ``reconstruct``: flatmap to semantic condition + ControlNet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fmrikit.diffusion import Route
from fmrikit.errors import DataValueError, MissingInputError
from fmrikit.data.splits import parse_trial_rows
from fmrikit.io.provenance import file_checksum, resolve_source


def neuropictor_route(subject: int, *, model=None, pipeline: str | None = None, root=None, device: torch.device,
                      control_scale: float = 1.0, high_level_from: int | None = None) -> Route:
    """NeuroPictor's route: the betas become the subject's flatmap; the conditioner gives the semantic condition
    (``prompt_embeds``) and the control map of ``StableDiffusionControlNetPipeline``.

    Parameters
    ----------
    subject : int
    model : path-like, optional
        NeuroPictor folder (default the subject's refined model, else the cross-subject one).
    pipeline : str, optional
        Stable Diffusion folder or cached id (default the one trained on; its U-Net must match).
    root : path-like, optional
    device : torch.device
    control_scale : float
        Weight of the ControlNet's residuals (0: semantics only).
    high_level_from : int, optional
        0-based trial of the subject's dataset whose semantic condition replaces every input's.

    Returns
    -------
    Route
    """
    from fmrikit.data.dataset import read_info, voxel_columns
    from fmrikit.data.flatmaps.operator import flatmap_mapping
    from fmrikit.data.flatmaps.cache import read_flatmap_info
    from fmrikit.project import flatmap_path
    from fmrikit.diffusion import generate_controlnet, load_pipeline, resolve_pipeline
    from fmrikit.project import preproc_betas_path
    from fmrikit.data.splits import read_columns
    from fmrikit.diffusion import component_checksum
    from fmrikit.methods.neuropictor.train import load_neuropictor
    from fmrikit.project import adapted_neuropictor_path, default_neuropictor_path, subject_label

    if model is not None:
        folder = Path(model)
    else:  # the subject's refined model, else the cross-subject one
        folder = next((f for f in (adapted_neuropictor_path(root, subject), default_neuropictor_path(root))
                       if (f / "config.json").is_file()), adapted_neuropictor_path(root, subject))
    if not (folder / "config.json").is_file():
        raise MissingInputError("no NeuroPictor model", path=folder, expected="run fmrikit pretrain --model "
                                f"neuropictor (and adapt-subject --model neuropictor --subject {subject}) first")
    conditioner, controlnet, record = load_neuropictor(folder, device=device)
    dataset = preproc_betas_path(root, subject, record["roi"])
    if not dataset.is_file():
        raise MissingInputError("no preprocessed dataset for the model's ROI", path=dataset,
                                expected=f"run fmrikit preprocess --subject {subject} first")
    info = read_info(dataset)
    cache = flatmap_path(root, subject, record["roi"], record["flatmap_size"])
    # the operator training used (it keeps a pycortex subject given explicitly), else the dataset's own
    mapping = read_flatmap_info(cache).mapping if cache.is_file() else flatmap_mapping(info, record["flatmap_size"])
    trained_on = record["pipeline"]
    pipe_folder, _ = resolve_pipeline(pipeline or resolve_source(trained_on["source"], folder, record))
    if component_checksum(pipe_folder / "unet") != trained_on["unet_sha256"]:
        raise DataValueError("the pipeline's U-Net is not the one the model was trained on", path=pipe_folder / "unet",
                             expected=f"the U-Net of {trained_on['source']}", found="other weights")
    pipe, pipe_record = load_pipeline(pipe_folder, "controlnet", device=device, controlnet=controlnet)

    @torch.no_grad()
    def conditions(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        semantic, _, control = conditioner(torch.from_numpy(mapping.to_flatmaps(x.numpy())).to(device))
        return semantic.float().cpu(), control.float().cpu()

    fixed = None
    if high_level_from is not None:
        row = parse_trial_rows(str(high_level_from), info.n_trials, dataset)
        fixed = conditions(torch.from_numpy(read_columns(dataset, row, voxel_columns(info, mapping.ijk))))[0]

    def predict(x: torch.Tensor):
        semantic, control = conditions(x)
        return control.flatten(1), semantic if fixed is None else fixed.expand(len(x), -1, -1)

    def generate(pred, seeds, *, steps, guidance_scale, **_):
        control, semantic = pred
        return generate_controlnet(pipe, semantic, control.reshape((-1,) + conditioner.control_shape), seeds=seeds,
                                   steps=steps, guidance_scale=guidance_scale, control_scale=control_scale)

    return Route(ijk=mapping.ijk.astype(np.int64), affine=info.affine, volume_shape=info.volume_shape,
                 mesh=info.mesh, dataset=dataset, model_path=folder,
                 record={"neuropictor": str(folder), "control_scale": control_scale,
                        "high_level_from": high_level_from, "flatmap_size": record["flatmap_size"], **pipe_record},
                 inputs=[{"model": str(folder.resolve())}, file_checksum(dataset)], predict=predict,
                 generate=generate, train_sessions=record.get("train_sessions", {}).get(subject_label(subject)))
