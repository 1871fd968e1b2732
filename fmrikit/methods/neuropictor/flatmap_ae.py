"""NeuroPictor's fMRI calibrated encoding (``pretrain --model flatmap-ae``).

A :class:`~fmrikit.methods.neuropictor.flatmap_ae_model.FlatmapAutoencoder` is trained to reconstruct the
trials' cortical flatmaps (:mod:`fmrikit.data.flatmaps`) of several subjects at once, so that its encoder maps every
subject into one latent space (NeuroPictor Sec. 3.1; the paper pretrains on UK Biobank resting-state
maps, here the subjects' own task betas). Training samples are every subject's non-shared images of the
chosen sessions, each the flatmap averaged over the image's trials as NeuroPictor averages them
(``average_repeats``, the default), or each single trial; they are read from the flatmap caches a batch
at a time. A seeded random 5% of the training *images* (all their trials) validate, and the epoch of
lowest validation loss is kept. The loss is the MSE over the pixels inside each sample's own subject's
cortex mask.

The paper uses AdamW at lr 5e-4 with a linear schedule; :func:`~fmrikit.engine.supervised.fit_supervised`
uses Adam at a constant rate (recorded in ``run.json``).

Scores, per subject and overall, on the shared test images (repeats averaged; never trained on): the
masked MSE of the reconstruction and of the subject's mean training flatmap (the mean-map baseline:
the mean over all its training samples, validation included, computed a block at a time), their
ratio, and the mean per-image Pearson r inside the mask of both. Trials of an image that is a test
image of any of the subjects are never trained on.

Under ``torchrun --nproc_per_node=N`` the training runs with DistributedDataParallel (N
processes, ``batch_size`` rows each per step): rank 0 builds missing flatmap caches before the
other ranks read them, every rank computes the scores, and rank 0 writes the model folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmrikit.errors import InputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import checksum_digest, file_checksum, new_run_id, write_sidecar
from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAutoencoder
from fmrikit.methods.neuropictor.settings import FlatmapAESize, flatmap_ae_settings
from fmrikit.project import default_flatmap_ae_path, preproc_betas_path, subject_label
from fmrikit.engine.runs import LOG_NAME, SIDECAR_NAME, finish_run, one_run, start_run, write_log
from fmrikit.engine.distributed import Distributed, distributed
from fmrikit.engine.supervised import fit_supervised
from fmrikit.engine.settings import SupervisedSettings

log = logging.getLogger("fmrikit")

#: Fraction of the training images held out for validation (early stopping).
VAL_FRACTION = 0.05


@dataclass
class FlatmapAEResult:
    """What ``pretrain --model flatmap-ae`` wrote and scored.

    Attributes
    ----------
    model : Path
        The model folder.
    scores : dict
        Per subject key (``"sub-01"``...) and ``"overall"``: see :func:`flatmap_scores`.
    history : list of dict
        Per-epoch training rows.
    """

    model: Path
    scores: dict[str, Any]
    history: list[dict] = field(default_factory=list)


@one_run
def pretrain_flatmap_ae(subjects: list[int], *, root: str | os.PathLike | None = None, roi: str = "nsdgeneral",
                        size: FlatmapAESize | None = None, settings: SupervisedSettings | None = None,
                        sessions: list[int] | None = None, average_repeats: bool = True, preset: str = "small",
                        device: str = "auto", out: str | os.PathLike | None = None, resume: bool = False,
                        overwrite: bool = False) -> FlatmapAEResult:
    """Train the flatmap autoencoder on several subjects' trial flatmaps.

    Parameters
    ----------
    subjects : list of int
        Subjects with a preprocessed ``roi`` dataset (their flatmap caches are built if missing).
    root : path-like, optional
        Project folder.
    roi : str
        Voxel selection of the datasets.
    size : FlatmapAESize, optional
        Architecture (default ``preset``'s: ``small`` is 64 px, 4 x 128, for a CPU; ``paper`` is 256 px,
        patch 16, 24 x 1024, 16 heads); ``image_size`` is the flatmap size.
    settings : SupervisedSettings, optional
        Default ``preset``'s (:func:`~fmrikit.methods.neuropictor.settings.flatmap_ae_settings`).
    sessions : list of int, optional
        Sessions whose non-shared trials train (default all); shared images are always the test set.
    average_repeats : bool
        Train on each image's trials averaged (one sample per subject and image), else on single trials.
    preset : {"small", "paper"}
        Where ``size`` and ``settings`` default from; recorded in ``run.json``.
    device : str
        ``auto``, ``cpu``, ``cuda``... (bf16 autocast on CUDA); under ``torchrun`` each process takes
        its own GPU.
    out : path-like, optional
        Model folder (default ``<root>/models/flatmap-ae``): ``config.json`` + ``model.safetensors``,
        ``training_log.tsv`` and ``run.json``.
    resume : bool
        Continue an interrupted run from its per-epoch checkpoint (``.<out name>.checkpoint``).
    overwrite : bool
        Replace an existing model folder.

    Returns
    -------
    FlatmapAEResult

    Raises
    ------
    OutputExistsError
        ``out`` exists and neither ``overwrite`` nor ``resume`` was given.
    MissingInputError
        A subject without a preprocessed dataset, or a session its cache lacks.
    InputError
        No subjects, too few training images, or an invalid size.
    """
    size = size or FlatmapAESize.from_preset(preset)
    size.check()
    settings = settings or flatmap_ae_settings(preset)
    settings.check()
    subjects = [int(s) for s in subjects]
    if not subjects or len(set(subjects)) != len(subjects):
        raise InputError("which subjects?", expected="one or more distinct subjects", found=str(subjects))
    out = Path(out) if out is not None else default_flatmap_ae_path(root)
    checkpoint = start_run([out], kind="pretrain flatmap-ae", overwrite=overwrite, resume=resume,
                           inputs=[preproc_betas_path(root, s, roi) for s in subjects], root=root,
                           settings={"subjects": subjects, "roi": roi, "size": size, "training": settings,
                                     "sessions": sessions, "average_repeats": average_repeats})
    with distributed(device) as ctx:
        result, scores = _train(subjects, ctx, root=root, roi=roi, size=size, settings=settings, sessions=sessions,
                                average_repeats=average_repeats, preset=preset, out=out, checkpoint=checkpoint,
                                resume=resume, overwrite=overwrite)
    return FlatmapAEResult(model=out, scores=scores, history=result.history)


def _train(subjects: list[int], ctx: Distributed, *, root, roi: str, size: FlatmapAESize,
           settings: SupervisedSettings, sessions, average_repeats: bool, preset: str, out: Path,
           checkpoint: Path, resume: bool, overwrite: bool):
    """Train, score (every rank) and write (rank 0) the flatmap autoencoder."""
    from fmrikit.data.flatmaps.store import FlatmapStore
    from fmrikit.data.flatmaps.cache import read_flatmap_info, split_rows

    dev = ctx.device
    paths = flatmap_caches(subjects, ctx, root=root, roi=roi, size=size.image_size)
    checksums = [file_checksum(p) for p in paths] if ctx.is_main else []  # of the caches this run reads
    infos = [read_flatmap_info(p) for p in paths]
    test_ids = np.unique(np.concatenate([i.stim_id[i.shared] for i in infos]))
    rows = []
    for info in infos:
        train, _ = split_rows(info, sessions)
        rows.append(train[~np.isin(info.stim_id[train], test_ids)])  # another subject's test image: not trained
    masks = torch.from_numpy(np.stack([i.mapping.mask for i in infos])).to(dev)

    with FlatmapStore(paths, rows, average_repeats=average_repeats) as store:
        stim = store.stim_id(np.arange(len(store)))
        owner = store.subject_of(np.arange(len(store)))
        images = np.unique(stim)
        if len(images) < 10:
            raise InputError("too few training images for the flatmap autoencoder", path=paths[0],
                             expected=">= 10", found=str(len(images)))
        rng = np.random.default_rng(settings.seed)
        val_images = rng.choice(images, max(1, int(round(VAL_FRACTION * len(images)))), replace=False)
        is_val = np.isin(stim, val_images)
        train_idx, val_idx = np.nonzero(~is_val)[0], np.nonzero(is_val)[0]

        torch.manual_seed(settings.seed)
        model = FlatmapAutoencoder(**asdict(size)).to(dev)

        def batch(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            index = np.sort(index)  # in file order (the loss does not depend on the order in a batch)
            x = torch.from_numpy(store.read(index)).to(dev)
            return x, masks[torch.from_numpy(owner[index]).to(dev)]

        def batch_loss(batch_rows: np.ndarray, net: torch.nn.Module):
            return model.loss(*batch(train_idx[batch_rows]), net=net)

        def val_loss() -> float:
            total, count = 0.0, 0
            for start in range(0, len(val_idx), settings.batch_size):
                x, m = batch(val_idx[start:start + settings.batch_size])
                sq = (model(x).float() - x) ** 2
                total += float(sq[m.expand_as(sq)].sum())
                count += int(m.sum())
            return total / max(count, 1)

        log.info("flatmap autoencoder: %d training samples (%d images), %d validation samples (%d images)",
                 len(train_idx), len(images) - len(val_images), len(val_idx), len(val_images))
        n_trials = {"n_train_trials": int(store.trial_count(train_idx).sum()),
                    "n_val_trials": int(store.trial_count(val_idx).sum())}
        result = fit_supervised(model, batch_loss, len(train_idx), settings, device=dev, val_loss=val_loss,
                                checkpoint=checkpoint, resume=resume, description="flatmap autoencoder", ctx=ctx)
        means = mean_flatmaps(store, owner, len(paths))

    scores = flatmap_scores(model, paths, [i.mapping.mask for i in infos], means,
                            [subject_label(s) for s in subjects], device=dev)
    if ctx.is_main:
        flatmaps = {subject_label(s): {"path": str(Path(p).resolve()), "sha256": checksum_digest(c)}
                    for s, p, c in zip(subjects, paths, checksums)}
        extra = {"subjects": subjects, "roi": roi, "flatmap_size": size.image_size, "flatmaps": flatmaps}
        with staged_dir(out, overwrite=overwrite, kind="pretrain flatmap-ae") as stage:
            model.to("cpu").save_pretrained(stage, extra=extra)
            write_log(stage / LOG_NAME, result.history, title="flatmap autoencoder")
            write_sidecar(stage / SIDECAR_NAME, command="pretrain --model flatmap-ae", seed=settings.seed,
                          run_id=new_run_id(), inputs=checksums,
                          parameters={"subjects": subjects, "roi": roi, "sessions": sessions, "preset": preset,
                                      "size": asdict(size), "training": asdict(settings),
                                      "average_repeats": average_repeats, "optimizer": "Adam, constant learning rate "
                                      "(the paper: AdamW with a linear schedule)", "val_fraction": VAL_FRACTION,
                                      "loss": "MSE over the pixels inside each subject's flatmap mask",
                                      "device": str(dev), "world_size": ctx.world_size},
                          outputs=["config.json", "model.safetensors", LOG_NAME],
                          extra={"n_train_samples": int(len(train_idx)), "n_val_samples": int(len(val_idx)),
                                 **n_trials,
                                 "n_train_images": int(len(images) - len(val_images)),
                                 "n_val_images": int(len(val_images)), "best_epoch": result.best_epoch,
                                 "val_mse": min((r["val_loss"] for r in result.history), default=None),
                                 "scores": scores, "conventions": dataset_conventions(subjects, root, roi)},
                          root=root, folder=out)
        finish_run(checkpoint)
    ctx.barrier()
    model.eval()
    return result, scores


def flatmap_caches(subjects: list[int], ctx: Distributed, *, root, roi: str, size: int) -> list[Path]:
    """The subjects' flatmap caches (:func:`fmrikit.data.flatmaps.flatmap_dataset`), built if missing or stale.

    Rank 0 builds what is missing first; the other ranks then find the caches up to date (no two
    processes write the same HDF5). Every subject without a cache is checked for a cortical surface before
    any cache is built.
    """
    from fmrikit.data.dataset import read_info
    from fmrikit.data.flatmaps.cache import flatmap_dataset
    from fmrikit.data.flatmaps.operator import check_flatmap_source
    from fmrikit.project import flatmap_path, preproc_betas_path

    for s in subjects:
        dataset = preproc_betas_path(root, s, roi)
        if dataset.is_file() and not flatmap_path(root, s, roi, size).is_file():
            info = read_info(dataset)
            if not info.is_surface:  # a surface dataset uses the common fsaverage flat space
                check_flatmap_source(info)

    def caches() -> list[Path]:
        return [flatmap_dataset(s, root=root, roi=roi, size=size) for s in subjects]

    if ctx.is_main:
        paths = caches()
    ctx.barrier()
    if not ctx.is_main:
        paths = caches()
    return paths


def dataset_conventions(subjects: list[int], root, roi: str) -> dict[str, dict]:
    """The data conventions of the subjects' preprocessed datasets (for a model's sidecar)."""
    from fmrikit.data.dataset import read_info
    from fmrikit.project import preproc_betas_path

    return {subject_label(s): read_info(preproc_betas_path(root, s, roi)).conventions for s in subjects}


def mean_flatmaps(store, owner: np.ndarray, n_subjects: int, block: int = 256) -> np.ndarray:
    """Each subject's mean flatmap over all of the store's entries, read a block at a time.

    Parameters
    ----------
    store : fmrikit.data.flatmaps.FlatmapStore
    owner : ndarray of int, shape (len(store),)
        ``store.subject_of`` of every entry.

    Returns
    -------
    ndarray of float32, shape (n_subjects, size, size)
    """
    sums = np.zeros((n_subjects, store.size, store.size))
    counts = np.bincount(owner, minlength=n_subjects)
    for start in range(0, len(store), block):
        index = np.arange(start, min(start + block, len(store)))
        x = store.read(index).astype(np.float64)
        for s in np.unique(owner[index]):
            sums[s] += x[owner[index] == s].sum(0)
    return (sums / np.maximum(counts, 1)[:, None, None]).astype(np.float32)


@torch.no_grad()
def reconstruct_flatmaps(model: FlatmapAutoencoder, images: np.ndarray, device="cpu", block: int = 64) -> np.ndarray:
    """The autoencoder's reconstructions of flatmaps, float32 (n, S, S), in blocks."""
    model.eval()
    out = [model(torch.from_numpy(np.ascontiguousarray(images[s:s + block], np.float32)).to(device)).float().cpu()
           for s in range(0, len(images), block)]
    return torch.cat(out).numpy() if out else np.zeros_like(images, np.float32)


