"""Functional brain maps from the universal encoder's voxel embeddings (``fmrikit cluster-embeddings``).

The voxels of every listed subject are clustered together (scikit-learn k-means, or a Gaussian
mixture as in the Universal Brain Encoder's public code), so a cluster means the same thing in every
subject. What is clustered (``space``):

``response`` (default)
    each voxel's predicted response profile over the candidate images (centred, L2-normalised): what
    the embedding makes the voxel do. Only the directions of an embedding that the model reads shape it.
``embedding``
    the L2-normalised embeddings themselves, as in the paper. Directions the model does not read (for a
    category voxel, most of the spatial query) keep their random initial values, which k-means counts as
    much as the functional ones (see the cluster study, ``examples/cluster_study.sh``).

Clusters are numbered 1..k by decreasing total size. Each cluster's preferred images are those with
the highest mean predicted response over its voxels (all subjects pooled).

Outputs, in one folder written atomically:

``sub-NN_desc-clusters_dseg.nii.gz``  int16 labels 1..k on the subject's grid, 0 elsewhere
``sub-NN_desc-clusters.png``          picture, one colour and number per cluster, voxels with a noise ceiling
                                      below 10% white (pycortex flatmap, else nilearn mosaic)
``cluster-KK_top-images.png``         montage of the cluster's preferred images under a band of its map colour
``cluster_sizes.csv``                 voxels per cluster and subject
``clusters.h5``                       labels and voxel ijk per subject, per-image cluster responses
``clusters.json``                     sidecar, with each cluster's preferred images

A subject on a surface gets ``sub-NN_hemi-{L,R}_desc-clusters_dseg.label.gii`` (labels 1..k, 0 elsewhere, one
colour and name per cluster) with a flat-mesh and an inflated picture instead of the NIfTI and flatmap.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmrikit.errors import InputError
from fmrikit.features.image_sets import ImageSet, file_images, stimulus_images
from fmrikit.io.atomic import claim_outputs, one_run, staged_dir
from fmrikit.io.provenance import new_run_id, write_sidecar
from fmrikit.viz.maps import MapTarget
from fmrikit.project import subject_key
from fmrikit.engine.serialization import weights_checksum
from fmrikit.checks import check_number, check_option
from fmrikit.devices import memory_guard

METHODS = ("kmeans", "gmm")
#: What ``cluster-embeddings`` clusters (see the module docstring).
SPACES = ("response", "embedding")
#: Candidate images scored for each cluster by default (a random subset of the stimuli when more).
MAX_IMAGES = 1000


@dataclass
class ClusterResult:
    """Cluster labels per subject (0-based, in the encoder's voxel order) and where they were written."""

    out: Path
    labels: dict[str, np.ndarray]
    sizes: dict[str, list[int]]
    top_images: dict[int, list[str]]


def cluster_labels(embeddings: list[np.ndarray], k: int, method: str = "kmeans", seed: int = 0) -> list[np.ndarray]:
    """Cluster the L2-normalised rows of several embedding matrices jointly.

    Parameters
    ----------
    embeddings : list of ndarray, each shape (n_voxels_s, E)
    k : int
    method : {"kmeans", "gmm"}
        k-means (10 initialisations) or a diagonal-covariance Gaussian mixture.
    seed : int

    Returns
    -------
    list of ndarray of int64, each (n_voxels_s,)
        Labels 0..k-1, 0 the largest cluster overall.
    """
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    check_option("clustering method", method, METHODS)
    x = np.concatenate(embeddings).astype(np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if not 2 <= k <= len(x):
        raise InputError("k must be between 2 and the number of voxels", expected=f"2..{len(x)}", found=str(k))
    if method == "kmeans":
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(x)
    else:
        labels = GaussianMixture(k, covariance_type="diag", random_state=seed).fit_predict(x)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    labels = np.argsort(order)[labels]
    return np.split(labels.astype(np.int64), np.cumsum([len(e) for e in embeddings])[:-1])


@one_run
@memory_guard
def cluster_embeddings(k: int = 20, *, subjects: list[int] | None = None, model: str | os.PathLike | None = None,
                       method: str = "kmeans", space: str = "response", images: str | os.PathLike | None = None,
                       max_images: int = MAX_IMAGES, top: int = 8, root: str | os.PathLike | None = None,
                       out: str | os.PathLike | None = None, seed: int = 0, flatmap: bool = True, batch_size: int = 32, device: str = "auto",
                       overwrite: bool = False) -> ClusterResult:
    """Cluster voxel embeddings into a shared functional map and find each cluster's preferred images.

    Parameters
    ----------
    k : int
        Number of clusters.
    subjects : list of int, optional
        Subjects of the encoder to cluster together (default all).
    model : path-like, optional
        Encoder folder (default ``<root>/models/encoder``).
    method : {"kmeans", "gmm"}
    space : {"response", "embedding"}
        Cluster predicted response profiles over the candidate images or the embeddings themselves.
    images : path-like, optional
        Folder of candidate images (also the profiles of ``space="response"``); default the subjects'
        stimuli.
    max_images : int
        Most candidate images scored (a random subset, drawn with ``seed``, when more).
    top : int
        Images per cluster montage.
    root : path-like, optional
    out : path-like, optional
        Output folder (default ``<root>/clusters/<method>-k<k>``).
    seed : int
    flatmap : bool
        Draw a picture of the labels per subject (a pycortex flatmap when the subject has a pycortex subject,
        else a nilearn mosaic).
    batch_size : int
    device : str
    overwrite : bool

    Returns
    -------
    ClusterResult
    """
    from fmrikit.data.dataset import read_info
    from fmrikit.devices import resolve_device
    from fmrikit.features.registry import spec_extractor
    from fmrikit.project import project_root
    from fmrikit.methods.encoder.runs import encoder_dataset, load_encoder, subject_info
    from fmrikit.project import default_encoder_path

    check_option("clustering method", method, METHODS)
    check_option("clustering space", space, SPACES)
    for name, value, low in (("--k", k, 2), ("--max-images", max_images, 1), ("--top", top, 1),
                             ("--batch-size", batch_size, 1)):
        check_number(name, value, low=low)
    path = Path(model) if model is not None else default_encoder_path(root)
    out = Path(out) if out is not None else project_root(root) / "clusters" / f"{method}-k{k}"
    claim_outputs([out], kind="cluster-embeddings", overwrite=overwrite, inputs=[path, images], root=root)
    dev = resolve_device(device)
    encoder, record = load_encoder(path, device=dev)
    keys = [subject_key(s) for s in subjects] if subjects else sorted(record["subjects"])
    entries = {key: subject_info(record, key, path) for key in keys}
    # what the pictures need, checked before the work (a surface is drawn on its mesh)
    targets = {key: None if entry.get("mesh") else MapTarget.from_record(entry).check(pycortex=flatmap)
               for key, entry in entries.items()}

    if images is not None:
        candidates = file_images(images)
    else:
        infos = [read_info(encoder_dataset(record, key, path)) for key in keys]
        candidates = stimulus_images(infos[0], np.concatenate([i.stim_id for i in infos]))
    if len(candidates) > max_images:
        rows = np.sort(np.random.default_rng(seed).choice(len(candidates), max_images, replace=False))
        candidates = candidates.subset(rows)
    extractor = spec_extractor(record["features"])
    if space == "embedding":
        embeddings = [encoder.voxel_embeddings[key].detach().float().cpu().numpy() for key in keys]
        labels = dict(zip(keys, cluster_labels(embeddings, k, method, seed)))
        response = cluster_responses(encoder, labels, k, candidates, extractor, root=root, batch_size=batch_size,
                                     device=dev)
    else:
        predicted = {key: voxel_predictions(encoder, key, candidates, extractor, root=root, batch_size=batch_size,
                                            device=dev) for key in keys}
        labels = dict(zip(keys, cluster_labels([response_profiles(predicted[key]) for key in keys], k, method,
                                               seed)))
        response = _cluster_means(predicted, labels, k)
    sizes = {key: np.bincount(lab, minlength=k).tolist() for key, lab in labels.items()}
    n_top = min(top, len(candidates))
    best = np.argsort(-response, axis=0, kind="stable")[:n_top].T  # (k, n_top)
    top_images = {c + 1: [candidates.names[r] for r in best[c]] for c in range(k)}

    from fmrikit.viz.montage import label_montage

    with staged_dir(out, overwrite=overwrite, kind="cluster-embeddings") as stage:
        files, pictures = [], {}
        for key in keys:
            ijk = encoder.voxel_index[key].ijk.cpu().numpy()
            if entries[key].get("mesh"):
                files += _surface_maps(stage, key, labels[key], ijk, entries[key]["volume_shape"][1], k, flatmap)
            else:
                files.append(_subject_maps(stage, key, labels[key], ijk, targets[key], k, flatmap, pictures,
                                           reliability=_reliability(record, key, path, ijk) if flatmap else None))
        for c in range(k):
            name = f"cluster-{c + 1:02d}_top-images.png"
            label_montage(candidates.images(best[c]), stage / name, c + 1, k, f"its top {n_top} images")
            files.append(name)
        _sizes_csv(stage / "cluster_sizes.csv", sizes, k)
        _write_h5(stage / "clusters.h5", labels, encoder, keys, response, candidates, k)
        files += ["cluster_sizes.csv", "clusters.h5"]
        write_sidecar(stage / "clusters.json", command="cluster-embeddings", seed=seed, run_id=new_run_id(),
                      inputs=[{"path": str(path.resolve()), "sha256": weights_checksum(path)}],
                      parameters={"k": k, "method": method, "subjects": keys, "model": str(path),
                                  "images": str(images) if images else "subjects' stimuli",
                                  "n_candidate_images": len(candidates), "top": n_top,
                                  "space": space,
                                  "normalisation": "L2 per voxel embedding" if space == "embedding" else
                                  "predicted responses to the candidate images, centred and L2-normalised per voxel"},
                      outputs=files + [n for n, r in pictures.items() if "error" not in r] + ["clusters.json"],
                      extra={"sizes": sizes, "top_images": top_images, "pictures": pictures,
                             "conventions": {key: entries[key].get("conventions") for key in keys}},
                      root=root, folder=out)
    return ClusterResult(out=out, labels=labels, sizes=sizes, top_images=top_images)


def voxel_predictions(encoder, key: str, candidates: ImageSet, extractor, *, root=None, batch_size: int = 32,
                      device="cpu") -> np.ndarray:
    """Predicted responses of every voxel of a subject to the candidate images, float32 (n_images, n_voxels)."""
    from fmrikit.methods.encoder.predict import predict_image_set

    out = np.empty((len(candidates), encoder.voxel_embeddings[key].shape[0]), np.float32)
    for rows, pred in predict_image_set(encoder, key, candidates, extractor, root=root, batch_size=batch_size,
                                        device=device, description=f"voxel profiles {key}"):
        out[rows] = pred
    return out


def response_profiles(predicted: np.ndarray) -> np.ndarray:
    """Voxels' response profiles: ``predicted`` (n_images, n_voxels) centred over images and L2-normalised,
    returned as (n_voxels, n_images) float64 (a flat profile stays 0)."""
    x = predicted.T.astype(np.float64)
    x -= x.mean(1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _cluster_means(predicted: dict[str, np.ndarray], labels: dict[str, np.ndarray], k: int) -> np.ndarray:
    """Mean predicted response of each cluster's voxels (subjects pooled), (n_images, k), NaN when empty."""
    total = sum(predicted[key].astype(np.float64) @ np.eye(k)[labels[key]] for key in labels)
    counts = sum(np.bincount(lab, minlength=k) for lab in labels.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / counts, np.nan)


def cluster_responses(encoder, labels: dict[str, np.ndarray], k: int, candidates: ImageSet, extractor, *, root=None,
                      batch_size: int = 32, device="cpu") -> np.ndarray:
    """Mean predicted response of each cluster's voxels (all subjects pooled) to each image.

    Returns
    -------
    ndarray of float64, shape (n_images, k)
        NaN for an empty cluster.
    """
    from fmrikit.methods.encoder.predict import predict_image_set

    total = np.zeros((len(candidates), k))
    for key, lab in labels.items():
        onehot = np.zeros((len(lab), k))
        onehot[np.arange(len(lab)), lab] = 1
        for rows, pred in predict_image_set(encoder, key, candidates, extractor, root=root, batch_size=batch_size,
                                            device=device, description=f"cluster responses {key}"):
            total[rows] += pred.astype(np.float64) @ onehot
    counts = sum(np.bincount(lab, minlength=k) for lab in labels.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / counts, np.nan)


#: Voxels whose noise ceiling (%, 3 trials) is below this are not coloured in the cluster maps: their embeddings
#: are clustered too, but a cluster label of a voxel that barely responds says little.
RELIABLE_NC = 10.0


def _reliability(record: dict, key: str, path: Path, ijk: np.ndarray) -> np.ndarray | None:
    """Noise ceiling (%, 3 trials, from the dataset's ncsnr) of each voxel at ``ijk``, or None when the subject's
    dataset has no ncsnr (or is not readable: the map is then drawn without it)."""
    from fmrikit.data.dataset import read_info
    from fmrikit.errors import FmrikitError
    from fmrikit.methods.encoder.runs import encoder_dataset

    try:
        info = read_info(encoder_dataset(record, key, path))
    except FmrikitError:
        return None
    if info.ncsnr is None:
        return None
    nc = np.full(tuple(info.volume_shape), np.nan)
    nc[tuple(info.ijk.T)] = 100 * info.ncsnr.astype(np.float64) ** 2 / (info.ncsnr.astype(np.float64) ** 2 + 1 / 3)
    return nc[tuple(np.asarray(ijk).T)]


def _subject_maps(stage: Path, key: str, labels: np.ndarray, ijk: np.ndarray, target: MapTarget, k: int,
                  flatmap: bool, pictures: dict[str, dict], reliability: np.ndarray | None = None) -> str:
    """Write a subject's label NIfTI (returned) and its picture (recorded in ``pictures``): one colour per cluster
    (the montages' colours), each cluster's number on its largest patch, voxels with a noise ceiling below
    :data:`RELIABLE_NC` in white."""
    from fmrikit.io.nifti import save_nifti
    from fmrikit.viz.flatmap import voxels_to_volume
    from fmrikit.viz.maps import save_label_map

    name = f"{key}_desc-clusters_dseg.nii.gz"
    save_nifti(voxels_to_volume(labels + 1, ijk, target.volume_shape, fill=0).astype(np.int16), target.affine,
               stage / name)
    if flatmap:
        png = f"{key}_desc-clusters.png"
        faint = None if reliability is None else ~(reliability >= RELIABLE_NC)
        pictures[png] = save_label_map(labels + 1, ijk, target, stage / png, k, faint=faint,
                                       faint_name=f"noise ceiling < {RELIABLE_NC:g}%",
                                       title=f"{key}: {k} clusters of voxel embeddings")["picture"]
    return name


def _surface_maps(stage: Path, key: str, labels: np.ndarray, ijk: np.ndarray, n_vertices: int, k: int,
                  flatmap: bool) -> list[str]:
    """A subject on a surface: ``<key>_hemi-{L,R}_desc-clusters_dseg.label.gii`` and flat-mesh / inflated pictures."""
    from fmrikit.viz.surface import save_vertex_map, vertex_map_names

    names = vertex_map_names(f"{key}_desc-clusters", "dseg", label=True)
    names["flat"], names["inflated"] = f"{key}_desc-clusters.png", f"{key}_desc-clusters_inflated.png"
    files = [names["lh"], names["rh"]] + ([names["flat"], names["inflated"]] if flatmap else [])
    save_vertex_map(labels + 1, ijk[:, 0], ijk[:, 1], n_vertices, gifti={h: stage / names[h] for h in ("lh", "rh")},
                    flat_png=stage / names["flat"] if flatmap else None,
                    inflated_png=stage / names["inflated"] if flatmap else None,
                    label_names={c: f"cluster-{c:02d}" for c in range(1, k + 1)}, title=f"{key}: {k} clusters")
    return files


def _sizes_csv(path: Path, sizes: dict[str, list[int]], k: int) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["cluster", *sizes, "total"])
        for c in range(k):
            row = [sizes[key][c] for key in sizes]
            writer.writerow([c + 1, *row, sum(row)])


def _write_h5(path: Path, labels, encoder, keys, response, candidates: ImageSet, k: int) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        for key in keys:
            f.create_dataset(f"{key}/labels", data=(labels[key] + 1).astype(np.int16))
            f.create_dataset(f"{key}/ijk", data=encoder.voxel_index[key].ijk.cpu().numpy())
        f.create_dataset("response", data=response.astype(np.float32))
        f.create_dataset("image_name", data=np.array(candidates.names, dtype=object), dtype=h5py.string_dtype())
        if candidates.stim_id is not None:
            f.create_dataset("stim_id", data=candidates.stim_id)
        f.attrs.update({"k": k, "labels": "1..k, 1 the largest cluster", "response": "mean predicted response "
                        "of each cluster's voxels (all subjects) per image, shape (n_images, k)"})
