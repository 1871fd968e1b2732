"""COCO captions of NSD stimuli, looked up through nsd_stim_info_merged.csv."""

import json

import numpy as np
import pandas as pd
import pytest

from fmrikit.data.captions import DEFAULT_CAPTIONS_DIR, read_captions
from fmrikit.errors import MissingInputError


def test_captions_follow_the_coco_ids_of_the_stimuli(sim_world):
    table = pd.read_csv(sim_world / "nsddata/experiments/nsd/nsd_stim_info_merged.csv", index_col=0)
    by_coco = {}
    for split in ("train2017", "val2017"):
        doc = json.loads((sim_world / DEFAULT_CAPTIONS_DIR / f"captions_{split}.json").read_text())
        for ann in doc["annotations"]:
            by_coco.setdefault(ann["image_id"], []).append(ann["caption"])
    ids = np.array([5, 0, 5, 17])
    got = read_captions(sim_world, ids)
    want = [by_coco[int(table.loc[table.nsdId == i, "cocoId"].iloc[0])] for i in ids]
    assert got == want and got[0] == got[2]


def test_missing_captions_folder_is_named(sim_world, tmp_path):
    with pytest.raises(MissingInputError, match="COCO captions not found"):
        read_captions(sim_world, np.array([0]), captions_dir=tmp_path)
