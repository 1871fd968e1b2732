"""What a bug report needs: versions, compute device, pycortex filestore, model caches."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path

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
        warning = filestore_warning(cortex.database.default_filestore, sys.prefix,
                                    getattr(cortex.options, "usercfg", "~/.config/pycortex/options.cfg"))
        if warning:
            info["pycortex_filestore_warning"] = warning
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


def filestore_warning(filestore: str, prefix: str, config: str) -> str | None:
    """One line when pycortex's filestore lies outside the active environment, else None.

    pycortex reads its filestore from a per-user file (``~/.config/pycortex/options.cfg``), shared by every
    environment of the user: one environment then silently reads another's subjects and flatmap caches.

    Parameters
    ----------
    filestore : str
        pycortex's filestore folder.
    prefix : str
        The active environment (``sys.prefix``).
    config : str
        The user configuration file that sets it.
    """
    store, env = Path(filestore).expanduser().resolve(), Path(prefix).resolve()
    if store == env or env in store.parents:
        return None
    return (f"pycortex's filestore {store} is outside the active environment {env} (set per user in {config}): "
            "its subjects and flatmap caches are another environment's")
