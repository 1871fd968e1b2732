"""ImageNet EfficientNet-Lite0 features (installed with fmrikit): the pooled head and five spatial levels."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fmrikit.errors import InputError
from fmrikit.features.base import FeatureExtractor, weights_record
from fmrikit.features.networks import FeatureNetwork


class EffnetLite0Extractor(FeatureExtractor):
    """ImageNet EfficientNet-Lite0 (224 px bilinear, ImageNet mean/std).

    Parameters
    ----------
    layers : sequence of str or int, optional
        Spatial layers of ``patches`` (an int ``i`` means ``"block{i}"``), default :attr:`DEFAULT_LAYERS`
        (56, 28, 14, 14 and 7 px maps at 224 px input).
    grid : int
        Each layer is average-pooled to ``grid x grid`` patches.

    Attributes
    ----------
    level_channels : tuple of int
        True channel count of each level; ``patches`` zero-pads every level to the largest.

    Notes
    -----
    ``pooled``: the 1280-d global average of the head, as ``effnet_lite0("pooled")``.
    ``patches``: (N, L, grid**2, max(level_channels)); default (N, 5, 49, 192). One forward pass per
    batch gives every level, and the pooled head too (:meth:`pooled_and_patches`).
    """

    name = "effnet-lite0"
    one_pass = True
    DEFAULT_LAYERS = ("block2", "block4", "block7", "block10", "block14")

    def __init__(self, layers: Sequence[str | int] | None = None, grid: int = 7):
        from fmrikit.features.networks import effnet_lite0_channels

        self.layers = tuple(f"block{v}" if isinstance(v, int) else str(v) for v in (layers or self.DEFAULT_LAYERS))
        self.level_channels = tuple(effnet_lite0_channels(layer) for layer in self.layers)
        if grid < 1:
            raise InputError("grid must be positive", expected=">= 1", found=str(grid))
        self.grid = int(grid)
        self.patch_shape = (len(self.layers), self.grid ** 2, max(self.level_channels))

    def config(self) -> dict:
        from fmrikit.features.networks import effnet_lite0_weights

        if "_weights" not in self.__dict__:
            self._weights = weights_record([effnet_lite0_weights()])
        return {"name": self.name, "layers": list(self.layers), "level_channels": list(self.level_channels),
                "grid": self.grid, "resize": 224, "interpolation": "bilinear", "weights": self._weights}

    def pooled_and_patches(self, images, batch_size: int = 32, device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """Both kinds from one forward pass per batch (see :meth:`FeatureExtractor.pooled_and_patches`)."""
        both = self._cached_network("both").extract(images, batch_size=batch_size, device=device)
        n_patch = int(np.prod(self.patch_shape))
        return np.ascontiguousarray(both[:, n_patch:]), both[:, :n_patch].reshape(len(both), *self.patch_shape)

    def _network(self, kind: str) -> FeatureNetwork:
        from fmrikit.features.networks import effnet_lite0, effnet_lite0_levels

        if kind == "pooled":
            return effnet_lite0("pooled")
        return effnet_lite0_levels(self.layers, self.grid, with_pooled=kind == "both")
