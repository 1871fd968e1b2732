"""Universal-encoder runs: joint ``pretrain --model encoder`` and embedding-only ``adapt-subject``.

An encoder folder is a complete model: ``config.json`` (with, per subject, the dataset, voxel
grid and pycortex names that ``encode`` and ``cluster-embeddings`` need) + ``model.safetensors``
(voxel embeddings and their ``ijk``), plus ``training_log.tsv`` and ``run.json`` (scores on the
test images of every trained subject). ``adapt-subject`` writes the base model with the new
subject's embeddings added, and records the base's path and SHA-256.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmrikit.data.dataset import DatasetInfo
from fmrikit.errors import DataValueError, InputError, MissingInputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import (PROJECT_KEY, checksum_digest, new_run_id, portable_path, project_pointer,
                                   resolve_recorded, write_sidecar)
from fmrikit.project import check_desc, default_encoder_path, subject_encoder_path, subject_key
from fmrikit.methods.encoder.model import UniversalEncoder
from fmrikit.engine.serialization import read_config, weights_checksum
from fmrikit.project import preproc_betas_path
from fmrikit.features.registry import feature_spec
from fmrikit.engine.runs import finish_run, one_run, start_run, write_log
from fmrikit.data.splits import load_subject_data
from fmrikit.engine.distributed import Distributed, distributed
from fmrikit.methods.encoder.fit import EncoderData, encoder_data, encoding_scores, fit_encoder
from fmrikit.engine.runs import LOG_NAME, SIDECAR_NAME
from fmrikit.methods.encoder.settings import EncoderSettings, EncoderSize
from fmrikit.engine.runs import settings_record

log = logging.getLogger("fmrikit")


@dataclass
class EncoderResult:
    """An encoder folder, its scores per trained subject and its per-epoch log."""

    model: Path
    scores: dict[str, dict[str, Any] | None]
    history: list[dict]


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[UniversalEncoder, dict]:
    """An encoder folder's model and ``config.json`` record."""
    record = read_config(path)
    model = UniversalEncoder.from_pretrained(path, device=device)
    return model, record


def find_encoder(root: str | os.PathLike | None, subject: int, model: str | os.PathLike | None = None) -> Path:
    """The encoder folder that holds a subject: ``model`` if given, else ``<root>/models/encoder``, else
    the subject's ``sub-NN_desc-adapt_encoder``.

    Raises
    ------
    MissingInputError
        No encoder folder with the subject.
    """
    key = subject_key(subject)
    candidates = [Path(model)] if model is not None else [default_encoder_path(root),
                                                          subject_encoder_path(root, subject)]
    for path in candidates:
        if (path / "config.json").is_file() and key in read_config(path)["config"].get("subjects", {}):
            return path
    if model is not None:
        read_config(model)  # a clear error when it is not a model folder at all
    raise MissingInputError("no encoder holds this subject", path=candidates[0],
                            expected=f"an encoder folder with {key} (fmrikit pretrain --model encoder, "
                                     "or adapt-subject --model encoder); pass --model",
                            found="subjects " + ", ".join(_subjects_of(candidates[0])) if
                            (candidates[0] / "config.json").is_file() else "no encoder")


def _subjects_of(path: Path) -> list[str]:
    return sorted(read_config(path)["config"].get("subjects", {}))


