"""Subject model folders: a new subject's input layer that names its base decoder.

The folder holds ``config.json`` (subject, voxel grid, base model path and SHA-256, training
summary) and ``model.safetensors`` with the subject's input layer (weights + voxel indices) and,
when the backbone was trained too, the shared parameters. Loading rebuilds the base decoder,
checks its checksum and puts the subject's tensors in.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmrikit._version import __version__
from fmrikit.errors import DataValueError, MissingInputError
from fmrikit.methods.mindeye.model import MindEyeDecoder
from fmrikit.engine.serialization import (CONFIG_NAME, WEIGHTS_NAME, load_weights, read_config,
                                          weights_checksum)
from fmrikit.io.provenance import PROJECT_KEY, portable_path, project_pointer, recorded_file, resolve_recorded

ADAPTER_CLASS = "SubjectDecoder"


@dataclass
class SubjectDecoder:
    """A decoder ready for one subject."""

    model: MindEyeDecoder
    key: str
    subject: int
    ijk: np.ndarray
    affine: np.ndarray
    volume_shape: tuple[int, int, int]
    record: dict[str, Any]


def save_subject_model(folder: str | os.PathLike, model: MindEyeDecoder, key: str, *, subject: int,
                       affine: np.ndarray, volume_shape: tuple[int, int, int], base: str | os.PathLike | None,
                       shared_trained: bool, extra: dict[str, Any] | None = None,
                       final: str | os.PathLike | None = None, root=None) -> Path:
    """Write a subject model folder.

    Parameters
    ----------
    folder : path-like
    model : MindEyeDecoder
        Holds the subject's input layer under ``key`` (its ``ijk`` buffer filled).
    subject : int
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine of the subject's source grid (mm).
    volume_shape : tuple of int
        Source grid shape.
    base : path-like or None
        The pretrained decoder folder this subject builds on; None when trained from scratch, in
        which case the whole model is saved here.
    shared_trained : bool
        Whether the shared parameters were trained too (then they are saved here).
    extra : dict, optional
        More record entries (paths in it already :func:`~fmrikit.io.provenance.portable_path`).
    final : path-like, optional
        Where the folder ends up when ``folder`` is a staging folder (default ``folder``).
    root : path-like, optional
        The project folder, which the record's paths are relative to.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keep = (lambda name: True) if base is None or shared_trained else (lambda name: name.startswith(f"inputs.{key}."))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
             if keep(k) and (not k.startswith("inputs.") or k.startswith(f"inputs.{key}."))}
    save_file(state, folder / WEIGHTS_NAME, metadata={"format": "pt"})
    config = dict(model.config, subjects={key: model.inputs[key].n_voxels})
    record = {
        "class": ADAPTER_CLASS, "fmrikit_version": __version__, "config": config, "subject": subject,
        "key": key, "affine": np.asarray(affine).tolist(), "volume_shape": [int(v) for v in volume_shape],
        "base_model": None if base is None else {"path": portable_path(base, root), "sha256": weights_checksum(base)},
        "shared_trained": bool(shared_trained), PROJECT_KEY: project_pointer(final or folder, root), **(extra or {}),
    }
    (folder / CONFIG_NAME).write_text(json.dumps(record, indent=2) + "\n")
    return folder


def load_subject_model(folder: str | os.PathLike, device: str | torch.device = "cpu") -> SubjectDecoder:
    """Load a subject model folder written by :func:`save_subject_model`.

    Raises
    ------
    MissingInputError
        The folder or its base model is missing.
    DataValueError
        Not a subject model, or the base model changed since the subject was trained.
    """
    folder = Path(folder)
    record = read_config(folder)
    if record.get("class") != ADAPTER_CLASS:
        raise DataValueError("not a subject model folder", path=folder / CONFIG_NAME, expected=ADAPTER_CLASS,
                             found=str(record.get("class")))
    key = record["key"]
    base = record.get("base_model")
    if base is None:
        model = MindEyeDecoder(**record["config"])
        load_weights(model, folder / WEIGHTS_NAME)
    else:
        base_path = resolve_recorded(base["path"], folder, record)
        if not (base_path / WEIGHTS_NAME).is_file():
            raise MissingInputError("the subject model's base decoder is missing", path=base_path,
                                    expected=f"the pretrained decoder named in {folder / CONFIG_NAME}")
        if weights_checksum(base_path) != base["sha256"]:
            raise DataValueError("the base decoder changed since this subject model was trained", path=base_path,
                                 expected=f"sha256 {base['sha256'][:12]}...",
                                 found=f"sha256 {weights_checksum(base_path)[:12]}...")
        model = MindEyeDecoder.from_pretrained(base_path)
        model.add_subject(key, record["config"]["subjects"][key])
        load_weights(model, folder / WEIGHTS_NAME, strict=False)
    model.to(device).eval()
    return SubjectDecoder(model=model, key=key, subject=int(record["subject"]),
                          ijk=model.inputs[key].ijk.cpu().numpy(), affine=np.asarray(record["affine"]),
                          volume_shape=tuple(record["volume_shape"]), record=record)


def subject_dataset(sub: SubjectDecoder, folder: str | os.PathLike) -> Path | None:
    """The preprocessed dataset a subject model was trained on, checked unchanged (None for records without one).

    Raises
    ------
    MissingInputError, DataValueError
        Not where the record says, or another file (see :func:`~fmrikit.io.provenance.recorded_file`).
    """
    if not sub.record.get("dataset"):
        return None
    return recorded_file(sub.record["dataset"], sub.record.get("dataset_sha256"), folder, sub.record,
                         "the subject model's dataset")
