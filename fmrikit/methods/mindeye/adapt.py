"""A new subject on a pretrained decoder: a fresh input layer over chosen voxels (``adapt-subject``).

This is TROI's stage 2 on its own, and the paper's annotated-ROI baseline when the voxels are an
annotated ROI. The backbone stays frozen unless asked otherwise; MindEye2's published 1-session result
fine-tunes the whole model on the new subject (``unfreeze_backbone=True``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from fmrikit.errors import DataValueError, MissingInputError
from fmrikit.io.atomic import staged_outputs
from fmrikit.io.provenance import checksum_digest, file_checksum, new_run_id, portable_path, write_sidecar
from fmrikit.methods.mindeye.model import MindEyeDecoder
from fmrikit.project import subject_key
from fmrikit.engine.serialization import read_config
from fmrikit.methods.mindeye.subject import save_subject_model
from fmrikit.project import check_desc, preproc_betas_path, subject_dir, subject_label
from fmrikit.methods.mindeye.targets import image_embeddings, retrieval_scores
from fmrikit.engine.runs import finish_run, one_run, start_run, write_log
from fmrikit.data.splits import SubjectData, load_subject_data
from fmrikit.engine.distributed import Distributed, distributed
from fmrikit.methods.mindeye.loop import fit
from fmrikit.engine.steps import FitResult
from fmrikit.methods.mindeye.settings import SUBJECT_BATCH_SIZE, TrainSettings
from fmrikit.engine.runs import settings_record
from fmrikit.project import default_decoder_path

log = logging.getLogger("fmrikit")


@dataclass
class SubjectResult:
    """What a subject training run wrote and scored."""

    model: Path
    outputs: dict[str, Path]
    retrieval: dict[str, Any] | None
    history: list[dict]
    n_voxels: int
    extra: dict[str, Any] = field(default_factory=dict)


def load_backbone(path: str | os.PathLike | None, root=None) -> tuple[MindEyeDecoder, dict[str, Any], Path]:
    """The pretrained decoder (default ``<root>/models/decoder``) and its config record.

    Raises
    ------
    MissingInputError
        No decoder there (run ``fmrikit pretrain`` first).
    """
    path = Path(path) if path is not None else default_decoder_path(root)
    if not (path / "config.json").is_file():
        raise MissingInputError("no pretrained decoder", path=path,
                                expected="a model folder from fmrikit pretrain (or pass --backbone)")
    return MindEyeDecoder.from_pretrained(path), read_config(path), path


def train_input_layer(model: MindEyeDecoder, data: SubjectData, train_targets: torch.Tensor, settings: TrainSettings,
                      ctx: Distributed, *, train_shared: bool, init: tuple[torch.Tensor, torch.Tensor] | None = None,
                      checkpoint: Path | None = None, resume: bool = False,
                      description: str = "adapt") -> FitResult:
    """Give ``model`` a new input layer for ``data`` and train it (stage 2 / learning-rate rewinding).

    Parameters
    ----------
    model : MindEyeDecoder
        On ``ctx.device``, with ``target_mean`` / ``target_std`` set.
    data : SubjectData
    train_targets : Tensor, shape (n_train, D)
        Raw image embeddings of the training trials.
    train_shared : bool
        Train the shared backbone and heads too (otherwise frozen).
    init : (Tensor, Tensor), optional
        Weight (hidden, V) and bias (hidden,) to start from instead of a fresh initialisation
        (fine-tuning, the no-rewind ablation).
    """
    torch.manual_seed(settings.seed)
    layer = model.add_subject(data.key, data.n_voxels)
    layer.ijk.copy_(torch.from_numpy(data.ijk))
    if init is not None:
        with torch.no_grad():
            layer.linear.weight.copy_(init[0])
            layer.linear.bias.copy_(init[1])
    params = set_trainable(model, data.key, train_shared)
    targets = {data.key: model.standardize(train_targets.to(ctx.device))}
    return fit(model, [data], targets, settings, ctx, param_groups=[{"params": params}], checkpoint=checkpoint,
               resume=resume, description=description)


def set_trainable(model: MindEyeDecoder, key: str, train_shared: bool) -> list[torch.nn.Parameter]:
    """Train only subject ``key``'s input layer (and the shared parts if asked); return the trainable parameters.

    The other subjects' input layers are frozen: they take no part in this subject's training.
    """
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(f"inputs.{key}.") or (train_shared and not name.startswith("inputs.")))
        if p.requires_grad:
            trainable.append(p)
    return trainable


@one_run
def adapt_subject(subject: int, *, root: str | os.PathLike | None = None, roi: str | None = None,
                  mask: str | os.PathLike | None = None, sessions: list[int] | None = None,
                  backbone: str | os.PathLike | None = None, unfreeze_backbone: bool = False,
                  settings: TrainSettings | None = None, preset: str | None = None, desc: str = "adapt",
                  device: str = "auto", resume: bool = False, overwrite: bool = False) -> SubjectResult:
    """Train a new subject's input layer on a pretrained decoder over an ROI or a mask.

    Parameters
    ----------
    subject : int
    root : path-like, optional
        Project folder.
    roi : str, optional
        Dataset to read (its voxel selection): default ``nsdgeneral``, or ``brainmask`` when a
        ``mask`` is given and that dataset exists.
    mask : path-like, optional
        Binary NIfTI on the dataset's grid selecting its voxels (e.g. a TROI mask); for a surface dataset one
        hemisphere's mask file (``.label.gii``, ``.mgz``) with its partner beside it.
    sessions : list of int, optional
        Sessions whose trials train (default all); test images are the shared ones.
    backbone : path-like, optional
        Pretrained decoder (default ``<root>/models/decoder``).
    unfreeze_backbone : bool
        Train the shared parts too (MindEye2's fine-tuning of the whole model on a new subject).
    settings : TrainSettings, optional
        Default batch size :data:`~fmrikit.methods.mindeye.settings.SUBJECT_BATCH_SIZE`.
    preset : str, optional
        Name of the preset the settings came from (recorded).
    desc : str
        ``desc-`` entity of the outputs: ``sub-NN_desc-<desc>_decoder/``, ``_log.tsv``, ``.json``.

    Returns
    -------
    SubjectResult
    """
    settings = settings or TrainSettings(batch_size=SUBJECT_BATCH_SIZE)
    settings.check()
    if roi is None:
        roi = "brainmask" if mask is not None and preproc_betas_path(root, subject, "brainmask").is_file() \
            else "nsdgeneral"
    dataset = preproc_betas_path(root, subject, roi)
    out_dir, stem = subject_dir(root, subject), f"{subject_label(subject)}_desc-{check_desc(desc)}"
    names = subject_output_names(stem)
    backbone_path = Path(backbone) if backbone is not None else default_decoder_path(root)
    checkpoint = start_run([out_dir / n for n in names.values()], kind="adapt-subject decoder", overwrite=overwrite,
                           resume=resume, inputs=[dataset, mask, backbone_path], root=root,
                           settings={"subject": subject, "roi": roi, "mask": mask, "sessions": sessions,
                                     "backbone": backbone_path, "unfreeze_backbone": unfreeze_backbone,
                                     "training": settings, "preset": preset})
    if not dataset.is_file():
        raise MissingInputError("no preprocessed dataset for this subject and ROI", path=dataset,
                                expected=f"run fmrikit preprocess --subject {subject} --roi {roi} first")
    model, record, backbone_path = load_backbone(backbone_path, root)
    columns = None
    if mask is not None:
        from fmrikit.data.dataset import read_info

        columns = mask_columns(mask, read_info(dataset))
    run_id = new_run_id()
    with distributed(device) as ctx:
        data = load_subject_data(dataset, subject_key(subject), sessions=sessions, columns=columns)
        targets = image_embeddings([data], record["features"], ctx, root=root)[data.key]
        model.to(ctx.device)
        result = train_input_layer(model, data, targets[0], settings, ctx, train_shared=unfreeze_backbone,
                                   checkpoint=checkpoint, resume=resume, description="adapt-subject")
        scores = retrieval_scores(model, data, targets[1], device=ctx.device)
        if ctx.is_main:
            parameters = {"subject": subject, "roi": roi, "mask": str(mask) if mask else None, "sessions": sessions,
                          "backbone": str(backbone_path), "unfreeze_backbone": unfreeze_backbone, "desc": desc,
                          "training": settings_record(settings), "preset": preset, "world_size": ctx.world_size}
            inputs = [data.checksum] + ([file_checksum(mask)] if mask else [])
            write_subject_outputs(out_dir, names, model, data, base=backbone_path, shared_trained=unfreeze_backbone,
                                  history=result.history, scores=scores, command="adapt-subject", parameters=parameters,
                                  inputs=inputs, seed=settings.seed, run_id=run_id, overwrite=overwrite,
                                  kind="adapt-subject decoder", root=root)
            finish_run(checkpoint)
        ctx.barrier()
    return SubjectResult(model=out_dir / names["model"], outputs={k: out_dir / v for k, v in names.items()},
                         retrieval=scores, history=result.history, n_voxels=data.n_voxels)


def subject_output_names(stem: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """File names of a subject training run: model folder, log and its curves, sidecar (+ ``extra``)."""
    return {"model": f"{stem}_decoder", "log": f"{stem}_log.tsv", "curves": f"{stem}_log.png",
            "sidecar": f"{stem}.json", **(extra or {})}


def mask_columns(mask: str | os.PathLike, info) -> np.ndarray:
    """Dataset columns inside a binary mask NIfTI on the dataset's grid.

    Raises
    ------
    GridMismatchError
        The mask's grid is not the dataset's.
    DataValueError
        The mask selects no voxel, or voxels the dataset does not hold.
    """
    from fmrikit.io.nifti import check_same_grid, load_mask

    from fmrikit.data.surface import SURFACE_FILES, surface_mask_columns

    if info.is_surface or str(mask).endswith(SURFACE_FILES):  # refused there unless both are on a surface
        return surface_mask_columns(mask, info)
    vol, affine = load_mask(mask)
    check_same_grid({str(mask): (vol.shape, affine), str(info.path): (info.volume_shape, info.affine)})
    inside = vol[tuple(info.ijk.T)]
    n_mask, n_in = int(vol.sum()), int(inside.sum())
    if n_in == 0:
        raise DataValueError("the mask selects none of the dataset's voxels", path=mask,
                             expected=f"voxels of {info.path.name}", found=f"{n_mask} mask voxels, 0 in the dataset")
    if n_in < n_mask:
        raise DataValueError("the mask has voxels the dataset does not hold", path=mask,
                             expected=f"a subset of the {info.n_voxels} voxels of {info.path.name} "
                                      "(preprocess with a wider --roi, e.g. brainmask)",
                             found=f"{n_mask - n_in} of {n_mask} mask voxels outside")
    return np.nonzero(inside)[0]


def write_subject_outputs(out_dir: Path, names: dict[str, str], model: MindEyeDecoder, data: SubjectData, *,
                          base: Path | None, shared_trained: bool, history: list[dict], scores: dict | None,
                          command: str, parameters: dict, inputs: list[dict], seed: int, run_id: str,
                          overwrite: bool, kind: str, root=None,
                          write_extra: Callable[[dict[str, Path]], None] | None = None,
                          extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write the subject model folder, the log, the sidecar and any ``write_extra`` files atomically (outputs of
    ``kind``; the model's paths stored relative to the project folder ``root``)."""
    with staged_outputs(out_dir, list(names.values()), overwrite=overwrite, kind=kind) as staged:
        tmp = {k: staged[v] for k, v in names.items()}
        save_subject_model(tmp["model"], model.cpu(), data.key, subject=data.info.subject, affine=data.info.affine,
                           volume_shape=data.info.volume_shape, base=base, shared_trained=shared_trained,
                           final=out_dir / names["model"], root=root,
                           extra={"features": read_config(base)["features"] if base else (extra or {}).get("features"),
                                  "run_id": run_id, "dataset": portable_path(data.info.path, root),
                                  "dataset_sha256": checksum_digest(data.checksum), "mesh": data.info.mesh,
                                  "train_sessions": data.train_sessions})
        write_log(tmp["log"], history, title=f"{command} {data.key}")
        if write_extra is not None:
            write_extra(tmp)
        write_sidecar(tmp["sidecar"], command=command, seed=seed, run_id=run_id, inputs=inputs,
                      parameters=parameters, outputs=list(names.values()),
                      extra={"retrieval": scores, "n_voxels": data.n_voxels, "n_train_trials": len(data.train_x),
                             "final_epoch": history[-1] if history else None, "conventions": data.info.conventions,
                             **(extra or {})},
                      root=root, folder=out_dir)
    return {k: out_dir / v for k, v in names.items()}
