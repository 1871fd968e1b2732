"""What the decoder commands share: image targets, retrieval scores, the training log."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from fmrikit.methods.mindeye.model import MindEyeDecoder
from fmrikit.data.splits import SubjectData
from fmrikit.engine.distributed import Distributed

log = logging.getLogger("fmrikit")

#: Candidates per retrieval round (MindEye2); fewer when the test set is smaller.
RETRIEVAL_CANDIDATES = 300


def image_embeddings(data: list[SubjectData], spec: dict[str, Any], ctx: Distributed, *, root=None,
                     batch_size: int = 32) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Pooled image embeddings of every subject's training and test stimuli.

    Rank 0 computes what the feature cache lacks; the other ranks then read the cache.

    Returns
    -------
    dict of str to (Tensor, Tensor)
        By subject key: training targets (n_train, D) and test targets (n_test, D), float32, raw
        (not standardised).
    """
    from fmrikit.features.cache import dataset_features
    from fmrikit.features.registry import get_extractor

    extractor = get_extractor(spec["name"], image_model=spec.get("image_model"))
    device = str(ctx.device)

    def compute() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        out = {}
        for d in data:
            ids = np.concatenate([d.train_stim, d.test_stim])
            feats = dataset_features(d.info, ids, extractor, "pooled", root=root, batch_size=batch_size, device=device)
            feats = torch.from_numpy(np.asarray(feats, np.float32))
            out[d.key] = (feats[:len(d.train_stim)], feats[len(d.train_stim):])
        return out

    if ctx.is_main:
        result = compute()
    ctx.barrier()
    if not ctx.is_main:
        result = compute()
    return result


def set_target_statistics(model: MindEyeDecoder, train_targets: list[torch.Tensor]) -> None:
    """Store the mean and standard deviation (per dimension) of the training targets in the model."""
    t = torch.cat(train_targets).double()
    std = t.std(0)
    model.target_mean.copy_(t.mean(0).float())
    model.target_std.copy_(std.clamp_min(1e-6 * float(std.max()) + 1e-12).float())


@torch.no_grad()
def retrieval_scores(model: MindEyeDecoder, data: SubjectData, test_targets: torch.Tensor,
                     gate: torch.nn.Module | None = None, device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """Top-1 image and brain retrieval on the subject's test images (metrics.md protocol).

    Parameters
    ----------
    test_targets : Tensor, shape (n_test, D)
        Raw image embeddings of ``data.test_stim``.

    Returns
    -------
    dict or None
        ``image_retrieval`` and ``brain_retrieval`` (fractions), their 95% intervals, the number of
        candidates per round (300, or all test images when fewer), and the test MSE of the regression
        head; None when the dataset has fewer than 2 test images.
    """
    from fmrikit.analysis.metrics import retrieval

    if len(data.test_x) < 2:
        return None
    model.eval()
    x = data.test_x.to(device)
    if gate is not None:
        x = gate(x)
    emb, regression = model(x, data.key)
    target = model.standardize(test_targets.to(device))
    n_candidates = min(RETRIEVAL_CANDIDATES, len(x))
    scores = retrieval(emb.float().cpu().numpy(), target.float().cpu().numpy(), n_candidates=n_candidates,
                       n_draws=30, seed=42)
    return {"image_retrieval": scores["image_retrieval"]["mean"], "brain_retrieval": scores["brain_retrieval"]["mean"],
            "image_retrieval_ci95": scores["image_retrieval"]["ci95"],
            "brain_retrieval_ci95": scores["brain_retrieval"]["ci95"], "n_candidates": n_candidates,
            "n_test_images": len(x), "chance": 1 / n_candidates,
            "regression_mse": float(torch.nn.functional.mse_loss(regression.float(), target.float()))}
