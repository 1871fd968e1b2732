"""What a bug report needs: versions, compute device, pycortex filestore, model caches."""

from __future__ import annotations

import os
import platform
import shutil

from fmrikit.io.provenance import package_versions
from fmrikit.project import project_root


def system_info() -> dict[str, object]:
    """Collect versions, the torch device, pycortex's filestore and the Hugging Face cache.

    Returns
    -------
    dict
        Flat mapping of names to values; a value is a string saying why when it is unknown.
    """
    info: dict[str, object] = {"platform": platform.platform(), "cpus": os.cpu_count()}
    info.update(package_versions())
    try:
        import torch

        info["torch_device"] = (f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s))"
                                if torch.cuda.is_available() else "cpu")
        info["torch_threads"] = torch.get_num_threads()
    except ImportError as exc:
        info["torch_device"] = f"torch not importable: {exc}"
    try:
        from fmrikit.io.pycortex import import_cortex

        cortex = import_cortex()
        info["pycortex_filestore"] = cortex.database.default_filestore
        info["pycortex_subjects"] = ", ".join(sorted(cortex.db.subjects))
    except Exception as exc:  # pycortex fails in many ways when misconfigured; report, do not raise
        info["pycortex_filestore"] = f"unavailable: {type(exc).__name__}: {exc}"
    info["inkscape"] = shutil.which("inkscape") or "not found (flatmaps render without ROI outlines)"
    try:
        from huggingface_hub import constants

        info["hf_cache"] = constants.HF_HUB_CACHE
    except ImportError:
        info["hf_cache"] = os.environ.get("HF_HUB_CACHE", "~/.cache/huggingface/hub")
    info["hf_hub_offline"] = os.environ.get("HF_HUB_OFFLINE", "0")
    info["project_root"] = str(project_root().resolve())
    return info
