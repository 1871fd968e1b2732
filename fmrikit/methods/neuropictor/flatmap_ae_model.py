"""NeuroPictor's fMRI calibrated encoding: a transformer autoencoder on cortical flatmaps.

The encoder is a ViT over one-channel flatmaps (NeuroPictor Sec. 3.1 and Supplementary 1): a 256 x
256 map is cut into 16 x 16 patches, each embedded to 1024 values; a [CLS] token is prepended, a
fixed 2D sin-cos positional embedding added (MAE's; the [CLS] position is zero), and 24 pre-norm
transformer blocks of 16 heads and a final LayerNorm give the fMRI representation
``S^r`` (257, 1024) that NeuroPictor's later stages condition on.

The decoder sees only the [CLS] token: it is projected by a fully connected layer to the decoder
width and every one of the N patch positions is the same learnable *guide token* (plus the
decoder's fixed positional embedding). "Masking all the patches" forces the encoder to carry all
information about the map in [CLS]. Symmetric transformer blocks, a LayerNorm and a linear layer
to ``patch * patch`` pixels, unpatchified, give the reconstructed map.

The paper trains with plain MSE over the whole map; :meth:`FlatmapAutoencoder.loss` averages the
squared error over the pixels inside the cortex mask only (pixels outside are zero by
construction and would only dilute the loss). Weights are initialised MAE-style: Xavier-uniform
linear layers and patch embedding, zero biases, [CLS] and guide tokens N(0, 0.02).
"""

from __future__ import annotations

import os
from pathlib import Path

from typing import Any

import numpy as np
import torch
from torch import nn

from fmrikit.errors import DataValueError
from fmrikit.engine.serialization import WEIGHTS_NAME, PretrainedModule, read_config, read_weights
from fmrikit.methods.neuropictor.settings import FLATMAP_AE_PRESETS, FlatmapAESize, check_architecture

__all__ = ["FLATMAP_AE_PRESETS", "FlatmapAESize", "FlatmapAutoencoder", "FlatmapEncoder", "check_architecture",
           "encoder_state", "sincos_positions"]


_ENCODER_KEYS = ("image_size", "patch_size", "width", "depth", "heads", "mlp_ratio")


