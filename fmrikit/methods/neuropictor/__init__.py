"""NeuroPictor (Huo et al. 2024): betas as cortical flatmaps, a flatmap autoencoder shared across subjects, a
semantic condition and a ControlNet on Stable Diffusion 2.1.

Library entry points: :func:`pretrain_flatmap_ae` (``fmrikit pretrain flatmap-ae``), :func:`pretrain_neuropictor`
(``fmrikit pretrain neuropictor``), :func:`adapt_neuropictor` (``fmrikit adapt-subject neuropictor``),
:func:`neuropictor_route` (``fmrikit reconstruct --method neuropictor``), :func:`plan_neuropictor`
(``fmrikit sys-info --plan neuropictor``).
"""

from fmrikit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "pretrain_flatmap_ae": "flatmap_ae", "pretrain_neuropictor": "train", "adapt_neuropictor": "train",
    "load_neuropictor": "train", "neuropictor_route": "route", "plan_neuropictor": "plan",
    "FlatmapAESize": "settings", "NeuroPictorOptions": "settings",
})
