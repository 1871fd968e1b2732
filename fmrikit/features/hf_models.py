"""CLIP and DINOv2 image encoders from local transformers checkpoints (never downloaded).

Images are resized to the model's input side (bicubic, antialiased, like the models' image processors;
non-square images are squashed, not cropped) and normalised with the model's mean/std. ``patches`` are
raw hidden states (before any final layer norm) of the chosen layers, patch tokens only (class and
register tokens dropped), in row-major patch order.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from fmrikit.errors import InputError, MissingInputError
from fmrikit.features.networks import (CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, FeatureNetwork,
                                       local_pretrained)
from fmrikit.features.base import FeatureExtractor, layer_number, weights_record
from fmrikit.io.hub import offline_hub

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def resolve_local_model(image_model: str) -> tuple[Path, dict]:
    """The local folder of a model and what identifies its weights.

    Parameters
    ----------
    image_model : str
        A ``save_pretrained`` folder, or a Hugging Face id already in the local cache.

    Returns
    -------
    folder : Path
    record : dict
        ``{"model": folder, "weights": [{"file", "bytes", "sha256"}, ...]}`` for a folder (hashed when
        first asked for: :func:`weights_record`), ``{"model": id, "revision": commit}`` for a cached id.

    Raises
    ------
    MissingInputError
        Neither a folder with weights nor a cached id.
    """
    folder = Path(image_model).expanduser()
    if folder.is_dir():
        if not any(p.suffix in _WEIGHT_SUFFIXES for p in folder.iterdir()):
            raise MissingInputError("no weights in the model folder", path=folder,
                                    expected="a save_pretrained folder or a cached Hugging Face id",
                                    found="no .safetensors or .bin file")
        return folder, {"model": str(folder.resolve())}
    from huggingface_hub import snapshot_download

    try:
        with offline_hub():
            snapshot = Path(snapshot_download(str(image_model), local_files_only=True))
    except Exception as exc:  # not cached, or not even a valid id: hub raises several types
        raise MissingInputError("image model not found locally (weights are never downloaded)", path=image_model,
                                expected="a save_pretrained folder or a cached Hugging Face id",
                                found=f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    return snapshot, {"model": str(image_model), "revision": snapshot.name}


class _TransformerExtractor(FeatureExtractor):
    """A transformers vision encoder: ``pooled`` from :meth:`_pooled_output`, ``patches`` from hidden states."""

    model_class = ""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __init__(self, image_model: str, layers: Sequence[int | str] | None = None):
        import transformers

        self.image_model = str(image_model)
        self._folder, self._source = resolve_local_model(self.image_model)
        cls = getattr(transformers, self.model_class)
        try:
            with offline_hub():
                config = cls.config_class.from_pretrained(self._folder, local_files_only=True)
        except OSError as exc:
            raise MissingInputError(f"{self.name} model config not readable", path=self._folder,
                                    expected="a save_pretrained folder or a cached Hugging Face id",
                                    found=f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
        depth = config.num_hidden_layers
        if layers is None:
            self.layers = self._default_layers(depth)
        else:
            self.layers = tuple(layer_number(v) for v in layers)
            bad = [v for v in self.layers if not 0 <= v <= depth]
            if bad or not self.layers:
                raise InputError(f"no such layer in the {self.name} model", path=self.image_model,
                                 expected=f"layers 0 (embeddings) to {depth}", found=str(list(self.layers)))
        self.image_size = self._image_size(config)
        self.n_patches = (self.image_size // config.patch_size) ** 2
        self.patch_shape = (len(self.layers), self.n_patches, config.hidden_size)

    @abstractmethod
    def _default_layers(self, depth: int) -> tuple[int, ...]:
        """Layers used when none are asked for, for a model of ``depth`` layers."""

    def _image_size(self, config) -> int:
        return int(config.image_size)

    @abstractmethod
    def _pooled_output(self, output) -> torch.Tensor:
        """The pooled embedding (B, D) from the model's output."""

    def config(self) -> dict:
        if "revision" not in self._source and "weights" not in self._source:
            self._source["weights"] = weights_record([p for p in self._folder.iterdir()
                                                      if p.suffix in _WEIGHT_SUFFIXES])
        return {"name": self.name, **self._source, "class": self.model_class, "layers": list(self.layers),
                "image_size": self.image_size, "interpolation": "bicubic antialiased",
                "mean": list(self.mean), "std": list(self.std)}

    def _network(self, kind: str) -> FeatureNetwork:
        import transformers

        if "_model" not in self.__dict__:
            self._model = local_pretrained(getattr(transformers, self.model_class), self._folder,
                                           f"{self.name} model")
        net = self._model
        if kind == "pooled":
            def forward(x):
                return self._pooled_output(net(pixel_values=x))
        else:
            def forward(x):
                hidden = net(pixel_values=x, output_hidden_states=True).hidden_states
                return torch.stack([hidden[k][:, -self.n_patches:] for k in self.layers], 1)
        return FeatureNetwork(f"{self.name}:{kind}", net, forward, self.image_size, self.mean, self.std,
                              interpolation="bicubic", antialias=True)