def masked_scores(pred: np.ndarray, images: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image MSE and Pearson r inside a mask.

    Parameters
    ----------
    pred : ndarray, shape (n, S, S) or (S, S)
        Predictions (one map broadcast to every image, for the mean-map baseline).
    images : ndarray, shape (n, S, S)
    mask : ndarray of bool, shape (S, S)

    Returns
    -------
    mse, r : ndarray of float64, shape (n,)
    """
    p = np.broadcast_to(np.asarray(pred, np.float64), images.shape)[:, mask]
    y = np.asarray(images, np.float64)[:, mask]
    mse = ((p - y) ** 2).mean(1)
    pc, yc = p - p.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    denom = np.sqrt((pc ** 2).sum(1) * (yc ** 2).sum(1))
    r = np.divide((pc * yc).sum(1), denom, out=np.full(len(y), np.nan), where=denom > 0)
    return mse, r


def flatmap_scores(model: FlatmapAutoencoder, paths: list, masks: list[np.ndarray], means: np.ndarray,
                   keys: list[str], device="cpu") -> dict[str, Any]:
    """Test scores of the autoencoder and of the mean-flatmap baseline.

    For each subject, on its shared test images (:func:`fmrikit.data.flatmaps.test_flatmaps`):
    ``mse`` (mean over images of the masked MSE), ``baseline_mse`` (the same for the subject's mean
    training flatmap), ``mse_ratio`` (``mse / baseline_mse``), ``r`` and ``baseline_r`` (mean per-image
    Pearson r inside the mask; NaN images, e.g. a constant map, are skipped), ``n_test_images`` and
    ``n_mask_pixels``. ``overall`` averages the per-image values over every subject's images.
    """
    from fmrikit.data.flatmaps.cache import test_flatmaps

    scores, pooled = {}, {"mse": [], "baseline_mse": [], "r": [], "baseline_r": []}
    for key, path, mask, mean in zip(keys, paths, masks, means):
        _, images = test_flatmaps(path)
        mse, r = masked_scores(reconstruct_flatmaps(model, images, device), images, mask)
        base_mse, base_r = masked_scores(mean, images, mask)
        values = {"mse": mse, "baseline_mse": base_mse, "r": r, "baseline_r": base_r}
        for k, v in values.items():
            pooled[k].append(v)
        scores[key] = {**_summary(values), "n_test_images": int(len(images)), "n_mask_pixels": int(mask.sum())}
    scores["overall"] = {**_summary({k: np.concatenate(v) for k, v in pooled.items()}),
                         "n_test_images": int(sum(s["n_test_images"] for s in scores.values()))}
    return scores


def _summary(values: dict[str, np.ndarray]) -> dict[str, float | None]:
    def mean(v):
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else None

    out = {k: mean(v) for k, v in values.items()}
    out["mse_ratio"] = (out["mse"] / out["baseline_mse"] if out["mse"] is not None and out["baseline_mse"]
                        else None)
    return out
