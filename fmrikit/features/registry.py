"""Image feature extractors by name, each giving pooled vectors and spatial patch features.

Every extractor maps RGB images, shape (N, H, W, 3) uint8 in [0, 255] or float in [0, 1], to

- ``pooled``: one vector per image, shape (N, D) float32;
- ``patches``: features per level and image region, shape (N, L, P, C) float32 (L levels, P patches of a
  row-major grid, C channels).

Defaults (see each class): ``gabor`` pooled D = 1536, patches (4, 64, 24); ``effnet-lite0`` pooled
D = 1280, patches (5, 49, 192); ``clip`` and ``dinov2`` depend on the model (ViT-L/14 at 224 px:
P = 256, C = 1024).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from fmrikit.errors import InputError

if TYPE_CHECKING:
    from fmrikit.features.networks import FeatureNetwork

#: Extractor names understood by :func:`get_extractor`.
EXTRACTORS = ("gabor", "effnet-lite0", "clip", "dinov2")


class FeatureExtractor(ABC):
    """Base class of the extractors: two :class:`~fmrikit.features.networks.FeatureNetwork` s per extractor.

    Subclasses set :attr:`name` and :attr:`patch_shape` and implement :meth:`config` and
    :meth:`_network`; networks are built on first use and kept.
    """

    #: Registry name, e.g. ``"gabor"``.
    name: str = ""
    #: (L, P, C) of :meth:`patches`.
    patch_shape: tuple[int, int, int] = (0, 0, 0)

    @abstractmethod
    def config(self) -> dict:
        """Everything that changes the features, JSON-serialisable (the cache key)."""

    @abstractmethod
    def _network(self, kind: str) -> FeatureNetwork:
        """The network of ``kind`` (``"pooled"`` or ``"patches"``)."""

    def _cached_network(self, kind: str) -> FeatureNetwork:
        networks = self.__dict__.setdefault("_networks", {})
        if kind not in networks:
            networks[kind] = self._network(kind)
        return networks[kind]

    def pooled(self, images, batch_size: int = 32, device: str = "auto") -> np.ndarray:
        """One feature vector per image.

        Parameters
        ----------
        images : array_like, shape (N, H, W, 3)
            uint8 RGB in [0, 255] or float RGB in [0, 1].
        batch_size : int
            Images per forward pass.
        device : str
            ``"auto"``, ``"cpu"``, ``"cuda"``, ...; CUDA runs under bfloat16 autocast.

        Returns
        -------
        ndarray, shape (N, D), float32
        """
        return self._cached_network("pooled").extract(images, batch_size=batch_size, device=device)

    def patches(self, images, batch_size: int = 32, device: str = "auto") -> np.ndarray:
        """Features per level and image patch.

        Parameters
        ----------
        images, batch_size, device
            As in :meth:`pooled`.

        Returns
        -------
        ndarray, shape (N, L, P, C), float32
            :attr:`patch_shape` per image.
        """
        feats = self._cached_network("patches").extract(images, batch_size=batch_size, device=device)
        return feats.reshape(len(feats), *self.patch_shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.config())})"


def get_extractor(name: str, *, image_model: str | None = None,
                  layers: Sequence[int | str] | None = None) -> FeatureExtractor:
    """An image feature extractor by name.

    Parameters
    ----------
    name : {"gabor", "effnet-lite0", "clip", "dinov2"}
        ``gabor``: Gabor energy bank (no weights, :class:`~fmrikit.features.gabor.GaborExtractor`);
        ``effnet-lite0``: ImageNet EfficientNet-Lite0 (:class:`EffnetLite0Extractor`);
        ``clip``, ``dinov2``: a local transformers model (:mod:`fmrikit.features.hf_models`).
    image_model : str, optional
        ``clip`` and ``dinov2`` only, and required there: a ``save_pretrained`` folder or a Hugging
        Face id already in the local cache (never downloaded).
    layers : sequence of int or str, optional
        Levels of :meth:`FeatureExtractor.patches`: Gabor scale indices (0 finest), EfficientNet-Lite0
        layer names (``"block2"``, ``"head"``; an int ``i`` means ``"block{i}"``), or transformer layer
        numbers (0 = embeddings, k = output of block k). Default per extractor.

    Returns
    -------
    FeatureExtractor

    Raises
    ------
    InputError
        Unknown name or layer, ``image_model`` missing for clip/dinov2 or given for another extractor.
    MissingInputError
        The weights are not installed or not found locally.
    """
    if name not in EXTRACTORS:
        raise InputError("unknown feature extractor", expected=", ".join(EXTRACTORS), found=repr(name))
    if name in ("clip", "dinov2"):
        if not image_model:
            raise InputError(f"the {name} extractor needs an image model",
                             expected="image_model: a save_pretrained folder or a cached Hugging Face id")
        from fmrikit.features.hf_models import ClipExtractor, Dinov2Extractor

        cls = ClipExtractor if name == "clip" else Dinov2Extractor
        return cls(image_model, layers=layers)
    if image_model:
        raise InputError(f"the {name} extractor takes no image model", expected="image_model only with clip or dinov2",
                         found=str(image_model))
    if name == "gabor":
        from fmrikit.features.gabor import GaborExtractor

        return GaborExtractor(scales=None if layers is None else tuple(_as_int(v) for v in layers))
    return EffnetLite0Extractor(layers=layers)


def weights_record(files: Sequence[Path]) -> list[dict]:
    """Name, size (bytes) and full SHA-256 of each weights file, for :meth:`FeatureExtractor.config`."""
    record = []
    for path in sorted(files):
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        record.append({"file": path.name, "bytes": path.stat().st_size, "sha256": digest})
    return record


def _as_int(value: int | str) -> int:
    """A layer number given as int or digit string."""
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise InputError("layer must be a number", expected="an integer", found=repr(value)) from exc


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
    batch gives every level.
    """

    name = "effnet-lite0"
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

    def _network(self, kind: str) -> FeatureNetwork:
        from fmrikit.features.networks import effnet_lite0, effnet_lite0_levels

        return effnet_lite0("pooled") if kind == "pooled" else effnet_lite0_levels(self.layers, self.grid)
