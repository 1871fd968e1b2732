import csv
import json

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from fmrikit.methods.encoder.clusters import cluster_embeddings, cluster_labels, cluster_responses
from fmrikit.errors import InputError
from fmrikit.features.image_sets import stimulus_images
from fmrikit.features.registry import get_extractor
from fmrikit.methods.encoder.model import UniversalEncoder


def _groups(rng, n, centres, scale):
    labels = rng.integers(0, len(centres), n)
    x = centres[labels] + 0.05 * rng.normal(size=(n, centres.shape[1]))
    return x * scale, labels  # each voxel scaled differently: only the direction carries the group


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_joint_clusters_recover_directions_shared_across_subjects(method):
    rng = np.random.default_rng(0)
    centres = np.linalg.qr(rng.normal(size=(6, 3)))[0].T  # 3 orthonormal directions in 6-D
    a, la = _groups(rng, 120, centres, rng.uniform(0.2, 5, (120, 1)))
    b, lb = _groups(rng, 90, centres, rng.uniform(0.2, 5, (90, 1)))
    got = cluster_labels([a, b], 3, method, seed=0)
    assert [g.shape for g in got] == [(120,), (90,)]
    assert adjusted_rand_score(np.concatenate([la, lb]), np.concatenate(got)) == 1.0
    sizes = np.bincount(np.concatenate(got))
    assert (np.diff(sizes) <= 0).all()  # cluster 0 is the largest
    with pytest.raises(InputError):
        cluster_labels([a], 1)
    with pytest.raises(InputError):
        cluster_labels([a], 3, "spectral")


def test_cluster_responses_are_mean_predictions_over_each_clusters_voxels(encoder_project):
    from fmrikit.data.dataset import read_info

    model = UniversalEncoder.from_pretrained(encoder_project / "models/encoder").eval()
    info = read_info(encoder_project / "sub-01/sub-01_desc-preproc_betas.h5")
    images = stimulus_images(info, info.stim_id[:9])
    rng = np.random.default_rng(1)
    labels = {key: rng.integers(0, 3, model.voxel_embeddings[key].shape[0]) for key in ("sub-01", "sub-02")}
    ext = get_extractor("gabor")
    got = cluster_responses(model, labels, 4, images, ext, root=encoder_project, batch_size=4)
    feats = torch.from_numpy(ext.patches(images.images(np.arange(len(images)))).astype(np.float16).astype(np.float32))
    with torch.no_grad():
        pred = {k: model(feats, k, torch.arange(len(v))).numpy() for k, v in labels.items()}
    for c in range(3):
        values = np.concatenate([pred[k][:, labels[k] == c] for k in labels], axis=1)
        np.testing.assert_allclose(got[:, c], values.mean(1), rtol=1e-3, atol=1e-4)
    assert np.isnan(got[:, 3]).all()


def test_cluster_embeddings_writes_maps_montages_and_sizes(encoder_project, tmp_path):
    res = cluster_embeddings(3, subjects=[1, 2], root=encoder_project, out=tmp_path / "clu", top=2, max_images=12,
                             flatmap=False, device="cpu")
    model = UniversalEncoder.from_pretrained(encoder_project / "models/encoder")
    for key in ("sub-01", "sub-02"):
        vol = np.asarray(nib.load(res.out / f"{key}_desc-clusters_dseg.nii.gz").dataobj)
        ijk = model.voxel_index[key].ijk.numpy()
        np.testing.assert_array_equal(vol[tuple(ijk.T)], res.labels[key] + 1)
        assert (vol > 0).sum() == len(ijk)
    with open(res.out / "cluster_sizes.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["total"]) for r in rows] == [res.sizes["sub-01"][c] + res.sizes["sub-02"][c] for c in range(3)]
    assert sum(int(r["sub-01"]) for r in rows) == model.voxel_embeddings["sub-01"].shape[0]
    with h5py.File(res.out / "clusters.h5") as f:
        response, names = f["response"][:], [n.decode() for n in f["image_name"][:]]
    assert response.shape == (12, 3)
    for c in range(3):
        best = np.argsort(-response[:, c], kind="stable")[:2]
        assert res.top_images[c + 1] == [names[r] for r in best]
        assert (res.out / f"cluster-{c + 1:02d}_top-images.png").is_file()
    sidecar = json.loads((res.out / "clusters.json").read_text())
    assert sidecar["parameters"]["n_candidate_images"] == 12 and sidecar["sizes"] == res.sizes


def test_response_space_clusters_predicted_profiles_and_embedding_space_the_embeddings(encoder_project, tmp_path):
    from sklearn.cluster import KMeans

    from fmrikit.data.dataset import read_info
    from fmrikit.methods.encoder.fit import predict
    from fmrikit.methods.encoder.runs import encoder_dataset, load_encoder

    model, record = load_encoder(encoder_project / "models/encoder")
    got = {}
    for space in ("response", "embedding"):
        got[space] = cluster_embeddings(3, subjects=[1, 2], space=space, root=encoder_project, out=tmp_path / space,
                                        top=1, max_images=12, flatmap=False, device="cpu")
    # the same 12 candidate images, predicted here directly: centred, unit-norm profiles, k-means
    info = read_info(encoder_dataset(record, "sub-01", encoder_project / "models/encoder"))
    infos = [info, read_info(encoder_dataset(record, "sub-02", encoder_project / "models/encoder"))]
    cands = stimulus_images(info, np.concatenate([i.stim_id for i in infos]))
    cands = cands.subset(np.sort(np.random.default_rng(0).choice(len(cands), 12, replace=False)))
    ext = get_extractor("gabor")
    feats = torch.from_numpy(np.asarray(cands.features(np.arange(12), ext, root=encoder_project), np.float16))
    x = np.concatenate([predict(model, feats, k).T for k in ("sub-01", "sub-02")]).astype(np.float64)
    x -= x.mean(1, keepdims=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    ref = KMeans(3, n_init=10, random_state=0).fit_predict(x)
    labels = np.concatenate([got["response"].labels["sub-01"], got["response"].labels["sub-02"]])
    assert adjusted_rand_score(ref, labels) > 0.99
    emb = np.concatenate([model.voxel_embeddings[k].detach().numpy() for k in ("sub-01", "sub-02")])
    ref = KMeans(3, n_init=10, random_state=0).fit_predict(emb / np.linalg.norm(emb, axis=1, keepdims=True))
    labels = np.concatenate([got["embedding"].labels["sub-01"], got["embedding"].labels["sub-02"]])
    assert adjusted_rand_score(ref, labels) > 0.99
    sidecar = json.loads((tmp_path / "response/clusters.json").read_text())
    assert sidecar["parameters"]["space"] == "response"
    with pytest.raises(InputError):
        cluster_embeddings(3, subjects=[1], space="weights", root=encoder_project, out=tmp_path / "x")
