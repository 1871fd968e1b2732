"""COCO captions of NSD stimuli (the text targets of the latent reconstruction route).

An NSD stimulus (0-based 73k id) maps to a COCO image through ``nsd_stim_info_merged.csv``
(``nsdId``, ``cocoId``, ``cocoSplit``); its captions are the COCO 2017 annotations
``captions_{train2017,val2017}.json`` of that image (five per image in COCO).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, MissingInputError

#: Where the COCO caption files sit in an NSD tree, unless given.
DEFAULT_CAPTIONS_DIR = "nsddata_stimuli/stimuli/nsd/annotations"


def read_captions(nsd_root: str | os.PathLike, stim_ids: np.ndarray,
                  captions_dir: str | os.PathLike | None = None) -> list[list[str]]:
    """Captions of NSD stimuli.

    Parameters
    ----------
    nsd_root : path-like
        NSD tree (holds ``nsddata/experiments/nsd/nsd_stim_info_merged.csv``).
    stim_ids : ndarray of int, shape (n,)
        0-based NSD stimulus ids.
    captions_dir : path-like, optional
        Folder of ``captions_train2017.json`` / ``captions_val2017.json`` (default
        :data:`DEFAULT_CAPTIONS_DIR` under ``nsd_root``).

    Returns
    -------
    list of list of str
        For each id, its captions (at least one).

    Raises
    ------
    MissingInputError
        A file is missing, or a stimulus has no caption.
    CorruptFileError
        A file cannot be parsed.
    """
    import pandas as pd

    root = Path(nsd_root)
    info_path = root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv"
    if not info_path.is_file():
        raise MissingInputError("NSD stimulus table not found", path=info_path, expected="nsd_stim_info_merged.csv")
    try:
        table = pd.read_csv(info_path, index_col=0, usecols=lambda c: c in ("Unnamed: 0", "nsdId", "cocoId",
                                                                             "cocoSplit"))
    except (ValueError, pd.errors.ParserError) as exc:
        raise CorruptFileError("unreadable NSD stimulus table", path=info_path,
                               expected="columns nsdId, cocoId, cocoSplit", found=str(exc)) from exc
    table = table.set_index("nsdId")
    folder = Path(captions_dir) if captions_dir is not None else root / DEFAULT_CAPTIONS_DIR
    by_coco: dict[int, list[str]] = {}
    for split in sorted(set(table.loc[np.unique(stim_ids), "cocoSplit"].astype(str))):
        path = folder / f"captions_{split}.json"
        if not path.is_file():
            raise MissingInputError("COCO captions not found", path=path,
                                    expected=f"captions_{split}.json (pass the folder with --captions)")
        try:
            doc = json.loads(path.read_text())
            for ann in doc["annotations"]:
                by_coco.setdefault(int(ann["image_id"]), []).append(str(ann["caption"]).strip())
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CorruptFileError("not a COCO captions file", path=path, expected="annotations with image_id, "
                                   "caption", found=f"{type(exc).__name__}: {exc}") from exc
    out = []
    for sid in np.asarray(stim_ids, dtype=np.int64):
        captions = by_coco.get(int(table.loc[sid, "cocoId"]), [])
        if not captions:
            raise MissingInputError("stimulus has no caption", path=folder, expected="COCO captions of every image",
                                    found=f"none for stimulus {sid} (COCO id {table.loc[sid, 'cocoId']})")
        out.append(captions)
    return out
