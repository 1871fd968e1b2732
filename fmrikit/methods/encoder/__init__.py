"""The voxel-centric universal image-to-fMRI encoder (Beliy et al. 2024), its ridge baseline, its predictions and
the functional maps of its voxel embeddings.

Library entry points: :func:`pretrain_encoder` (``fmrikit pretrain encoder``), :func:`adapt_encoder`
(``fmrikit adapt-subject encoder``), :func:`ridge_baseline` (``fmrikit pretrain ridge``), :func:`encode_images`
(``fmrikit encode``), :func:`cluster_embeddings` (``fmrikit cluster-embeddings``), :func:`load_encoder`.
"""

from fmrikit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "pretrain_encoder": "runs", "adapt_encoder": "runs", "load_encoder": "runs", "ridge_baseline": "baseline",
    "encode_images": "predict", "cluster_embeddings": "clusters", "UniversalEncoder": "model",
    "EncoderSettings": "settings", "EncoderSize": "settings",
})
