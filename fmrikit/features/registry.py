"""Image feature extractors by name (the factory; the interface is :mod:`fmrikit.features.base`).

Defaults (see each class): ``gabor`` pooled D = 1536, patches (4, 64, 24); ``effnet-lite0`` pooled
D = 1280, patches (5, 49, 192); ``clip`` and ``dinov2`` depend on the model (ViT-L/14 at 224 px:
P = 256, C = 1024).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from fmrikit.errors import InputError
from fmrikit.checks import check_option

if TYPE_CHECKING:
    from fmrikit.features.base import FeatureExtractor

#: Extractor names understood by :func:`get_extractor`.
EXTRACTORS = ("gabor", "effnet-lite0", "clip", "dinov2")


def get_extractor(name: str, *, image_model: str | None = None,
                  layers: Sequence[int | str] | None = None, grid: int | None = None) -> FeatureExtractor:
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
    grid : int, optional
        ``gabor`` and ``effnet-lite0`` only: side of the patch grid every level is pooled to (default the
        extractor's, 8 and 7); a finer grid (16, 14) hosts smaller receptive fields.

    Returns
    -------
    FeatureExtractor

    Raises
    ------
    InputError
        Unknown name or layer, ``image_model`` missing for clip/dinov2 or given for another extractor, a
        ``grid`` for clip/dinov2 (their grid is the model's) or below 1.
    MissingInputError
        The weights are not installed or not found locally.
    """
    check_option("feature extractor", name, EXTRACTORS)
    if name in ("clip", "dinov2"):
        if not image_model:
            raise InputError(f"the {name} extractor needs an image model",
                             expected="image_model: a save_pretrained folder or a cached Hugging Face id")
        from fmrikit.features.hf_models import ClipExtractor, Dinov2Extractor

        if grid is not None:
            raise InputError(f"the {name} extractor's patch grid is its model's", expected="no grid",
                             found=str(grid))
        cls = ClipExtractor if name == "clip" else Dinov2Extractor
        return cls(image_model, layers=layers)
    if image_model:
        raise InputError(f"the {name} extractor takes no image model", expected="image_model only with clip or dinov2",
                         found=str(image_model))
    if name == "gabor":
        from fmrikit.features.base import layer_number
        from fmrikit.features.gabor import GaborExtractor

        grids = {} if grid is None else {"grid": grid}
        return GaborExtractor(scales=None if layers is None else tuple(layer_number(v) for v in layers), **grids)
    from fmrikit.features.effnet import EffnetLite0Extractor

    return EffnetLite0Extractor(layers=layers, **({} if grid is None else {"grid": grid}))


def feature_spec(name: str, image_model: str | None, grid: int | None = None) -> dict[str, Any]:
    """How a model's image features are computed (stored with the model); ``grid`` only when given.

    Raises
    ------
    InputError
        A ``grid`` for clip / dinov2 (their grid is the model's) or below 1.
    """
    if grid is not None:
        from fmrikit.checks import check_number

        check_number("--grid", grid, low=1)
        if name in ("clip", "dinov2"):
            raise InputError(f"the {name} extractor's patch grid is its model's", expected="no --grid",
                             found=str(grid))
    return {"name": name, "image_model": image_model, **({} if grid is None else {"grid": grid})}


def spec_extractor(spec: dict[str, Any]) -> FeatureExtractor:
    """The extractor of a :func:`feature_spec` record."""
    return get_extractor(spec["name"], image_model=spec.get("image_model"), grid=spec.get("grid"))
