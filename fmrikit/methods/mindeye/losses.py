"""Decoder losses: MixCo mix-up, its contrastive loss, and soft CLIP (MindEye2 / TROI eqs. 1-4)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def mixco(x: torch.Tensor, rng: np.random.Generator, beta: float = 0.15) -> tuple[torch.Tensor, torch.Tensor,
                                                                                torch.Tensor]:
    """Mix each sample with another sample of the same batch (MixCo, TROI eq. 1).

    Parameters
    ----------
    x : Tensor, shape (B, V)
        Betas of one subject.
    rng : numpy.random.Generator
        Source of the permutation and the weights.
    beta : float
        Both parameters of the Beta distribution of the mixing weights.

    Returns
    -------
    mixed : Tensor, shape (B, V)
        ``w_i x_i + (1 - w_i) x_perm(i)``.
    weights : Tensor, shape (B,)
        w_i in [0, 1].
    perm : Tensor of int64, shape (B,)
    """
    b = x.shape[0]
    perm = torch.from_numpy(rng.permutation(b)).to(x.device)
    weights = torch.from_numpy(rng.beta(beta, beta, size=b)).to(x.device, x.dtype)
    mixed = weights[:, None] * x + (1 - weights[:, None]) * x[perm]
    return mixed, weights, perm


def mixco_nce(pred: torch.Tensor, target: torch.Tensor, temperature: float, weights: torch.Tensor | None = None,
              perm: torch.Tensor | None = None) -> torch.Tensor:
    """Bidirectional InfoNCE with soft labels from the mix-up (TROI eq. 2).

    Parameters
    ----------
    pred, target : Tensor, shape (B, D)
        Brain and image embeddings; both are L2-normalised here.
    temperature : float
    weights, perm : Tensor, shape (B,), optional
        From :func:`mixco`; without them the labels are the identity (plain CLIP loss).

    Returns
    -------
    Tensor, scalar
    """
    pred, target = F.normalize(pred, dim=-1), F.normalize(target, dim=-1)
    logits = pred @ target.T / temperature
    b = logits.shape[0]
    labels = torch.eye(b, device=logits.device, dtype=logits.dtype)
    if weights is not None:
        labels = labels * weights[:, None].to(logits.dtype)
        labels[torch.arange(b, device=logits.device), perm] += 1 - weights.to(logits.dtype)
    forward = -(logits.log_softmax(-1) * labels).sum(-1).mean()
    backward = -(logits.T.log_softmax(-1) * labels.T).sum(-1).mean()
    return (forward + backward) / 2


def soft_clip_loss(pred: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft CLIP loss: brain-to-image logits matched to the image-to-image similarity distribution.

    Parameters
    ----------
    pred, target : Tensor, shape (B, D)
        L2-normalised here.
    temperature : float

    Returns
    -------
    Tensor, scalar
    """
    pred, target = F.normalize(pred, dim=-1), F.normalize(target, dim=-1)
    teacher = (target @ target.T / temperature).softmax(-1)
    logits = pred @ target.T / temperature
    forward = -(logits.log_softmax(-1) * teacher).sum(-1).mean()
    backward = -(logits.T.log_softmax(-1) * teacher.T).sum(-1).mean()
    return (forward + backward) / 2
