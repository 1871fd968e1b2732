"""The per-subject ridge baseline of the universal encoder (``pretrain --model ridge``).

Same inputs as the encoder: the subject's repeat-averaged training images and their multi-level
patch features, flattened to L*P*C values per image; one himalaya ridge per voxel, its alpha by
5-fold cross-validation (:func:`fmrikit.engine.ridge.fit_ridge`). Outputs, in
``<root>/sub-NN/sub-NN_desc-ridge/``: ``sub-NN_ridge.h5`` (the model), ``sub-NN_pred.h5``
(predictions of the shared test images, in ``fmrikit encode``'s format, so ``fmrikit evaluate
encoding`` scores them like the encoder's) and ``ridge.json`` (sidecar with the test scores).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmrikit.io.atomic import claim_outputs, one_run, staged_dir
from fmrikit.io.provenance import new_run_id, write_sidecar
from fmrikit.project import preproc_betas_path, subject_dir, subject_label
from fmrikit.features.registry import feature_spec
from fmrikit.engine.distributed import Distributed


@dataclass
class RidgeResult:
    """Where the baseline was written, its test scores and its fit time (s)."""

    out: Path
    scores: dict[str, Any] | None
    fit_seconds: float


@one_run
def ridge_baseline(subject: int, *, root: str | os.PathLike | None = None, roi: str = "nsdgeneral",
                   features: str = "gabor", image_model: str | None = None, sessions: list[int] | None = None,
                   n_train: int | None = None, seed: int = 0, backend: str = "numpy",
                   n_targets_batch: int | None = 1000, out: str | os.PathLike | None = None, overwrite: bool = False) -> RidgeResult:
    """Fit the ridge baseline of one subject and predict its test images.

    Parameters
    ----------
    subject : int
    root : path-like, optional
    roi : str
        Voxel selection of the dataset.
    features, image_model : str
        Patch features, as for the encoder.
    sessions : list of int, optional
    n_train : int, optional
        Training images drawn at random with ``seed`` (default all; same draw as the encoder's).
    seed : int
        Image draw and cross-validation folds.
    backend : {"numpy", "torch", "torch_cuda"}
        himalaya backend.
    n_targets_batch : int, optional
        Voxels solved at once: bounds the solver's memory (the weights, L*P*C x V, are kept).
    out : path-like, optional
        Output folder (default ``<root>/sub-NN/sub-NN_desc-ridge``).
    overwrite : bool

    Returns
    -------
    RidgeResult
    """
    from fmrikit.engine.ridge import fit_ridge
    from fmrikit.methods.encoder.fit import score_predictions
    from fmrikit.methods.encoder.runs import load_encoder_data, subject_dataset

    label = subject_label(subject)
    out = Path(out) if out is not None else subject_dir(root, subject) / f"{label}_desc-ridge"
    claim_outputs([out], kind="pretrain ridge", overwrite=overwrite,
                  inputs=[preproc_betas_path(root, subject, roi), image_model], root=root)
    dataset = subject_dataset(root, subject, roi)
    spec = feature_spec(features, image_model)
    data = load_encoder_data(dataset, subject, spec, Distributed(0, 1, torch.device("cpu")), root=root,
                             sessions=sessions, n_train=n_train, seed=seed)
    flat = data.train_features.reshape(len(data.train_features), -1).float().numpy()
    start = time.perf_counter()
    ridge = fit_ridge(flat, data.train_y.numpy(), backend=backend, n_targets_batch=n_targets_batch, seed=seed)
    seconds = time.perf_counter() - start
    scores, pred = None, None
    if len(data.test_y) >= 2:
        pred = ridge.predict(data.test_features.reshape(len(data.test_features), -1).float().numpy())
        scores = score_predictions(pred, data)
    with staged_dir(out, overwrite=overwrite, kind="pretrain ridge") as stage:
        ridge.save(stage / f"{label}_ridge.h5")
        files = [f"{label}_ridge.h5"]
        if pred is not None:
            from fmrikit.methods.encoder.predict import prediction_file

            with prediction_file(stage / f"{label}_pred.h5", [f"stim-{i}" for i in data.test_stim], data.test_stim,
                                 data.info.ijk, data.key, data.info.mesh) as ds:
                ds[:] = pred
            files.append(f"{label}_pred.h5")
        write_sidecar(stage / "ridge.json", command="pretrain", seed=seed, run_id=new_run_id(),
                      inputs=[data.checksum],
                      parameters={"model": "ridge", "subject": subject, "roi": roi, "features": spec,
                                  "sessions": sessions, "n_train": n_train, "backend": backend,
                                  "n_features": int(flat.shape[1]), "cv": 5, "n_targets_batch": n_targets_batch},
                      outputs=files + ["ridge.json"],
                      extra={"encoding": scores, "fit_seconds": seconds, "n_train_images": len(data.train_stim),
                             "median_alpha": float(np.median(ridge.alphas)), "conventions": data.info.conventions},
                      root=root, folder=out)
    return RidgeResult(out=out, scores=scores, fit_seconds=seconds)

