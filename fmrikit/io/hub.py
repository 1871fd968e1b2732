"""The Hugging Face libraries in offline mode while fmrikit loads a model: whatever the environment says
(``HF_HUB_OFFLINE`` unset), nothing is fetched from the model hub, not even the user-agent registry that
``huggingface_hub`` builds its request headers from. Weights come from local folders or the local cache only."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

#: Environment variables that switch the Hugging Face libraries offline.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1"}


@contextlib.contextmanager
def offline_hub() -> Iterator[None]:
    """Offline mode for ``huggingface_hub``, ``transformers`` and ``diffusers`` inside the block, restored after."""
    from huggingface_hub import constants

    saved_env = {k: os.environ.get(k) for k in OFFLINE_ENV}
    saved = constants.HF_HUB_OFFLINE
    os.environ.update(OFFLINE_ENV)
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
