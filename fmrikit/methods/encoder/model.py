"""Universal Brain Encoder: voxel embeddings cross-attending to multi-level image features.

Every voxel of every subject owns a learned embedding (E values); everything else is shared.
For one image and one voxel:

1. each feature level l is projected to C channels: ``V_l`` (P, C);
2. spatial attention per level: query = Linear(embedding), keys = Linear_l(V_l) + a learned
   per-patch positional embedding (P, E); the softmax over patches pools ``V_l`` to (C,);
3. a separate 2-layer MLP per level;
4. functional attention: softmax over the L*C pooled features of ``F @ embedding`` with a
   learned functional embedding ``F`` (L*C, E) weights their sum into one scalar.

Only the voxels asked for are computed, so memory does not grow with a subject's voxel count; the voxel side
(query, key folding, functional weights) is computed once per distinct voxel of a call.
The key projection is folded into the query (``q . (W v + b + pos) = (W^T q) . v + q . (b + pos)``),
so the patch scores cost C rather than E multiply-adds each.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fmrikit.engine.serialization import PretrainedModule


class VoxelIndex(nn.Module):
    """Where a subject's voxels are: a buffer ``ijk`` (n_voxels, 3) of int32 indices into its source grid."""

    def __init__(self, n_voxels: int):
        super().__init__()
        self.register_buffer("ijk", torch.zeros(n_voxels, 3, dtype=torch.int32))


class UniversalEncoder(PretrainedModule):
    """Image features to voxel responses for several subjects.

    Parameters
    ----------
    subjects : dict of str to int
        Number of voxels per subject key (``"sub-01"``...).
    n_levels : int
        L, feature levels.
    n_patches : int
        P, patches per level.
    in_channels : int
        Channels of the input features (levels zero-padded to a common count).
    channels : int
        C, channels each level is projected to.
    embed_dim : int
        E, size of the voxel embeddings.
    """

    def __init__(self, subjects: dict[str, int], n_levels: int, n_patches: int, in_channels: int,
                 channels: int = 64, embed_dim: int = 256):
        super().__init__(subjects=subjects, n_levels=n_levels, n_patches=n_patches, in_channels=in_channels,
                         channels=channels, embed_dim=embed_dim)
        self.voxel_embeddings = nn.ParameterDict(
            {k: nn.Parameter(torch.randn(n, embed_dim) / math.sqrt(embed_dim)) for k, n in subjects.items()})
        self.voxel_index = nn.ModuleDict({k: VoxelIndex(n) for k, n in subjects.items()})
        self.level_proj = nn.ModuleList([nn.Linear(in_channels, channels) for _ in range(n_levels)])
        self.key_proj = nn.ModuleList([nn.Linear(channels, embed_dim) for _ in range(n_levels)])
        self.query = nn.Linear(embed_dim, embed_dim)
        self.positions = nn.Parameter(torch.randn(n_patches, embed_dim) * 0.02)
        self.mlps = nn.ModuleList([nn.Sequential(nn.Linear(channels, channels), nn.GELU(),
                                                 nn.Linear(channels, channels)) for _ in range(n_levels)])
        self.functional = nn.Parameter(torch.randn(n_levels * channels, embed_dim) / math.sqrt(embed_dim))

    def add_subject(self, key: str, n_voxels: int) -> nn.Parameter:
        """Add (or replace) randomly initialised embeddings for a subject."""
        embed_dim = self.config["embed_dim"]
        param = nn.Parameter(torch.randn(n_voxels, embed_dim, device=self.functional.device) / math.sqrt(embed_dim))
        self.voxel_embeddings[key] = param
        self.voxel_index[key] = VoxelIndex(n_voxels).to(param.device)
        self.config["subjects"] = {**self.config["subjects"], key: n_voxels}
        return param

    def forward(self, features: torch.Tensor, key: str, voxels: torch.Tensor) -> torch.Tensor:
        """Predicted responses of some voxels to some images.

        Parameters
        ----------
        features : Tensor, shape (B, L, P, in_channels)
            Image features.
        key : str
            Subject key.
        voxels : Tensor of int64, shape (n,) or (B, n)
            Voxel indices of the subject: the same for every image, or one set per image.

        Returns
        -------
        Tensor, shape (B, n)
        """
        # the voxel side once per distinct voxel, then gathered per (image, voxel) pair: a step that samples
        # voxels per image computes each embedding's query and functional weights once, not once per image
        unique, inverse = torch.unique(voxels, return_inverse=True)
        return self.pairs(features, self.voxel_embeddings[key][unique], inverse)

    def pairs(self, features: torch.Tensor, embeddings: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Predicted responses of (image, voxel) pairs, given the embeddings of the distinct voxels.

        Parameters
        ----------
        features : Tensor, shape (B, L, P, in_channels)
        embeddings : Tensor, shape (U, E)
            Embeddings of the distinct voxels asked for.
        index : Tensor of int64, shape (n,) or (B, n)
            Rows of ``embeddings``: the same voxels for every image, or one set per image.

        Returns
        -------
        Tensor, shape (B, n)
        """
        query = self.query(embeddings)
        scale = 1.0 / math.sqrt(query.shape[-1])
        functional = torch.softmax(embeddings @ self.functional.T * scale, dim=-1)  # (U, L*C)
        pooled = []
        for level, (proj, key_proj, mlp) in enumerate(zip(self.level_proj, self.key_proj, self.mlps)):
            values = proj(features[:, level])  # (B, P, C)
            q_values = (query @ key_proj.weight)[index]  # (n, C) or (B, n, C)
            q_fixed = (query @ (key_proj.bias + self.positions).T)[index]  # (n, P) or (B, n, P)
            weights = torch.softmax((q_values @ values.transpose(1, 2) + q_fixed) * scale, dim=-1)  # (B, n, P)
            pooled.append(mlp(weights @ values))  # (B, n, C)
        pooled = torch.cat(pooled, dim=-1)  # (B, n, L*C)
        return (functional[index] * pooled).sum(-1)


def encoder_loss(pred: torch.Tensor, target: torch.Tensor, cosine_weight: float = 0.1) -> torch.Tensor:
    """``(1 - w) * MSE + w * (1 - cos)``, the cosine taken over each image's voxel pattern.

    Parameters
    ----------
    pred, target : Tensor, shape (B, n)
    cosine_weight : float
        w, weight of the cosine term (0.1 in the Universal Brain Encoder paper).

    Returns
    -------
    Tensor, scalar
    """
    mse = torch.nn.functional.mse_loss(pred, target)
    cosine = torch.nn.functional.cosine_similarity(pred, target, dim=-1, eps=1e-8).mean()
    return (1 - cosine_weight) * mse + cosine_weight * (1 - cosine)