@one_run
def pretrain_encoder(subjects: list[int], *, roi: str = "nsdgeneral", root: str | os.PathLike | None = None,
                     out: str | os.PathLike | None = None, features: str = "gabor", image_model: str | None = None,
                     grid: int | None = None, size: EncoderSize | None = None,
                     settings: EncoderSettings | None = None, sessions: list[int] | None = None,
                     n_train: int | None = None, preset: str | None = None, device: str = "auto",
                     resume: bool = False, overwrite: bool = False) -> EncoderResult:
    """Train the universal encoder jointly on several subjects.

    Parameters
    ----------
    subjects : list of int
        Subjects whose preprocessed datasets train it; they need no image in common.
    roi : str
        Voxel selection of the datasets (each of their voxels gets an embedding).
    root : path-like, optional
        Project folder.
    out : path-like, optional
        Encoder folder (default ``<root>/models/encoder``).
    features : str
        Multi-level patch features: ``gabor``, ``effnet-lite0``, ``clip``, ``dinov2``.
    image_model : str, optional
        Local folder or cached Hugging Face id for ``clip`` / ``dinov2``.
    grid : int, optional
        Patch grid side of ``gabor`` / ``effnet-lite0`` (default the extractor's).
    size : EncoderSize, optional
    settings : EncoderSettings, optional
    sessions : list of int, optional
        Sessions whose non-shared trials train (default all).
    n_train : int, optional
        Training images per subject, drawn at random with ``settings.seed`` (default all).
    preset : str, optional
        Name of the :func:`~fmrikit.methods.encoder.settings.encoder_preset` the values came from, recorded.
    device : str
        ``auto``, ``cpu``, ``cuda``; under ``torchrun`` each process takes its own GPU.
    resume : bool
        Continue from the last epoch checkpoint.
    overwrite : bool

    Returns
    -------
    EncoderResult

    Raises
    ------
    MissingInputError
        A subject has no preprocessed dataset.
    OutputExistsError
        The folder exists and ``overwrite`` is False.
    """
    size, settings = size or EncoderSize(), settings or EncoderSettings()
    settings.check()
    size.check()
    out = Path(out) if out is not None else default_encoder_path(root)
    spec = feature_spec(features, image_model, grid)
    checkpoint = start_run([out], kind="pretrain encoder", overwrite=overwrite, resume=resume,
                           inputs=[preproc_betas_path(root, s, roi) for s in subjects] + [image_model], root=root,
                           settings={"subjects": subjects, "roi": roi, "features": spec, "sessions": sessions,
                                     "n_train": n_train, "size": size, "training": settings})
    paths = [subject_dataset(root, s, roi) for s in subjects]
    run_id = new_run_id()
    with distributed(device) as ctx:
        data = [load_encoder_data(p, s, spec, ctx, root=root, sessions=sessions, n_train=n_train,
                                  seed=settings.seed) for s, p in zip(subjects, paths)]
        torch.manual_seed(settings.seed)
        model = new_encoder(data, size)
        model.to(ctx.device)
        result = fit_encoder(model, data, settings, ctx, checkpoint=checkpoint, resume=resume,
                             description="pretrain encoder")
        scores = {d.key: encoding_scores(model, d, device=ctx.device) for d in data}
        if ctx.is_main:
            parameters = {"preset": preset, "subjects": [d.key for d in data], "roi": roi, "features": spec,
                          "sessions": sessions,
                          "n_train": n_train, "model": vars(size), "training": settings_record(settings),
                          "world_size": ctx.world_size}
            write_encoder(out, model, {d.key: _subject_record(d, root) for d in data}, spec=spec, roi=roi,
                          history=result.history, scores=scores, command="pretrain", parameters=parameters,
                          inputs=[d.checksum for d in data], seed=settings.seed, run_id=run_id,
                          overwrite=overwrite, kind="pretrain encoder", root=root)
            finish_run(checkpoint)
        ctx.barrier()
    return EncoderResult(model=out, scores=scores, history=result.history)


