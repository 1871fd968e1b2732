"""Oracle results on a simulated world: the same scorers, run on the ground truth.

A study reads each method's result as a fraction of its oracle. Oracles that need training are the
same commands on the world's noise-free twin (``fmrikit simulate --noise-free``, same seed); the
ones here need none:

* :func:`oracle_encoding`: the noise-free responses as an encoder's prediction of the subject's
  shared images, in the file layout ``fmrikit evaluate encoding`` reads;
* :func:`informative_mask`: the true informative voxels, a mask for ``fmrikit evaluate mask`` or
  ``fmrikit adapt-subject --mask``;
* :func:`oracle_clusters`: k-means on the true tuning (each voxel's noise-free response profile),
  written like ``fmrikit cluster-embeddings`` writes its labels.

The tree is found from the preprocessed dataset (its ``nsd_root`` attribute) unless given. Run as
``python -m fmrikit.cli.oracle {encoding,clusters,mask} ...``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fmrikit.errors import InputError, MissingInputError
from fmrikit.io.atomic import staged_dir
from fmrikit.io.provenance import new_run_id, write_sidecar
from fmrikit.project import preproc_betas_path, subject_label

#: Images whose noise-free responses make the tuning profiles that :func:`oracle_clusters` clusters.
PROFILE_IMAGES = 1000
#: Voxels with a true noise ceiling above this (%) carry signal for :func:`fraction_of_oracle`.
MIN_NOISE_CEILING = 5.0


def fraction_of_oracle(r: np.ndarray, oracle_r: np.ndarray, noise_ceiling: np.ndarray,
                       min_noise_ceiling: float = MIN_NOISE_CEILING) -> dict:
    """An encoder's voxel r as a fraction of the oracle's, on the voxels that carry signal.

    Parameters
    ----------
    r, oracle_r : ndarray, shape (n_voxels,)
        Pearson r of the prediction and of the noise-free responses with the measured test responses.
    noise_ceiling : ndarray, shape (n_voxels,)
        True noise ceiling (%) of each voxel.
    min_noise_ceiling : float
        Voxels above it (and with a finite r and a positive oracle r) are scored.

    Returns
    -------
    dict
        ``median`` and ``p75`` of r / oracle r over the scored voxels (NaN when none), ``n_voxels`` scored and
        ``min_noise_ceiling``.
    """
    r, oracle_r, nc = (np.asarray(a, dtype=np.float64) for a in (r, oracle_r, noise_ceiling))
    if not r.shape == oracle_r.shape == nc.shape:
        raise InputError("r, oracle r and noise ceiling need one value per voxel",
                         found=f"shapes {r.shape}, {oracle_r.shape}, {nc.shape}")
    keep = (nc > min_noise_ceiling) & np.isfinite(r) & np.isfinite(oracle_r) & (oracle_r > 0)
    frac = r[keep] / oracle_r[keep]
    return {"median": float(np.median(frac)) if frac.size else float("nan"),
            "p75": float(np.percentile(frac, 75)) if frac.size else float("nan"),
            "n_voxels": int(keep.sum()), "min_noise_ceiling": float(min_noise_ceiling)}


def cluster_scores(labels: list[np.ndarray], classes: list[np.ndarray], categories: list[int], *,
                   early: list[np.ndarray] | None = None, early_truth: list[np.ndarray] | None = None) -> dict:
    """How well cluster labels of several subjects recover known voxel classes.

    Parameters
    ----------
    labels : list of ndarray of int, each shape (n_voxels_s,)
        Cluster labels per subject, one label space shared by all subjects.
    classes : list of ndarray of int, each shape (n_voxels_s,)
        True class of each voxel.
    categories : list of int
        Classes scored by ``ari_category``, ``purity`` and ``agreement`` (e.g. the category-selective ones).
    early, early_truth : list of ndarray, optional
        Per subject, a boolean mask of early voxels and their true labels there (e.g. binned pRF
        position or visual area), each of ``early[s].sum()`` values.

    Returns
    -------
    dict
        ``ari_category``: adjusted Rand index on the category voxels of all subjects pooled (so the same label
        must mean the same class in every subject); ``purity``: share of category voxels whose cluster's most
        common class is their own; ``agreement``: share of categories whose most common label is the same in every
        subject; ``ari_early`` (with ``early``): ARI of the early voxels' labels against ``early_truth``;
        ``n_category``.
    """
    from sklearn.metrics import adjusted_rand_score

    inside = [np.isin(c, categories) for c in classes]
    lab = np.concatenate([np.asarray(l)[m] for l, m in zip(labels, inside)])
    cls = np.concatenate([np.asarray(c)[m] for c, m in zip(classes, inside)])
    out: dict = {"n_category": int(len(cls))}
    if len(cls):
        out["ari_category"] = float(adjusted_rand_score(cls, lab))
        out["purity"] = float(sum(np.bincount(cls[lab == u]).max() for u in np.unique(lab)) / len(cls))
        majority = [[np.bincount(np.asarray(l)[m & (c == k)]).argmax() if (m & (c == k)).any() else -1
                     for l, c, m in zip(labels, classes, inside)] for k in categories]
        present = [m for m in majority if min(m) >= 0]
        out["agreement"] = float(np.mean([len(set(m)) == 1 for m in present])) if present else float("nan")
    if early is not None:
        lab_e = np.concatenate([np.asarray(l)[e] for l, e in zip(labels, early)])
        out["ari_early"] = float(adjusted_rand_score(np.concatenate(early_truth), lab_e))
    return out


def informative_mask(nsd_root: str | os.PathLike, subject: int) -> Path:
    """The true informative voxels of a simulated subject (``truth/subjNN/informative_mask.nii.gz``)."""
    path = Path(nsd_root) / "truth" / f"subj{subject:02d}" / "informative_mask.nii.gz"
    if not path.is_file():
        raise MissingInputError("no ground-truth mask: not a simulated NSD tree, or no such subject", path=path)
    return path


def oracle_encoding(subject: int, out: str | os.PathLike, *, root: str | os.PathLike | None = None,
                    roi: str | None = None, nsd_root: str | os.PathLike | None = None, seed: int = 0,
                    overwrite: bool = False) -> Path:
    """Write the noise-free responses to the subject's shared images as an encoder's prediction.

    Voxels of the dataset without signal get independent standard normal values (seeded): the
    best a prediction can do there is chance, which is what any encoder scores on them.

    Parameters
    ----------
    subject : int
    out : path-like
        Folder to create; receives ``sub-NN_pred.h5`` (``pred`` float32 (n_images, n_voxels),
        ``stim_id``, ``image_name``, ``voxels/ijk``) and ``oracle.json``.
    root : path-like, optional
        Project folder with the subject's preprocessed dataset.
    roi : str, optional
        Voxel selection of the dataset (default nsdgeneral).
    nsd_root : path-like, optional
        The simulated tree (default: the dataset's ``nsd_root``).
    seed : int
    overwrite : bool

    Returns
    -------
    Path
        The prediction file.
    """
    import h5py

    from fmrikit.data.dataset import read_info
    from fmrikit.data.world.truth import read_noise_free

    dataset = preproc_betas_path(root, subject, roi)
    info = read_info(dataset)
    tree = _tree(nsd_root, info, dataset)
    stim = np.unique(info.stim_id[info.shared])
    if not len(stim):
        raise InputError("the dataset has no shared (test) images", path=dataset)
    pred, has_signal = read_noise_free(tree, subject, stim, info.ijk)
    rng = np.random.default_rng(seed)
    pred[:, ~has_signal] = rng.standard_normal((len(stim), int((~has_signal).sum()))).astype(np.float32)
    name = f"{subject_label(subject)}_pred.h5"
    with staged_dir(out, overwrite=overwrite) as stage:
        with h5py.File(stage / name, "w") as f:
            f.create_dataset("pred", data=pred, chunks=(1, pred.shape[1]))
            f.create_dataset("stim_id", data=stim.astype(np.int64))
            f.create_dataset("image_name", data=np.array([f"stim-{s}" for s in stim], dtype=object),
                             dtype=h5py.string_dtype())
            f.create_dataset("voxels/ijk", data=info.ijk.astype(np.int32))
            f.attrs.update({"subject": subject_label(subject),
                            "units": "noise-free responses (% signal change); noise where a voxel has no signal"})
        write_sidecar(stage / "oracle.json", command="oracle encoding", seed=seed, run_id=new_run_id(),
                      parameters={"subject": subject, "roi": roi or "nsdgeneral", "nsd_root": str(tree)},
                      inputs=[{"path": str(dataset.resolve())}], outputs=[name, "oracle.json"],
                      extra={"n_images": len(stim), "n_voxels": len(info.ijk),
                             "n_voxels_with_signal": int(has_signal.sum())})
    return Path(out) / name


def oracle_clusters(subjects: list[int], k: int, out: str | os.PathLike, *, root: str | os.PathLike | None = None,
                    roi: str | None = None, nsd_root: str | os.PathLike | None = None,
                    max_images: int = PROFILE_IMAGES, seed: int = 0, overwrite: bool = False) -> dict[int, np.ndarray]:
    """Cluster the subjects' true tuning jointly, as ``fmrikit cluster-embeddings`` clusters embeddings.

    A voxel's tuning is its noise-free response profile over up to ``max_images`` images
    (z-scored, L2-normalised); voxels with signal form clusters 1..k-1 (k-means, 10
    initialisations, ``seed``), voxels without signal cluster k.

    Parameters
    ----------
    subjects : list of int
    k : int
        Number of clusters, >= 2.
    out : path-like
        Folder to create; receives ``sub-NN_desc-clusters_dseg.nii.gz`` (int16 labels 1..k on the
        subject's grid, 0 elsewhere) per subject and ``oracle.json``.
    root, roi, nsd_root, seed, overwrite
        As :func:`oracle_encoding`.
    max_images : int

    Returns
    -------
    dict of int to ndarray
        Labels 1..k per subject, in the dataset's voxel order.
    """
    from sklearn.cluster import KMeans

    from fmrikit.data.dataset import read_info
    from fmrikit.data.world.truth import read_noise_free, world_config
    from fmrikit.io.nifti import save_nifti
    from fmrikit.viz.flatmap import voxels_to_volume

    if k < 2 or not subjects:
        raise InputError("oracle clusters need k >= 2 and at least one subject", found=f"k={k}, {subjects}")
    infos = {s: read_info(preproc_betas_path(root, s, roi)) for s in subjects}
    trees = {s: _tree(nsd_root, infos[s], infos[s].path) for s in subjects}
    n_images = _n_images(world_config(trees[subjects[0]]))
    rng = np.random.default_rng(seed)
    images = np.sort(rng.choice(n_images, min(max_images, n_images), replace=False))
    profiles, signal = {}, {}
    for s in subjects:
        resp, signal[s] = read_noise_free(trees[s], s, images, infos[s].ijk)
        x = resp[:, signal[s]].T.astype(np.float64)
        x -= x.mean(1, keepdims=True)
        profiles[s] = x / np.linalg.norm(x, axis=1, keepdims=True)
    joint = np.concatenate([profiles[s] for s in subjects])
    found = KMeans(k - 1, n_init=10, random_state=seed).fit_predict(joint)
    order = np.argsort(-np.bincount(found, minlength=k - 1), kind="stable")  # 1 = the largest cluster
    rank = np.empty(k - 1, dtype=np.int64)
    rank[order] = np.arange(1, k)
    labels, start = {}, 0
    with staged_dir(out, overwrite=overwrite) as stage:
        files = []
        for s in subjects:
            lab = np.full(len(signal[s]), k, dtype=np.int64)
            lab[signal[s]] = rank[found[start:start + signal[s].sum()]]
            start += int(signal[s].sum())
            labels[s] = lab
            name = f"{subject_label(s)}_desc-clusters_dseg.nii.gz"
            volume = voxels_to_volume(lab, infos[s].ijk, infos[s].volume_shape, fill=0).astype(np.int16)
            save_nifti(volume, infos[s].affine, stage / name)
            files.append(name)
        write_sidecar(stage / "oracle.json", command="oracle clusters", seed=seed, run_id=new_run_id(),
                      parameters={"subjects": subjects, "k": k, "roi": roi or "nsdgeneral", "n_images": len(images),
                                  "tuning": "noise-free response profiles, z-scored and L2-normalised",
                                  "labels": f"1..{k - 1} by decreasing size, {k} = voxels without signal"},
                      inputs=[{"path": str(i.path.resolve())} for i in infos.values()], outputs=files + ["oracle.json"])
    return labels


def _tree(nsd_root, info, dataset: Path) -> Path:
    tree = Path(nsd_root) if nsd_root is not None else Path(info.nsd_root) if info.nsd_root else None
    if tree is None:
        raise MissingInputError("the dataset names no NSD tree; give nsd_root", path=dataset)
    return tree


def _n_images(config: dict) -> int:
    n_per = max(config["sessions"]) * config["trials_per_session"] // 3
    return config["n_shared"] + config["n_subjects"] * (n_per - config["n_shared"])