class ClipExtractor(_TransformerExtractor):
    """CLIP image encoder (``CLIPVisionModelWithProjection``; a full CLIP folder works too).

    Parameters
    ----------
    image_model : str
        A ``save_pretrained`` folder or a cached Hugging Face id, e.g. ``"openai/clip-vit-large-patch14"``.
    layers : sequence of int, optional
        Layers of ``patches`` (0 = embeddings, k = output of block k); default four spread evenly up to
        the last (ViT-L: 6, 12, 18, 24).

    Notes
    -----
    ``pooled``: ``image_embeds``, (N, projection_dim) (768 for ViT-L/14). ``patches``: (N, L,
    (image_size / patch_size)**2, hidden_size), input side ``config.image_size`` (224 for ViT-L/14:
    (N, 4, 256, 1024)), CLIP mean/std.
    """

    name = "clip"
    model_class = "CLIPVisionModelWithProjection"
    mean, std = CLIP_MEAN, CLIP_STD

    def _default_layers(self, depth: int) -> tuple[int, ...]:
        return tuple(sorted({max(1, math.ceil(v)) for v in np.linspace(depth / 4, depth, 4)}))

    def _pooled_output(self, output) -> torch.Tensor:
        return output.image_embeds


class Dinov2Extractor(_TransformerExtractor):
    """DINOv2 image encoder (``Dinov2Model``).

    Parameters
    ----------
    image_model : str
        A ``save_pretrained`` folder or a cached Hugging Face id, e.g. ``"facebook/dinov2-large"``.
    layers : sequence of int, optional
        Layers of ``patches`` (0 = embeddings, k = output of block k); default 1, 6, 12, 18, 24 (as the
        Universal Brain Encoder), clamped to the model's depth.

    Notes
    -----
    ``pooled``: the class token of the last layer after the final layer norm (``pooler_output``),
    (N, hidden_size). ``patches``: (N, L, (side / patch_size)**2, hidden_size) with input side
    ``min(config.image_size, 224)``: DINOv2 checkpoints declare their 518 px pretraining size but are used
    at 224 px, as their image processor crops (ViT-L/14: (N, 5, 256, 1024)). ImageNet mean/std.
    """

    name = "dinov2"
    model_class = "Dinov2Model"
    DEFAULT_LAYERS = (1, 6, 12, 18, 24)

    def _default_layers(self, depth: int) -> tuple[int, ...]:
        return tuple(sorted({min(v, depth) for v in self.DEFAULT_LAYERS}))

    def _image_size(self, config) -> int:
        return min(int(config.image_size), 224)

    def _pooled_output(self, output) -> torch.Tensor:
        return output.pooler_output