@one_run
def adapt_encoder(subject: int, *, root: str | os.PathLike | None = None, roi: str = "nsdgeneral",
                  base: str | os.PathLike | None = None, pretrained: bool = True, n_train: int | None = None,
                  sessions: list[int] | None = None, features: str | None = None, image_model: str | None = None,
                  grid: int | None = None, size: EncoderSize | None = None, settings: EncoderSettings | None = None,
                  preset: str | None = None, desc: str = "adapt",
                  out: str | os.PathLike | None = None, device: str = "auto", resume: bool = False,
                  overwrite: bool = False) -> EncoderResult:
    """Fit a new subject: only its voxel embeddings on a frozen pretrained encoder.

    Parameters
    ----------
    subject : int
    root : path-like, optional
    roi : str
        Voxel selection of the subject's dataset.
    base : path-like, optional
        Pretrained encoder (default ``<root>/models/encoder``).
    pretrained : bool
        False trains a fresh single-subject encoder, every weight (the from-scratch baseline);
        ``features`` (default ``gabor``), ``image_model``, ``grid`` and ``size`` then apply; with a base they
        come from it and must not be given.
    n_train : int, optional
        Training images, drawn at random with ``settings.seed`` (default all), so runs with the
        same seed and count see the same images.
    sessions : list of int, optional
    settings : EncoderSettings, optional
    preset : str, optional
        Name of the preset the values came from, recorded.
    desc : str
        ``desc-`` entity of the output folder ``<root>/sub-NN/sub-NN_desc-<desc>_encoder``.
    out : path-like, optional
        Output folder instead.

    Returns
    -------
    EncoderResult
    """
    settings = settings or EncoderSettings()
    settings.check()
    if pretrained and (features is not None or image_model is not None or grid is not None or size is not None):
        raise InputError("the image features and sizes come from the pretrained encoder",
                         expected="no features, image model, grid or size (or pretrained=False: --no-pretrained)",
                         found=f"features {features!r}, image model {image_model!r}, grid {grid}, size {size}")
    check_desc(desc)
    if size is not None:
        size.check()
    out = Path(out) if out is not None else subject_encoder_path(root, subject, desc)
    base_path = (Path(base) if base is not None else default_encoder_path(root)) if pretrained else None
    checkpoint = start_run([out], kind="adapt-subject encoder", overwrite=overwrite, resume=resume,
                           inputs=[preproc_betas_path(root, subject, roi), base_path, image_model], root=root,
                           settings={"subject": subject, "roi": roi, "base": base_path, "pretrained": pretrained,
                                     "n_train": n_train, "sessions": sessions, "features": features,
                                     "image_model": image_model, "size": size, "training": settings})
    dataset = subject_dataset(root, subject, roi)
    key = subject_key(subject)
    model, record = None, None
    if pretrained:
        model, record = load_encoder(base_path)
        spec = record["features"]
    else:
        spec = feature_spec(features or "gabor", image_model, grid)
    run_id = new_run_id()
    with distributed(device) as ctx:
        data = load_encoder_data(dataset, subject, spec, ctx, root=root, sessions=sessions, n_train=n_train,
                                 seed=settings.seed)
        torch.manual_seed(settings.seed)
        if model is None:
            model = new_encoder([data], size or EncoderSize())
            subjects = {}
        else:
            _check_features(model, data, base_path)
            if key in model.voxel_embeddings:
                log.info("%s is in the base encoder already; its embeddings are learnt anew", key)
            subjects = {k: dict(v, dataset=portable_path(resolve_recorded(v["dataset"], base_path, record), root))
                        for k, v in record["subjects"].items()}
            for p in model.parameters():
                p.requires_grad_(False)
            model.add_subject(key, data.n_voxels)
            model.voxel_index[key].ijk.copy_(torch.from_numpy(data.info.ijk))
        model.to(ctx.device)
        params = list(model.parameters()) if base_path is None else [model.voxel_embeddings[key]]
        result = fit_encoder(model, [data], settings, ctx, params=params, checkpoint=checkpoint,
                             resume=resume, description="adapt encoder")
        scores = {key: encoding_scores(model, data, device=ctx.device)}
        if ctx.is_main:
            subjects[key] = _subject_record(data, root)
            parameters = {"preset": preset, "subject": subject, "roi": roi,
                          "base": str(base_path) if base_path else None,
                          "pretrained": pretrained, "n_train": n_train, "sessions": sessions, "features": spec,
                          "desc": desc, "training": settings_record(settings), "world_size": ctx.world_size}
            inputs = [data.checksum]
            base_record = None
            if base_path is not None:
                base_record = {"path": portable_path(base_path, root), "sha256": weights_checksum(base_path)}
                inputs.append({"path": str(base_path.resolve()), "sha256": base_record["sha256"]})
            write_encoder(out, model, subjects, spec=spec, roi=roi, history=result.history, scores=scores,
                          command="adapt-subject", parameters=parameters, inputs=inputs, seed=settings.seed,
                          run_id=run_id, overwrite=overwrite, base=base_record, kind="adapt-subject encoder",
                          root=root)
            finish_run(checkpoint)
        ctx.barrier()
    return EncoderResult(model=out, scores=scores, history=result.history)


def load_encoder_data(dataset: Path, subject: int, spec: dict, ctx: Distributed, *, root=None,
                      sessions: list[int] | None = None, n_train: int | None = None, seed: int = 0,
                      batch_size: int = 32) -> EncoderData:
    """A subject's repeat-averaged responses and patch features (rank 0 fills the feature cache first).

    Parameters
    ----------
    dataset : Path
        Preprocessed dataset.
    subject : int
    spec : dict
        Feature extractor (:func:`~fmrikit.methods.mindeye.targets.feature_spec`).
    n_train : int, optional
        Keep this many training images, drawn with ``default_rng(seed)`` (default all).

    Raises
    ------
    InputError
        ``n_train`` < 2 or more than the subject's training images.
    """
    from fmrikit.features.cache import dataset_features
    from fmrikit.features.registry import spec_extractor

    extractor = spec_extractor(spec)
    sub = load_subject_data(dataset, subject_key(subject), sessions=sessions)
    if n_train is not None:
        images = np.unique(sub.train_stim)
        if not 2 <= n_train <= len(images):
            raise InputError("--n-train must be between 2 and the subject's training images", path=dataset,
                             expected=f"2..{len(images)}", found=str(n_train))
        keep = images[np.random.default_rng([seed, subject]).permutation(len(images))[:n_train]]
        trials = np.isin(sub.train_stim, keep)
        sub.train_x, sub.train_stim = sub.train_x[trials], sub.train_stim[trials]

    def features(ids: np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, *extractor.patch_shape), np.float16)
        return dataset_features(sub.info, ids, extractor, "patches", root=root, batch_size=batch_size,
                                device=str(ctx.device))

    if ctx.is_main:  # rank 0 fills the cache; the other ranks then read it
        data = encoder_data(sub, features)
    ctx.barrier()
    if not ctx.is_main:
        data = encoder_data(sub, features)
    log.info("%s: %d training images, %d test images, %d voxels", dataset.name, len(data.train_stim),
             len(data.test_stim), data.n_voxels)
    return data