def sincos_positions(width: int, grid: int) -> torch.Tensor:
    """MAE's fixed 2D sin-cos positional embedding with a leading zero row for [CLS].

    Returns
    -------
    Tensor of float32, shape (1 + grid**2, width)
        Half the channels encode the row, half the column (each half: sin then cos of
        ``position / 10000**(2k / (width / 2))``).
    """
    def one_axis(dim: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    rows, cols = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    emb = np.concatenate([one_axis(width // 2, rows), one_axis(width // 2, cols)], axis=1)
    emb = np.concatenate([np.zeros((1, width)), emb], axis=0)
    return torch.tensor(emb, dtype=torch.float32)  # on the default device (e.g. inside `with torch.device(...)`)


def _blocks(width: int, depth: int, heads: int, mlp_ratio: float) -> nn.ModuleList:
    return nn.ModuleList([nn.TransformerEncoderLayer(width, heads, int(width * mlp_ratio), dropout=0.0,
                                                     activation="gelu", batch_first=True, norm_first=True)
                          for _ in range(depth)])


def _init_weights(module: nn.Module) -> None:
    """MAE initialisation: Xavier-uniform linear weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class FlatmapEncoder(nn.Module):
    """ViT encoder of one-channel flatmaps (NeuroPictor's fMRI encoder).

    Parameters
    ----------
    image_size : int
        Side S of the (S, S) flatmaps, pixels.
    patch_size : int
        Side of the square patches (S must be a multiple).
    width : int
        Token width (a multiple of 4 and of ``heads``).
    depth : int
        Pre-norm transformer blocks.
    heads : int
        Attention heads.
    mlp_ratio : float
        Hidden width of the blocks' MLPs, relative to ``width``.

    Notes
    -----
    The positional embedding is fixed (2D sin-cos, :func:`sincos_positions`) and kept as a
    non-persistent buffer: it is rebuilt from the configuration, not saved with the weights.
    """

    def __init__(self, image_size: int = 256, patch_size: int = 16, width: int = 1024, depth: int = 24,
                 heads: int = 16, mlp_ratio: float = 4.0):
        super().__init__()
        check_architecture(image_size, patch_size, width, depth, heads)
        self.image_size, self.patch_size = int(image_size), int(patch_size)
        self.grid = self.image_size // self.patch_size
        self.patch_embed = nn.Conv2d(1, width, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.register_buffer("pos_embed", sincos_positions(width, self.grid)[None], persistent=False)
        self.blocks = _blocks(width, depth, heads, mlp_ratio)
        self.norm = nn.LayerNorm(width)
        _init_weights(self)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(width, -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.cls_token, std=0.02)

    @property
    def width(self) -> int:
        """Token width."""
        return self.patch_embed.out_channels

    @property
    def n_tokens(self) -> int:
        """1 + (S / patch)**2 tokens: [CLS] then the patches in row-major order."""
        return 1 + self.grid ** 2

    def check_input(self, flatmaps: torch.Tensor) -> torch.Tensor:
        """Flatmaps as (B, 1, S, S) floats.

        Raises
        ------
        DataValueError
            Not (B, S, S) or (B, 1, S, S) with S the configured ``image_size``.
        """
        s = self.image_size
        shape = tuple(flatmaps.shape)
        ok = (flatmaps.ndim == 3 or (flatmaps.ndim == 4 and shape[1] == 1)) and shape[-2:] == (s, s)
        if not ok:
            raise DataValueError("flatmaps of the wrong shape", expected=f"(B, {s}, {s}) or (B, 1, {s}, {s})",
                                 found=str(shape))
        if not torch.is_floating_point(flatmaps):
            raise DataValueError("flatmaps must be floating point", expected="float", found=str(flatmaps.dtype))
        return flatmaps if flatmaps.ndim == 4 else flatmaps[:, None]

    def forward(self, flatmaps: torch.Tensor) -> torch.Tensor:
        """The fMRI representation ``S^r`` of flatmaps.

        Parameters
        ----------
        flatmaps : Tensor, shape (B, S, S) or (B, 1, S, S)

        Returns
        -------
        Tensor, shape (B, 1 + (S / patch)**2, width)
            [CLS] token first, then the patch tokens (row-major), after the final LayerNorm.
        """
        x = self.check_input(flatmaps)
        x = self.patch_embed(x.to(self.patch_embed.weight.dtype)).flatten(2).transpose(1, 2)
        x = x + self.pos_embed[:, 1:]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class FlatmapAutoencoder(PretrainedModule):
    """NeuroPictor's calibrated-encoding autoencoder: flatmap -> [CLS] -> flatmap.

    Parameters
    ----------
    image_size, patch_size, width, depth, heads, mlp_ratio
        The encoder (:class:`FlatmapEncoder`).
    decoder_width, decoder_depth, decoder_heads : int, optional
        The decoder's blocks (default: the encoder's, the paper's symmetric decoder).
    """

    def __init__(self, image_size: int = 256, patch_size: int = 16, width: int = 1024, depth: int = 24,
                 heads: int = 16, decoder_width: int | None = None, decoder_depth: int | None = None,
                 decoder_heads: int | None = None, mlp_ratio: float = 4.0):
        dw = width if decoder_width is None else decoder_width
        dd = depth if decoder_depth is None else decoder_depth
        dh = heads if decoder_heads is None else decoder_heads
        super().__init__(image_size=image_size, patch_size=patch_size, width=width, depth=depth, heads=heads,
                         decoder_width=dw, decoder_depth=dd, decoder_heads=dh, mlp_ratio=mlp_ratio)
        check_architecture(image_size, patch_size, dw, dd, dh, label="decoder")
        self.encoder = FlatmapEncoder(image_size, patch_size, width, depth, heads, mlp_ratio)
        grid = self.encoder.grid
        self.decoder_embed = nn.Linear(width, dw)
        self.guide_token = nn.Parameter(torch.zeros(1, 1, dw))
        self.register_buffer("decoder_pos_embed", sincos_positions(dw, grid)[None], persistent=False)
        self.decoder_blocks = _blocks(dw, dd, dh, mlp_ratio)
        self.decoder_norm = nn.LayerNorm(dw)
        self.decoder_pred = nn.Linear(dw, patch_size * patch_size)
        _init_weights(nn.ModuleList([self.decoder_embed, self.decoder_blocks, self.decoder_norm,
                                     self.decoder_pred]))
        nn.init.normal_(self.guide_token, std=0.02)

    @property
    def image_size(self) -> int:
        return self.encoder.image_size

    def encode(self, flatmaps: torch.Tensor) -> torch.Tensor:
        """``S^r``, shape (B, 1 + N, width) (:meth:`FlatmapEncoder.forward`)."""
        return self.encoder(flatmaps)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Flatmaps from the [CLS] token of ``S^r`` (the patch tokens are not read).

        Parameters
        ----------
        tokens : Tensor, shape (B, 1 + N, width) or (B, width)
            The encoder's output, or its [CLS] tokens alone.

        Returns
        -------
        Tensor, shape (B, S, S)
        """
        cls = tokens[:, 0] if tokens.ndim == 3 else tokens
        first = self.decoder_embed(cls)[:, None]
        n = self.encoder.grid ** 2
        guide = self.guide_token.expand(cls.shape[0], n, -1)
        x = torch.cat([first, guide], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        x = self.decoder_pred(self.decoder_norm(x))[:, 1:]
        return self.unpatchify(x)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, N, patch * patch) in row-major patch order -> (B, S, S)."""
        g, p = self.encoder.grid, self.encoder.patch_size
        b = patches.shape[0]
        return patches.reshape(b, g, g, p, p).permute(0, 1, 3, 2, 4).reshape(b, g * p, g * p)

    def forward(self, flatmaps: torch.Tensor) -> torch.Tensor:
        """Reconstructed flatmaps, shape (B, S, S), from flatmaps (B, S, S) or (B, 1, S, S)."""
        return self.decode(self.encode(flatmaps))

    def loss(self, flatmaps: torch.Tensor, mask: torch.Tensor,
             net: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Masked reconstruction MSE.

        Parameters
        ----------
        flatmaps : Tensor, shape (B, S, S) or (B, 1, S, S)
        mask : Tensor of bool, shape (S, S) or (B, S, S)
            Cortex pixels (one mask for all, or each row's own).
        net : nn.Module, optional
            What runs the forward pass: this model (default) or its DistributedDataParallel
            wrapper, so that DDP averages the gradients.

        Returns
        -------
        loss : Tensor
            Mean squared error over every masked pixel of the batch (float32).
        parts : dict
            ``mse_full_map``: the paper's plain MSE over all pixels, for the log.
        """
        x = self.encoder.check_input(flatmaps)[:, 0].float()
        m = check_mask(mask, x.shape[0], self.image_size).to(x.device)
        recon = (net if net is not None else self)(x).float()
        sq = (recon - x) ** 2
        m = m.expand_as(sq)
        loss = sq[m].mean() if bool(m.any()) else sq.sum() * 0.0
        return loss, {"mse_full_map": float(sq.detach().mean())}


def check_mask(mask: torch.Tensor | np.ndarray, batch: int, size: int) -> torch.Tensor:
    """A cortex mask as a bool tensor of shape (1 or B, S, S).

    Raises
    ------
    DataValueError
        Not (S, S) or (B, S, S).
    """
    mask = torch.as_tensor(mask)
    shape = tuple(mask.shape)
    if shape == (size, size):
        mask = mask[None]
    elif shape != (batch, size, size):
        raise DataValueError("cortex mask of the wrong shape",
                             expected=f"({size}, {size}) or ({batch}, {size}, {size})", found=str(shape))
    return mask.bool()


def encoder_state(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The encoder of a saved :class:`FlatmapAutoencoder`, without building the decoder.

    Returns
    -------
    config : dict
        :class:`FlatmapEncoder` init arguments (``image_size``, ``patch_size``, ``width``, ``depth``,
        ``heads``, ``mlp_ratio``).
    state : dict of str to Tensor
        Its weights, keys without the ``encoder.`` prefix: ``FlatmapEncoder(**config).load_state_dict(state)``.

    Raises
    ------
    MissingInputError, CorruptFileError
        No or unreadable model folder.
    DataValueError
        The folder holds another kind of model.
    """
    record = read_config(folder)
    if record.get("class") != FlatmapAutoencoder.__name__:
        raise DataValueError("model folder holds another kind of model", path=Path(folder) / "config.json",
                             expected=FlatmapAutoencoder.__name__, found=str(record.get("class")))
    config = {k: record["config"][k] for k in _ENCODER_KEYS}
    path = Path(folder) / WEIGHTS_NAME
    weights = read_weights(path)
    state = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
    if not state:
        raise DataValueError("no encoder weights in the model file", path=path, expected="encoder.* tensors")
    return config, state
