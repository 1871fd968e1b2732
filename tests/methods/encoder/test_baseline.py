import json

import h5py
import numpy as np
import pytest

from fmrikit.errors import OutputExistsError
from fmrikit.features.cache import dataset_features
from fmrikit.features.registry import get_extractor
from fmrikit.engine.ridge import RidgeEncoder
from fmrikit.methods.encoder.baseline import ridge_baseline


def test_ridge_baseline_predicts_the_test_images_from_flattened_patch_features(project):
    res = ridge_baseline(1, root=project, n_targets_batch=40)
    label = "sub-01"
    with h5py.File(res.out / f"{label}_pred.h5") as f:
        pred, stim = f["pred"][:], f["stim_id"][:]
    with h5py.File(project / "sub-01/sub-01_desc-preproc_betas.h5") as f:
        shared = np.unique(f["trials/stim_id"][:][f["trials/shared"][:]])
    assert stim.tolist() == shared.tolist()
    from fmrikit.data.dataset import read_info

    feats = dataset_features(read_info(project / "sub-01/sub-01_desc-preproc_betas.h5"), stim,
                             get_extractor("gabor"), "patches", root=project)
    ridge = RidgeEncoder.load(res.out / f"{label}_ridge.h5")
    want = ridge.predict(feats.reshape(len(feats), -1).astype(np.float32))
    np.testing.assert_allclose(pred, want, rtol=1e-5, atol=1e-6)
    sidecar = json.loads((res.out / "ridge.json").read_text())
    assert sidecar["parameters"]["n_features"] == feats[0].size and sidecar["encoding"] == res.scores
    assert res.scores["n_test_images"] == len(stim) and res.fit_seconds > 0
    with pytest.raises(OutputExistsError):
        ridge_baseline(1, root=project)
