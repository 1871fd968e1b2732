"""Joint training of the universal encoder on several subjects.

Each step takes ``batch_images`` (subject, image) pairs from the union of all subjects' training
images and, for each image, its own ``voxels_per_image`` voxels drawn at random (as in the Universal
Brain Encoder paper: 32 images, 5000 voxels each); the loss is ``(1 - w) MSE + w (1 - cos)`` on those
voxels, the cosine over each image's sample, so memory depends on the sample, not on the subjects'
voxel counts. Responses are averaged over an image's repeats; the shared images are
the test set. Checkpoints, resume and DDP work as for the decoder (:mod:`fmrikit.methods.mindeye.loop`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fmrikit._progress import run_progress, track
from fmrikit.data.dataset import DatasetInfo
from fmrikit.methods.encoder.model import UniversalEncoder, encoder_loss
from fmrikit.data.splits import SubjectData, average_repeats
from fmrikit.engine.distributed import Distributed
from fmrikit.engine.steps import FitResult
from fmrikit.engine.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from fmrikit.engine.steps import epoch_order, optimizer_step, shard_len
from fmrikit.devices import memory_guard
from fmrikit.methods.encoder.settings import EncoderSettings

log = logging.getLogger("fmrikit")


@dataclass
class EncoderData:
    """One subject's repeat-averaged responses and image features.

    Attributes
    ----------
    key : str
    info : DatasetInfo
    train_stim : ndarray of int64, shape (n_train_images,)
    train_y : Tensor, shape (n_train_images, V)
    train_features : Tensor of float16, shape (n_train_images, L, P, C)
        Half precision (as cached) to halve memory; batches are cast to float32.
    test_stim : ndarray of int64, shape (n_test_images,)
    test_y : Tensor, shape (n_test_images, V)
    test_features : Tensor of float16, shape (n_test_images, L, P, C)
    checksum : dict or None
        :func:`~fmrikit.io.provenance.file_checksum` of the dataset the responses were read from.
    """

    key: str
    info: DatasetInfo
    train_stim: np.ndarray
    train_y: torch.Tensor
    train_features: torch.Tensor
    test_stim: np.ndarray
    test_y: torch.Tensor
    test_features: torch.Tensor
    checksum: dict | None = None

    @property
    def n_voxels(self) -> int:
        return self.train_y.shape[1]


def encoder_data(data: SubjectData, features) -> EncoderData:
    """Average a subject's training trials per image and attach image features.

    Parameters
    ----------
    data : SubjectData
    features : callable
        Maps stimulus ids (n,) to features (n, L, P, C).
    """
    stim, y = average_repeats(data.train_x.numpy(), data.train_stim)
    return EncoderData(key=data.key, info=data.info, train_stim=stim, train_y=torch.from_numpy(y),
                       train_features=torch.as_tensor(features(stim), dtype=torch.float16),
                       test_stim=data.test_stim, test_y=data.test_x,
                       test_features=torch.as_tensor(features(data.test_stim), dtype=torch.float16),
                       checksum=data.checksum)


def sample_voxels(rng: np.random.Generator, n_images: int, n_voxels: int, per_image: int) -> np.ndarray:
    """Voxels of one step: for each image its own ``per_image`` voxels, drawn without replacement.

    Parameters
    ----------
    rng : Generator
    n_images, n_voxels, per_image : int
        ``per_image`` is capped at ``n_voxels`` (then every image gets every voxel).

    Returns
    -------
    ndarray of int64, shape (n_images, min(per_image, n_voxels))
        Sorted within each row.
    """
    n = min(per_image, n_voxels)
    if n == n_voxels:
        return np.broadcast_to(np.arange(n_voxels), (n_images, n)).copy()
    return np.sort(np.argpartition(rng.random((n_images, n_voxels)), n - 1, axis=1)[:, :n], axis=1)


class _StepLoss(nn.Module):
    """A step's loss over every subject in the batch, in one forward (DDP allows one per backward)."""

    def __init__(self, model: UniversalEncoder, cosine_weight: float):
        super().__init__()
        self.model, self.cosine_weight = model, cosine_weight

    def forward(self, groups: list[tuple[torch.Tensor, str, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """``groups``: per subject (features (b, L, P, C), key, voxels (b, n), target (b, n)); images-weighted mean."""
        total = sum(len(f) * encoder_loss(self.model(f, key, v).float(), y, self.cosine_weight)
                    for f, key, v, y in groups)
        return total / sum(len(f) for f, _, _, _ in groups)


@memory_guard
def fit_encoder(model: UniversalEncoder, data: list[EncoderData], settings: EncoderSettings, ctx: Distributed, *,
                params: list[nn.Parameter] | None = None, checkpoint=None, resume: bool = False,
                description: str = "encoder") -> FitResult:
    """Train ``model`` (in place) on the subjects' training images.

    Parameters
    ----------
    model : UniversalEncoder
        On ``ctx.device``.
    data : list of EncoderData
    settings : EncoderSettings
    ctx : Distributed
    params : list of Parameter, optional
        What to train (default: every parameter), e.g. only a new subject's embeddings.
    checkpoint : Path, optional
        Per-epoch checkpoint folder (written by rank 0).
    resume : bool
        Continue from ``checkpoint``.

    Returns
    -------
    FitResult
    """
    settings.check()
    params = list(model.parameters()) if params is None else params
    optimizer = torch.optim.Adam(params, lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _s: 1.0)
    pairs = np.concatenate([np.stack([np.full(len(d.train_y), k), np.arange(len(d.train_y))], 1)
                            for k, d in enumerate(data)])
    steps = math.ceil(shard_len(len(pairs), ctx) / settings.batch_images)
    result, start = FitResult(), 0
    if resume and has_checkpoint(checkpoint):
        start, result.history, _ = load_checkpoint(checkpoint, model, optimizer, scheduler)
    net = _StepLoss(model, settings.cosine_weight)
    if ctx.active:  # a step may miss a subject, whose embeddings then get no gradient
        net = nn.parallel.DistributedDataParallel(net, find_unused_parameters=True,
                                                  device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if ctx.device.type == "cuda"
                else contextlib.nullcontext())
    with run_progress((settings.epochs - start) * steps, description) as bar:
        for epoch in range(start, settings.epochs):
            order = epoch_order([len(pairs)], settings.seed, epoch, ctx)[0]
            rng = np.random.default_rng([settings.seed, epoch, ctx.rank, 2])
            net.train()
            total = 0.0
            for step in range(steps):
                batch = pairs[order[step * settings.batch_images:(step + 1) * settings.batch_images]]
                groups = []
                for k in np.unique(batch[:, 0]):
                    d, images = data[k], batch[batch[:, 0] == k, 1]
                    voxels = sample_voxels(rng, len(images), d.n_voxels, settings.voxels_per_image)
                    groups.append((d.train_features[images].to(ctx.device).float(), d.key,
                                   torch.from_numpy(voxels).to(ctx.device),
                                   d.train_y[images[:, None], voxels].to(ctx.device)))
                with autocast:
                    loss = net(groups)
                optimizer_step(loss, optimizer, f"{description} epoch {epoch + 1}")
                total += loss.item()
                bar.step(epoch + 1, settings.epochs, total / (step + 1))
            row = {"epoch": epoch + 1, "loss": total / steps}
            result.history.append(row)
            log.info("%s epoch %d: loss %.4g", description, epoch + 1, row["loss"])
            if checkpoint is not None:
                if ctx.is_main:
                    save_checkpoint(checkpoint, model, optimizer, epoch=epoch + 1, history=result.history,
                                    scheduler=scheduler)
                ctx.barrier()
    model.eval()
    return result


@torch.no_grad()
def predict(model: UniversalEncoder, features: torch.Tensor, key: str, *, batch_images: int = 32,
            voxel_chunk: int = 8192, device: torch.device | str = "cpu") -> np.ndarray:
    """Predicted responses of every voxel of a subject.

    Parameters
    ----------
    features : Tensor, shape (N, L, P, C)
    key : str

    Returns
    -------
    ndarray of float32, shape (N, V)
    """
    model.eval()
    n_vox = model.voxel_embeddings[key].shape[0]
    out = np.empty((len(features), n_vox), np.float32)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if torch.device(device).type == "cuda"
                else contextlib.nullcontext())
    for i in track(range(0, len(features), batch_images), f"predict {key}", total=-(-len(features) // batch_images)):
        f = features[i:i + batch_images].to(device).float()
        for j in range(0, n_vox, voxel_chunk):
            voxels = torch.arange(j, min(j + voxel_chunk, n_vox), device=device)
            with autocast:
                out[i:i + batch_images, j:j + voxel_chunk] = model(f, key, voxels).float().cpu().numpy()
    return out


def encoding_scores(model: UniversalEncoder, data: EncoderData, device="cpu") -> dict | None:
    """How well the model predicts the subject's test images (None with fewer than 2).

    See :func:`score_predictions`.
    """
    if len(data.test_y) < 2:
        return None
    return score_predictions(predict(model, data.test_features, data.key, device=device), data)


def score_predictions(pred: np.ndarray, data: EncoderData) -> dict:
    """Encoding scores of predicted responses to the subject's test images.

    Parameters
    ----------
    pred : ndarray, shape (n_test_images, V)
        Predictions of ``data.test_stim``.

    Returns
    -------
    dict
        ``median_r``, ``p25_r``, ``p75_r``: voxel Pearson r over the test images (repeat averages);
        ``nc_score_median``: median noise-normalised score in % (NSD noise ceiling for the median
        number of repeats, :func:`~fmrikit.analysis.metrics.noise_normalized_score`), None without
        ncsnr; ``retrieval_top1`` / ``retrieval_top5``: encoder retrieval among
        ``retrieval_candidates`` (100, or all test images when fewer; 30 draws, seed 42);
        ``n_test_images``, ``n_voxels``.
    """
    from fmrikit.analysis import metrics as M

    measured = data.test_y.numpy()
    r = M.voxel_pearson(pred, measured)
    finite = r[np.isfinite(r)]
    scores = {"median_r": float(np.median(finite)), "p25_r": float(np.percentile(finite, 25)),
              "p75_r": float(np.percentile(finite, 75)), "nc_score_median": None,
              "n_test_images": len(data.test_y), "n_voxels": data.n_voxels}
    info = data.info
    if info.ncsnr is not None and len(info.ncsnr) == data.n_voxels:
        repeats = np.unique(info.stim_id[np.isin(info.stim_id, data.test_stim)], return_counts=True)[1]
        nc = M.noise_ceiling_nsd(info.ncsnr, int(np.median(repeats)))
        scores["nc_score_median"] = float(np.nanmedian(M.noise_normalized_score(r, nc)))
    n_candidates = min(M.ENCODER_CANDIDATES, len(pred))
    found = M.encoder_retrieval(pred, measured, n_candidates=n_candidates, n_draws=30, seed=42)
    scores.update({"retrieval_top1": found["top1"]["mean"], "retrieval_top5": found["top5"]["mean"],
                   "retrieval_candidates": n_candidates})
    return scores
