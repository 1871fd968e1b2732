"""The feature-extractor interface: pooled vectors and multi-level patch features of RGB images.

Every extractor maps RGB images, shape (N, H, W, 3) uint8 in [0, 255] or float in [0, 1], to

- ``pooled``: one vector per image, shape (N, D) float32;
- ``patches``: features per level and image region, shape (N, L, P, C) float32 (L levels, P patches of a
  row-major grid, C channels).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from fmrikit.errors import InputError
from fmrikit.io.provenance import sha256_file

if TYPE_CHECKING:
    from fmrikit.features.networks import FeatureNetwork


class FeatureExtractor(ABC):
    """Base class of the extractors: two :class:`~fmrikit.features.networks.FeatureNetwork` s per extractor.

    Subclasses set :attr:`name` and :attr:`patch_shape` and implement :meth:`config` and
    :meth:`_network`; networks are built on first use and kept.
    """

    #: Registry name, e.g. ``"gabor"``.
    name: str = ""
    #: (L, P, C) of :meth:`patches`.
    patch_shape: tuple[int, int, int] = (0, 0, 0)
    #: :meth:`pooled_and_patches` costs one pass, not two (the feature cache then stores both kinds at once).
    one_pass: bool = False

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

    def pooled_and_patches(self, images, batch_size: int = 32, device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """:meth:`pooled` and :meth:`patches` of the same images; one network pass where :attr:`one_pass`.

        Returns
        -------
        pooled : ndarray, shape (N, D), float32
        patches : ndarray, shape (N, L, P, C), float32
        """
        return (self.pooled(images, batch_size=batch_size, device=device),
                self.patches(images, batch_size=batch_size, device=device))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.config())})"


def weights_record(files: Sequence[Path]) -> list[dict]:
    """Name, size (bytes) and full SHA-256 of each weights file, for :meth:`FeatureExtractor.config`."""
    record = []
    for path in sorted(files):
        record.append({"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)})
    return record


def layer_number(value: int | str) -> int:
    """A layer number given as int or digit string."""
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise InputError("layer must be a number", expected="an integer", found=repr(value)) from exc
