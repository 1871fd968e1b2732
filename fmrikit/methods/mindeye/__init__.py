"""The MindEye2-style decoder: a linear input layer per subject into a shared residual MLP, a retrieval projector
and an embedding-regression head (Scotti et al. 2024, as used by TROI).

Library entry points: :func:`pretrain_decoder` (``fmrikit pretrain decoder``), :func:`adapt_subject`
(``fmrikit adapt-subject decoder``), :func:`pretrain_prior` (``fmrikit pretrain prior``), :func:`load_subject_model`,
and :func:`unclip_route` (``fmrikit reconstruct --method unclip``).
"""

from fmrikit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "pretrain_decoder": "pretrain", "adapt_subject": "adapt", "pretrain_prior": "prior", "load_prior": "prior",
    "load_subject_model": "subject", "MindEyeDecoder": "model", "unclip_route": "unclip",
    "ModelSize": "settings", "TrainSettings": "settings", "PriorSize": "settings",
})
