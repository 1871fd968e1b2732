"""MindEye2-style fMRI decoder: subject input layers, a shared residual MLP, two heads.

Each subject's voxels enter through its own linear layer (the part TROI learns for a new
subject); everything after it is shared across subjects: a residual MLP backbone, an MLP
projector into the retrieval space (contrastive losses) and a linear head regressing the image
embedding (MSE; the diffusion prior's target). Both heads work in the standardised target space:
``(embedding - target_mean) / target_std``, statistics of the pretraining images kept as buffers.

Targets are either one pooled vector per image or, as in MindEye2 and TROI, the image's tokens
(``token_shape = (P, C)``: P patches of C channels, flattened to D = P * C). With tokens the heads
follow MindEye2's ``BrainNetwork``: a linear map from the backbone to all P x C values (the
regression), and the projector applied to each predicted token (C -> proj_hidden -> C) for the
retrieval space; both are compared with the targets flattened, as MindEye2 does.
"""

from __future__ import annotations

import torch
from torch import nn

from fmrikit.engine.serialization import PretrainedModule
from fmrikit.errors import DataValueError


class SubjectInput(nn.Module):
    """Linear map from one subject's voxels to the shared width.

    Parameters
    ----------
    n_voxels : int
    hidden : int

    Attributes
    ----------
    ijk : Tensor of int32, shape (n_voxels, 3)
        Source-grid indices of the input voxels, in column order (saved with the weights).
    """

    def __init__(self, n_voxels: int, hidden: int):
        super().__init__()
        self.linear = nn.Linear(n_voxels, hidden)
        self.register_buffer("ijk", torch.zeros(n_voxels, 3, dtype=torch.int32))

    @property
    def n_voxels(self) -> int:
        return self.linear.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class ResidualBlock(nn.Module):
    """``x + Dropout(GELU(LayerNorm(Linear(x))))`` (MindEye2's backbone block)."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MindEyeDecoder(PretrainedModule):
    """Subject-specific input layers into a shared backbone with retrieval and regression heads.

    Parameters
    ----------
    subjects : dict of str to int
        Number of input voxels per subject key (:func:`subject_key`).
    embed_dim : int
        Dimension D of the image embedding the heads predict.
    hidden : int
        Width of the shared backbone.
    n_blocks : int
        Residual blocks in the backbone.
    proj_hidden : int
        Width of the projector's hidden layer.
    dropout : float
        Dropout inside the backbone blocks.
    token_shape : (int, int), optional
        (P, C) of token targets, ``P * C == embed_dim``; None for a pooled target.
    """

    def __init__(self, subjects: dict[str, int], embed_dim: int, hidden: int = 512, n_blocks: int = 2,
                 proj_hidden: int = 512, dropout: float = 0.15, token_shape: tuple[int, int] | None = None):
        if token_shape is not None and token_shape[0] * token_shape[1] != embed_dim:
            raise DataValueError("token shape does not match the embedding width", expected=f"P x C = {embed_dim}",
                                 found=f"token_shape {tuple(token_shape)}")
        super().__init__(subjects=subjects, embed_dim=embed_dim, hidden=hidden, n_blocks=n_blocks,
                         proj_hidden=proj_hidden, dropout=dropout,
                         **({} if token_shape is None else {"token_shape": list(token_shape)}))
        self.inputs = nn.ModuleDict({k: SubjectInput(n, hidden) for k, n in subjects.items()})
        self.input_norm = nn.Sequential(nn.LayerNorm(hidden), nn.GELU(), nn.Dropout(dropout))
        self.backbone = nn.Sequential(*[ResidualBlock(hidden, dropout) for _ in range(n_blocks)])
        self.token_shape = None if token_shape is None else tuple(int(v) for v in token_shape)
        width = hidden if token_shape is None else self.token_shape[1]
        out = embed_dim if token_shape is None else self.token_shape[1]
        self.projector = nn.Sequential(nn.LayerNorm(width), nn.GELU(), nn.Linear(width, proj_hidden),
                                       nn.LayerNorm(proj_hidden), nn.GELU(), nn.Linear(proj_hidden, out))
        self.regressor = nn.Linear(hidden, embed_dim)
        self.register_buffer("target_mean", torch.zeros(embed_dim))
        self.register_buffer("target_std", torch.ones(embed_dim))

    def add_subject(self, key: str, n_voxels: int) -> SubjectInput:
        """Add (or replace) a freshly initialised input layer for a subject."""
        layer = SubjectInput(n_voxels, self.config["hidden"]).to(self.target_mean.device)
        self.inputs[key] = layer
        self.config["subjects"][key] = n_voxels
        return layer

    def standardize(self, embedding: torch.Tensor) -> torch.Tensor:
        """Image embeddings, shape (N, D), into the heads' standardised target space."""
        return (embedding - self.target_mean) / self.target_std

    def forward(self, x: torch.Tensor, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode one subject's betas.

        Parameters
        ----------
        x : Tensor, shape (B, n_voxels)
            Z-scored betas over the subject's input voxels.
        key : str
            Subject key.

        Returns
        -------
        retrieval : Tensor, shape (B, D)
            Projector output (compare with standardised image embeddings by cosine similarity);
            with tokens, the projected tokens flattened.
        regression : Tensor, shape (B, D)
            Predicted standardised image embedding (with tokens, the P x C tokens flattened).
        """
        h = self.backbone(self.input_norm(self.inputs[key](x)))
        regression = self.regressor(h)
        if self.token_shape is None:
            return self.projector(h), regression
        tokens = regression.unflatten(-1, self.token_shape)
        return self.projector(tokens).flatten(1), regression
