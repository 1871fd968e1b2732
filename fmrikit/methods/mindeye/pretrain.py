"""Cross-subject pretraining of the decoder backbone (``fmrikit pretrain``)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fmrikit.errors import MissingInputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import PROJECT_KEY, new_run_id, portable_path, project_pointer, write_sidecar
from fmrikit.methods.mindeye.model import MindEyeDecoder
from fmrikit.project import default_decoder_path, subject_key
from fmrikit.project import preproc_betas_path
from fmrikit.methods.mindeye.targets import (image_embeddings, retrieval_scores, set_target_statistics, target_shape,
                                             target_spec)
from fmrikit.engine.runs import LOG_NAME, SIDECAR_NAME, finish_run, one_run, start_run, write_log
from fmrikit.data.splits import load_subject_data
from fmrikit.engine.distributed import distributed
from fmrikit.methods.mindeye.loop import fit
from fmrikit.methods.mindeye.settings import DECODER_PRESETS, ModelSize, TrainSettings
from fmrikit.engine.runs import settings_record

log = logging.getLogger("fmrikit")


@dataclass
class PretrainResult:
    model: Path
    retrieval: dict[str, Any]
    history: list[dict]


@one_run
def pretrain_decoder(subjects: list[int], *, roi: str = "nsdgeneral", root: str | os.PathLike | None = None,
                     out: str | os.PathLike | None = None, features: str = "gabor", image_model: str | None = None,
                     targets: str = "tokens", size: ModelSize | None = None, settings: TrainSettings | None = None,
                     preset: str | None = None, device: str = "auto", resume: bool = False,
                     overwrite: bool = False) -> PretrainResult:
    """Train the shared decoder on several subjects' preprocessed datasets.

    Parameters
    ----------
    subjects : list of int
        Subjects whose datasets (``sub-NN[_roi-ROI]_desc-preproc_betas.h5``) train the backbone.
    roi : str
        Voxel selection of the datasets (the annotated ROI used as voxel selector).
    root : path-like, optional
        Project folder.
    out : path-like, optional
        Model folder to write (default ``<root>/models/decoder``).
    features : str
        Image feature extractor giving the target embeddings (``gabor``, ``effnet-lite0``, ``clip``,
        ``dinov2``).
    image_model : str, optional
        Local path or cached Hugging Face id for ``clip`` / ``dinov2``.
    targets : {"tokens", "pooled"}
        Predict the image's tokens (MindEye2) or its pooled vector (:func:`~fmrikit.methods.mindeye.targets.target_spec`).
    size : ModelSize, optional
    settings : TrainSettings, optional
        Default the ``small`` preset's pretraining (3 epochs).
    preset : str, optional
        Name of the preset the sizes and settings came from (recorded).
    device : str
        ``auto``, ``cpu``, ``cuda``; under ``torchrun`` each process takes its own GPU.
    resume : bool
        Continue from the last epoch checkpoint of an interrupted run.
    overwrite : bool

    Returns
    -------
    PretrainResult
        The model folder, retrieval scores per subject on its test images, and the per-epoch log.

    Raises
    ------
    MissingInputError
        A subject has no preprocessed dataset.
    OutputExistsError
        The model folder exists and ``overwrite`` is False.
    """
    size, settings = size or ModelSize(), settings or DECODER_PRESETS["small"].pretrain
    settings.check()
    size.check()
    out = Path(out) if out is not None else default_decoder_path(root)
    paths = [preproc_betas_path(root, s, roi) for s in subjects]
    spec = target_spec(features, image_model, targets)
    checkpoint = start_run([out], kind="pretrain decoder", overwrite=overwrite, resume=resume,
                           inputs=paths + [image_model], root=root,
                           settings={"subjects": subjects, "roi": roi, "features": spec, "size": size,
                                     "training": settings, "preset": preset})
    for p in paths:
        if not p.is_file():
            raise MissingInputError("no preprocessed dataset for this subject and ROI", path=p,
                                    expected=f"run fmrikit preprocess --roi {roi} first")
    run_id = new_run_id()
    with distributed(device) as ctx:
        data = [load_subject_data(p, subject_key(s)) for s, p in zip(subjects, paths)]
        for d, p in zip(data, paths):
            log.info("%s: %d training trials, %d test images, %d voxels", p.name, len(d.train_x), len(d.test_x),
                     d.n_voxels)
        targets = image_embeddings(data, spec, ctx, root=root)
        torch.manual_seed(settings.seed)
        model = MindEyeDecoder({d.key: d.n_voxels for d in data}, embed_dim=targets[data[0].key][0].shape[1],
                               hidden=size.hidden, n_blocks=size.n_blocks, proj_hidden=size.proj_hidden,
                               dropout=size.dropout, token_shape=target_shape(spec))
        for d in data:
            model.inputs[d.key].ijk.copy_(torch.from_numpy(d.ijk))
        set_target_statistics(model, [targets[d.key][0] for d in data])
        model.to(ctx.device)
        train_targets = {d.key: model.standardize(targets[d.key][0].to(ctx.device)) for d in data}
        result = fit(model, data, train_targets, settings, ctx, param_groups=[{"params": model.parameters()}],
                     checkpoint=checkpoint, resume=resume, description="pretrain")
        scores = {d.key: retrieval_scores(model, d, targets[d.key][1], device=ctx.device) for d in data}
        if ctx.is_main:
            _write(out, model, data, paths, spec, size, settings, result.history, scores, run_id, roi, overwrite,
                   ctx.world_size, root, preset)
            finish_run(checkpoint)
        ctx.barrier()
    return PretrainResult(model=out, retrieval=scores, history=result.history)


def _write(out: Path, model: MindEyeDecoder, data, paths, spec, size, settings, history, scores, run_id, roi,
           overwrite, world_size, root, preset) -> None:
    inputs = [d.checksum for d in data]
    with staged_dir(out, overwrite=overwrite, kind="pretrain decoder") as stage:
        model.cpu().save_pretrained(stage, extra={
            "features": spec, "roi": roi, "run_id": run_id, PROJECT_KEY: project_pointer(out, root),
            "subjects": {d.key: {"dataset": portable_path(p, root), "n_voxels": d.n_voxels, "n_train": len(d.train_x)}
                         for d, p in zip(data, paths)},
        })
        write_log(stage / LOG_NAME, history, title="decoder pretraining on " + ", ".join(d.key for d in data))
        write_sidecar(stage / SIDECAR_NAME, command="pretrain", seed=settings.seed, run_id=run_id, inputs=inputs,
                      parameters={"subjects": [d.key for d in data], "roi": roi, "features": spec,
                                  "model": vars(size), "training": settings_record(settings),
                                  "preset": preset, "world_size": world_size},
                      outputs=["config.json", "model.safetensors", LOG_NAME],
                      extra={"retrieval": scores, "final_epoch": history[-1] if history else None,
                             "conventions": {d.key: d.info.conventions for d in data}},
                      root=root, folder=out)
