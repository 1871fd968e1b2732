"""TROI (Lin et al. 2025): data-driven voxel selection for a new subject on the pretrained decoder.

Library entry point: :func:`roi_train` (``fmrikit roi-train``), with :class:`TroiSettings`.
"""

from fmrikit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "roi_train": "stages", "TroiSettings": "settings", "VoxelGate": "gate",
})