def new_encoder(data: list[EncoderData], size: EncoderSize) -> UniversalEncoder:
    """A fresh encoder over the subjects of ``data`` (their voxel ``ijk`` stored)."""
    _, n_levels, n_patches, in_channels = data[0].train_features.shape
    model = UniversalEncoder({d.key: d.n_voxels for d in data}, n_levels=n_levels, n_patches=n_patches,
                             in_channels=in_channels, channels=size.channels, embed_dim=size.embed_dim)
    for d in data:
        model.voxel_index[d.key].ijk.copy_(torch.from_numpy(d.info.ijk))
    return model


def write_encoder(out: Path, model: UniversalEncoder, subjects: dict[str, dict], *, spec: dict, roi: str,
                  history: list[dict], scores: dict, command: str, parameters: dict, inputs: list[dict], seed: int,
                  run_id: str, overwrite: bool, kind: str, root=None, base: dict | None = None) -> None:
    """Write an encoder folder atomically (model, log, sidecar), an output of ``kind`` whose paths are relative to
    the project folder ``root``."""
    with staged_dir(out, overwrite=overwrite, kind=kind) as stage:
        model.cpu().save_pretrained(stage, extra={"features": spec, "roi": roi, "run_id": run_id,
                                                  "subjects": subjects, "base": base,
                                                  PROJECT_KEY: project_pointer(out, root)})
        write_log(stage / LOG_NAME, history, title=f"universal encoder ({command})")
        write_sidecar(stage / SIDECAR_NAME, command=command, seed=seed, run_id=run_id, inputs=inputs,
                      parameters=parameters, outputs=["config.json", "model.safetensors", LOG_NAME],
                      extra={"encoding": scores, "final_epoch": history[-1] if history else None,
                             "conventions": {key: entry.get("conventions") for key, entry in subjects.items()}},
                      root=root, folder=out)


def subject_info(record: dict, key: str, path: Path) -> dict:
    """A subject's entry of an encoder's ``config.json`` (grid, pycortex names, dataset)."""
    entry = record.get("subjects", {}).get(key)
    if entry is None:
        raise InputError("subject not in the encoder", path=path, expected=", ".join(sorted(record.get("subjects", {}))),
                         found=key)
    return entry


def encoder_dataset(record: dict, key: str, path: Path) -> Path:
    """The preprocessed dataset an encoder's subject was trained on, checked unchanged.

    Raises
    ------
    MissingInputError, DataValueError
        Not where the record says, or another file (see :func:`~fmrikit.io.provenance.recorded_file`).
    """
    from fmrikit.io.provenance import recorded_file

    entry = subject_info(record, key, path)
    return recorded_file(entry["dataset"], entry.get("dataset_sha256"), path, record, f"the dataset of {key}")


def _subject_record(data: EncoderData, root) -> dict:
    info: DatasetInfo = data.info
    return {"dataset": portable_path(info.path, root), "dataset_sha256": checksum_digest(data.checksum),
            "n_voxels": data.n_voxels,
            "n_train_images": len(data.train_stim), "affine": np.asarray(info.affine).tolist(),
            "volume_shape": list(info.volume_shape), "mesh": info.mesh, "pycortex_subject": info.pycortex_subject,
            "pycortex_xfm": info.pycortex_xfm, "anatomy": info.anatomy, "stimuli_path": info.stimuli_path,
            "stimuli_dataset": info.stimuli_dataset, "conventions": info.conventions}


def _check_features(model: UniversalEncoder, data: EncoderData, base: Path) -> None:
    cfg = model.config
    expected = (cfg["n_levels"], cfg["n_patches"], cfg["in_channels"])
    found = tuple(data.train_features.shape[1:])
    if found != expected:
        raise DataValueError("image features do not fit the encoder", path=base,
                             expected=f"(L, P, C) = {expected}", found=str(found))


def subject_dataset(root, subject: int, roi: str) -> Path:
    """A subject's preprocessed dataset, which must exist (:class:`MissingInputError` otherwise)."""
    path = preproc_betas_path(root, subject, roi)
    if not path.is_file():
        raise MissingInputError("no preprocessed dataset for this subject and ROI", path=path,
                                expected=f"run fmrikit preprocess --subject {subject} --roi {roi} first")
    return path


