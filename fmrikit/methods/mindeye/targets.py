"""What the decoder commands share: image targets (pooled vectors or tokens), retrieval scores."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from fmrikit.checks import check_option
from fmrikit.methods.mindeye.model import MindEyeDecoder
from fmrikit.methods.mindeye.settings import TARGETS
from fmrikit.data.splits import SubjectData
from fmrikit.engine.distributed import Distributed

log = logging.getLogger("fmrikit")

#: Candidates per retrieval round (MindEye2). A test set with fewer images is scored among all of them, and the
#: number used is recorded with the scores.
RETRIEVAL_CANDIDATES = 300
#: Rounds of candidates and their seed (metrics.md).
RETRIEVAL_DRAWS, RETRIEVAL_SEED = 30, 42


def target_spec(features: str, image_model: str | None, targets: str) -> dict[str, Any]:
    """How a decoder's targets are computed (stored with the model as its ``features`` record).

    Parameters
    ----------
    features : str
        Feature extractor (:func:`~fmrikit.features.registry.get_extractor`).
    image_model : str, optional
    targets : {"tokens", "pooled"}
        ``tokens``: the patch features of the extractor's last level (CLIP: the final layer's patch tokens, as
        MindEye2 predicts them; EfficientNet-Lite0: block 14 on a 7 x 7 grid; Gabor: the coarsest scale on its
        8 x 8 grid), recorded as ``token_layer``; ``pooled``: the extractor's pooled vector.

    Raises
    ------
    InputError
        Unknown extractor or targets.
    """
    from fmrikit.features.registry import feature_spec, get_extractor

    check_option("--targets", targets, TARGETS)
    spec = {**feature_spec(features, image_model), "targets": targets}
    if targets == "tokens":
        extractor = get_extractor(features, image_model=image_model)
        spec["token_layer"] = (extractor.layers if hasattr(extractor, "layers") else extractor.scales)[-1]
    return spec


def _extractor(spec: dict[str, Any]):
    """The extractor of a target spec (records without ``targets`` are pooled) and the feature kind it gives."""
    from fmrikit.features.registry import get_extractor

    if spec.get("targets", "pooled") == "pooled":
        return get_extractor(spec["name"], image_model=spec.get("image_model")), "pooled"
    return get_extractor(spec["name"], image_model=spec.get("image_model"), layers=[spec["token_layer"]]), "patches"


def target_shape(spec: dict[str, Any]) -> tuple[int, int] | None:
    """(P, C) of token targets, None for pooled ones."""
    extractor, kind = _extractor(spec)
    return None if kind == "pooled" else tuple(extractor.patch_shape[1:])


def image_embeddings(data: list[SubjectData], spec: dict[str, Any], ctx: Distributed, *, root=None,
                     batch_size: int = 32) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Image targets of every subject's training and test stimuli: pooled vectors or flattened tokens.

    Rank 0 computes what the feature cache lacks; the other ranks then read the cache.

    Parameters
    ----------
    spec : dict
        :func:`target_spec`.

    Returns
    -------
    dict of str to (Tensor, Tensor)
        By subject key: training targets (n_train, D) and test targets (n_test, D), float32, raw
        (not standardised); tokens are flattened, D = P * C (patch-major).
    """
    from fmrikit.features.cache import dataset_features

    extractor, kind = _extractor(spec)
    device = str(ctx.device)

    def compute() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        out = {}
        for d in data:
            ids = np.concatenate([d.train_stim, d.test_stim])
            feats = dataset_features(d.info, ids, extractor, kind, root=root, batch_size=batch_size, device=device)
            feats = torch.from_numpy(np.asarray(feats, np.float32).reshape(len(ids), -1))
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
        candidates per round, ``min(300, n_test_images)``, and how it was chosen, and the test MSE of the
        regression head; None when the dataset has fewer than 2 test images.
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
    if n_candidates < RETRIEVAL_CANDIDATES:
        log.warning("retrieval among all %d test images (fewer than %d)", n_candidates, RETRIEVAL_CANDIDATES)
    scores = retrieval(emb.float().cpu().numpy(), target.float().cpu().numpy(), n_candidates=n_candidates,
                       n_draws=RETRIEVAL_DRAWS, seed=RETRIEVAL_SEED)
    return {"image_retrieval": scores["image_retrieval"]["mean"], "brain_retrieval": scores["brain_retrieval"]["mean"],
            "image_retrieval_ci95": scores["image_retrieval"]["ci95"],
            "brain_retrieval_ci95": scores["brain_retrieval"]["ci95"], "n_candidates": n_candidates,
            "candidates_rule": f"min({RETRIEVAL_CANDIDATES}, n_test_images)", "n_draws": RETRIEVAL_DRAWS,
            "seed": RETRIEVAL_SEED, "n_test_images": len(x), "chance": 1 / n_candidates,
            "regression_mse": float(torch.nn.functional.mse_loss(regression.float(), target.float()))}
