"""Surface datasets: NSD's fsaverage betas and the Algonauts 2023 data in the dataset contract, and their ROIs.

Both write the surface form of :mod:`fmrikit.data.dataset` (columns = vertices of both hemispheres of
fsaverage, left first, vertex numbers increasing) under the same names as a volume dataset, so every later
command finds it with ``--subject``. Keep a subject's volume and surface datasets apart with ``--root``
(one project per space) or ``--name``.

* :func:`preprocess_nsd_surface`: ``{lh,rh}.betas_sessionNN.mgh``, per session divided by 300 when stored
  as integers (the dtype is read from the file) and z-scored per vertex, streamed one session at a time,
  with the volume path's checks (design file, responses.tsv, stimuli).
* :func:`preprocess_algonauts`: the challenge's training (and, when released, test) fMRI, already z-scored
  per session and averaged over repeats by the organisers: copied as they are, the test split as the
  held-out (``trials/shared``) images.

Next to the betas: the kept vertices as a label GIFTI per hemisphere (``sub-NN_hemi-L_desc-preproc_mask
.label.gii``) and the noise ceiling (or mean response) as GIFTI with a flat-mesh and an inflated picture.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from fmrikit.data.dataset import DatasetInfo, require_mesh
from fmrikit.data.preprocess import (NSD_BETA_SCALE, PreprocessResult, StimulusSource, _check_stimuli, drop_columns,
                                     stream_sessions)
from fmrikit.errors import DataValueError, InputError, MissingInputError
from fmrikit.io.fsaverage import check_vertex_count
from fmrikit.io.nsd import NSDLayout, TrialDesign
from fmrikit.io.provenance import file_checksum, new_run_id, write_sidecar
from fmrikit.io.surface import HEMIS, hemi_pair, read_vertex_values
from fmrikit.project import dataset_stem, ensure_dataset_description, subject_dir, subject_label

log = logging.getLogger("fmrikit")

#: The mesh every surface dataset is on (``mesh`` attribute): fsaverage, in icosahedral vertex order.
MESH = "fsaverage"
#: ``--roi`` value selecting every vertex (the surface's coarse region, as ``brainmask`` is the volume's).
ALL_VERTICES = "brainmask"
#: Per-vertex files a surface ROI or mask may be given as.
SURFACE_FILES = (".mgz", ".mgh", ".gii")


def preprocess_nsd_surface(nsd_root: str | os.PathLike, subject: int, *, root: str | os.PathLike | None = None,
                           betas: str = "betas_fithrf_GLMdenoise_RR", sessions: list[int] | None = None,
                           roi: str = "nsdgeneral", labels: list[int] | None = None,
                           zscore_exclude_shared: bool = False, flatmap: bool = True, name: str | None = None,
                           overwrite: bool = False) -> PreprocessResult:
    """Preprocess one subject's fsaverage betas of an NSD tree into the project folder.

    Parameters
    ----------
    nsd_root : path-like
    subject : int
    root : path-like, optional
    betas : str
        Beta version.
    sessions : list of int, optional
        Default every session with both hemispheres' files.
    roi : str
        An fsaverage atlas of NSD (``nsdgeneral``, ``prf-visualrois``; ``lh.`` / ``rh.`` for one hemisphere),
        ``brainmask`` (every vertex), or a label file of one hemisphere (``.mgz``, ``.gii``) whose ``lh`` / ``rh``
        partner lies beside it.
    labels : list of int, optional
        ROI values to keep; default every value > 0.
    zscore_exclude_shared : bool
    flatmap : bool
        Draw the flat-mesh and inflated pictures of the noise ceiling (or mean response).
    name : str, optional
        ``roi-<name>`` of the output names (as :func:`~fmrikit.data.preprocess.preprocess_nsd`).
    overwrite : bool

    Returns
    -------
    PreprocessResult
        ``mask`` is the left hemisphere's mask GIFTI (the right one lies beside it); ``flatmap`` the flat picture.
    """
    from fmrikit.io.nsd_surface import (SURFACE_SPACE, available_surface_sessions, surface_betas_dir,
                                        surface_ncsnr_files, surface_session_files)
    from fmrikit.io.surface import mgh_frames, read_mgh_frames

    check_surface_roi(roi)
    layout = NSDLayout(nsd_root)
    layout._check_subject(subject)
    if sessions is None:
        sessions = available_surface_sessions(layout, subject, betas)
        if not sessions:
            raise MissingInputError("no surface betas session files", path=surface_betas_dir(layout, subject, betas),
                                    expected="lh.betas_sessionNN.mgh and rh.betas_sessionNN.mgh")
    files = {s: surface_session_files(layout, subject, betas, s) for s in sessions}
    n_frames = {}
    n_vertices = None
    for s, pair in files.items():
        shapes = {h: mgh_frames(p) for h, p in pair.items()}
        for hemi, (n_v, n_f, _) in shapes.items():
            if n_vertices is None:
                n_vertices = check_vertex_count(n_v, pair[hemi])
            if n_v != n_vertices or n_f != shapes["lh"][1]:
                raise DataValueError("surface betas files differ in shape", path=pair[hemi],
                                     expected=f"{n_vertices} vertices, {shapes['lh'][1]} trials (as {pair['lh'].name})",
                                     found=f"{n_v} vertices, {n_f} trials")
        n_frames[s] = shapes["lh"][1]
    masks, roi_inputs = nsd_surface_roi(layout, roi, labels, n_vertices)
    hemi, vertex = _columns(masks)
    design = layout.trial_design(subject, n_frames)
    stimuli = StimulusSource(layout.stimuli_path, "imgBrick")
    _check_stimuli(stimuli, design.stim_id)

    ncsnr = None
    nc_files = surface_ncsnr_files(layout, subject, betas)
    if all(p.is_file() for p in nc_files.values()):
        ncsnr = _per_column({h: read_vertex_values(p) for h, p in nc_files.items()}, hemi, vertex, n_vertices, nc_files)

    inputs = [file_checksum(layout.expdesign_path)] + roi_inputs

    def read(session: int) -> np.ndarray:
        blocks = []
        for h, (hemi_name, path) in enumerate(files[session].items()):
            checksum: dict = {}
            raw = read_mgh_frames(path, vertex[hemi == h], checksum=checksum)
            inputs.append(checksum)
            blocks.append(_scaled(raw, path))
        return np.concatenate(blocks, axis=1)

    def fill(out, constant, psc_sum):
        stream_sessions(out, design, sorted(files), read, len(hemi), zscore_exclude_shared, subject_label(subject),
                        constant, psc_sum, where=lambda s: files[s]["lh"])

    params = dict(nsd_root=str(layout.root), subject=subject, betas=betas, space=SURFACE_SPACE, sessions=sessions,
                  roi=roi, labels=labels, zscore_exclude_shared=zscore_exclude_shared)
    return write_surface_dataset(
        subject, _selection_name(roi, labels, name), design, hemi, vertex, n_vertices, stimuli, fill, root=root,
        attrs={"nsd_root": str(layout.root.resolve()), "space": SURFACE_SPACE, "betas_version": betas},
        ncsnr=ncsnr, mean=("meanpsc", "mean response (% signal change)"), flatmap=flatmap, overwrite=overwrite,
        params=params, inputs=inputs,
        extra={"scaling": "integer betas / 300 (NSD), float betas as stored; z-scored per vertex within each "
                          "session" + (" (mean and sd of non-shared trials)" if zscore_exclude_shared else "")})


def preprocess_algonauts(algonauts_root: str | os.PathLike, subject: int, *, root: str | os.PathLike | None = None,
                         roi: str = "nsdgeneral", labels: list[int] | None = None, flatmap: bool = True,
                         name: str | None = None, overwrite: bool = False) -> PreprocessResult:
    """Write one subject of the Algonauts 2023 challenge data as a surface dataset.

    The fMRI is taken as the organisers prepared it (z-scored within each NSD session, averaged over each
    image's repeats): one row per image, every row in session 1 (the files keep no session). Images of the
    test split, when its fMRI is present, are the held-out images (``trials/shared``).

    Parameters
    ----------
    algonauts_root : path-like
        The folder holding ``subj01/``...
    subject : int
    root : path-like, optional
    roi : str
        ``nsdgeneral`` (or ``brainmask``): every challenge vertex (NSD's nsdgeneral with RSC); or an ROI class
        of ``roi_masks/`` (``prf-visualrois``, ``floc-faces``, ``streams``...) whose labels > 0 (or ``labels``)
        select vertices.
    labels : list of int, optional
    flatmap : bool
    name : str, optional
    overwrite : bool

    Returns
    -------
    PreprocessResult
    """
    from fmrikit.checks import check_option
    from fmrikit.io.algonauts import AlgonautsLayout, load_npy

    layout = AlgonautsLayout(algonauts_root)
    challenge = layout.vertices(subject)
    n_vertices = check_vertex_count(len(load_npy(layout.vertices_path(subject, "lh"))),
                                    layout.vertices_path(subject, "lh"))
    if roi in ("nsdgeneral", ALL_VERTICES):
        keep = {h: np.ones(len(v), bool) for h, v in challenge.items()}
    else:
        check_option("Algonauts ROI class", roi, ["nsdgeneral", ALL_VERTICES, *layout.roi_classes(subject)])
        keep = {}
        for h in HEMIS:
            values = load_npy(layout.roi_path(subject, h, roi)).astype(np.int64)
            if len(values) != len(challenge[h]):
                raise DataValueError("ROI labels do not match the challenge vertices",
                                     path=layout.roi_path(subject, h, roi), expected=f"{len(challenge[h])} values",
                                     found=str(len(values)))
            keep[h] = np.isin(values, labels) if labels is not None else values > 0
        if not any(k.any() for k in keep.values()):
            raise DataValueError("the ROI selects no vertex", path=layout.roi_path(subject, "lh", roi),
                                 expected=f"labels {labels}" if labels else "labels > 0", found="none")
    masks = {}
    for h in HEMIS:
        masks[h] = np.zeros(n_vertices, bool)
        masks[h][challenge[h][keep[h]]] = True
    hemi, vertex = _columns(masks)

    splits = ["train"] + (["test"] if layout.has_fmri(subject, "test") else [])
    if len(splits) == 1:
        log.warning("%s: no test_fmri; the dataset has no held-out images", layout.subject_dir(subject))
    arrays, names, ids = {}, [], []
    for split in splits:
        split_names, split_ids = layout.images(subject, split)
        for h in HEMIS:
            path = layout.fmri_path(subject, split, h)
            if not path.is_file():
                raise MissingInputError("fMRI file not found", path=path, expected=f"the {split} fMRI of {h}")
            arr = np.load(path, mmap_mode="r")
            if arr.ndim != 2 or arr.shape != (len(split_ids), len(challenge[h])):
                raise DataValueError("fMRI of unexpected shape", path=path,
                                     expected=f"({len(split_ids)} images, {len(challenge[h])} challenge vertices)",
                                     found=str(arr.shape))
            arrays[split, h] = (arr, path)
        folder = layout.images_dir(subject, split).relative_to(layout.subject_dir(subject))
        names += [str(folder / n) for n in split_names]
        ids.append(split_ids)
    stim_id = np.concatenate(ids)
    if len(np.unique(stim_id)) != len(stim_id):
        raise DataValueError("an image appears twice", path=layout.subject_dir(subject), expected="one row per image",
                             found=f"{len(stim_id) - len(np.unique(stim_id))} repeats")
    n_train = len(ids[0])
    design = TrialDesign(stim_id=stim_id, session=np.ones(len(stim_id), np.int16),
                         index_in_session=np.arange(len(stim_id), dtype=np.int64),
                         shared=np.arange(len(stim_id)) >= n_train)
    stimuli = StimulusSource(layout.subject_dir(subject), files=dict(zip(stim_id.tolist(), names)))
    _check_stimuli(stimuli, stim_id)
    inputs = [file_checksum(path) for _, path in arrays.values()]

    def fill(out, constant, psc_sum):
        ds = out.create_dataset("betas", (len(stim_id), len(hemi)), dtype=np.float32,
                                chunks=(max(1, min(len(stim_id), 2**21 // (4 * len(hemi)))), len(hemi)))
        low, high = np.full(len(hemi), np.inf, np.float32), np.full(len(hemi), -np.inf, np.float32)
        row, block = 0, 1024
        for split in splits:
            for start in range(0, len(arrays[split, "lh"][0]), block):
                x = np.concatenate([arrays[split, h][0][start:start + block][:, keep[h]] for h in HEMIS], axis=1)
                x = x.astype(np.float32)
                if not np.isfinite(x).all():
                    raise DataValueError("fMRI contains NaN or Inf", path=arrays[split, "lh"][1],
                                         expected="finite values", found=f"in rows {start}-{start + len(x) - 1}")
                ds[row:row + len(x)] = x
                psc_sum += x.sum(0, dtype=np.float64)
                if split == "train":  # a column constant over the training images carries nothing
                    np.minimum(low, x.min(0), out=low)
                    np.maximum(high, x.max(0), out=high)
                row += len(x)
        constant |= low == high

    params = dict(algonauts_root=str(layout.root), subject=subject, roi=roi, labels=labels, splits=splits)
    return write_surface_dataset(
        subject, _selection_name(roi, labels, name), design, hemi, vertex, n_vertices, stimuli, fill, root=root,
        attrs={"algonauts_root": str(layout.root.resolve()), "space": "fsaverage"}, ncsnr=None,
        mean=("mean", "mean response (z)"), flatmap=flatmap, overwrite=overwrite, params=params, inputs=inputs,
        extra={"scaling": "none: the Algonauts 2023 fMRI is already z-scored within each NSD session and averaged "
                          "over repeats by the organisers; fmrikit copies it unchanged",
               "sessions": "not in the Algonauts files: every row is session 1, one row per image",
               "held_out": "the test split's images (trials/shared)" if "test" in splits else "none (no test_fmri)"})


def write_surface_dataset(subject: int, name: str, design: TrialDesign, hemi: np.ndarray, vertex: np.ndarray,
                          n_vertices: int, stimuli: StimulusSource, fill, *, root, attrs: dict, ncsnr,
                          mean: tuple[str, str], flatmap: bool, overwrite: bool, params: dict, inputs: list,
                          extra: dict) -> PreprocessResult:
    """Write a surface dataset, its mask GIFTIs, its map and the sidecar atomically.

    ``fill(out, constant, psc_sum)`` writes ``betas`` (n_trials, n_columns) into the open HDF5 ``out`` and
    updates ``constant`` (bool per column: drop it) and ``psc_sum`` (sum of the values per column). The map is
    the noise ceiling from ``ncsnr`` (n_columns,), else the mean value: ``mean`` = (file suffix, title).
    """
    import h5py

    from fmrikit.io.atomic import staged_outputs
    from fmrikit.viz.surface import save_vertex_map, vertex_map_names
    from fmrikit.data.dataset import convention_attrs, conventions

    label, stem = subject_label(subject), dataset_stem(subject, name)
    names = {k: f"{stem}_{k}" for k in ("betas.h5", "betas.json")}
    mask_names = vertex_map_names(stem, "mask", label=True)
    map_names = vertex_map_names(stem, "noiseceiling" if ncsnr is not None else mean[0])
    if not flatmap:
        map_names = {h: map_names[h] for h in HEMIS}
    outputs = [*names.values(), *(mask_names[h] for h in HEMIS), *map_names.values()]
    out_dir = subject_dir(root, subject)
    n_trials, n_cols = len(design.stim_id), len(hemi)
    record = conventions(design.stim_id, design.session, design.shared, betas_version=attrs.get("betas_version", ""),
                         space=attrs.get("space", ""), normalisation=extra["scaling"],
                         planned_repeats=design.planned_repeats)
    with staged_outputs(out_dir, outputs, overwrite=overwrite) as tmp:
        constant, psc_sum = np.zeros(n_cols, bool), np.zeros(n_cols, np.float64)
        with h5py.File(tmp[names["betas.h5"]], "w") as out:
            fill(out, constant, psc_sum)
            out.create_dataset("trials/stim_id", data=design.stim_id.astype(np.int64))
            out.create_dataset("trials/session", data=design.session.astype(np.int16))
            out.create_dataset("trials/shared", data=design.shared.astype(bool))
            out.create_dataset("trials/index_in_session", data=design.index_in_session.astype(np.int64))
            out.create_dataset("vertices/hemi", data=hemi.astype(np.int8))
            out.create_dataset("vertices/index", data=vertex.astype(np.int32))
            if ncsnr is not None:
                out.create_dataset("vertices/ncsnr", data=ncsnr.astype(np.float32))
            if stimuli.files:
                ids = np.array(sorted(stimuli.files), dtype=np.int64)
                out.create_dataset("stimuli/stim_id", data=ids)
                out.create_dataset("stimuli/file", data=[stimuli.files[i] for i in ids], dtype=h5py.string_dtype())
            out.attrs.update({"subject": int(subject), "mesh": MESH, "n_vertices": int(n_vertices),
                              "stimuli_path": str(Path(stimuli.path).resolve()), "stimuli_dataset": stimuli.dataset,
                              **attrs, **convention_attrs(record)})
        n_dropped = int(constant.sum())
        if n_dropped:
            log.warning("%s: dropped %d constant vertices of %d", label, n_dropped, n_cols)
            drop_columns(tmp[names["betas.h5"]], ~constant)
        keep = ~constant
        hemi, vertex = hemi[keep], vertex[keep]
        save_vertex_map(np.ones(len(hemi)), hemi, vertex, n_vertices, gifti={h: tmp[mask_names[h]] for h in HEMIS},
                        label_names={1: "kept"})
        if ncsnr is not None:
            nc = ncsnr[keep].astype(np.float64) ** 2
            values, title, units = 100 * nc / (nc + 1 / 3), f"{label} noise ceiling (3 trials)", "noise ceiling (%)"
        else:
            values, title, units = (psc_sum / max(n_trials, 1))[keep], f"{label} {mean[1]}", mean[1]
        save_vertex_map(values, hemi, vertex, n_vertices, gifti={h: tmp[map_names[h]] for h in HEMIS},
                        flat_png=tmp[map_names["flat"]] if flatmap else None,
                        inflated_png=tmp[map_names["inflated"]] if flatmap else None, title=title, units=units)
        write_sidecar(tmp[names["betas.json"]], command="preprocess", parameters=params, inputs=inputs,
                      run_id=new_run_id(), outputs=sorted(outputs),
                      extra={"n_trials": n_trials, "n_vertices": int(keep.sum()), "n_dropped_constant": n_dropped,
                             "n_sessions": int(len(np.unique(design.session))),
                             "n_shared_trials": int(design.shared.sum()), "mesh": MESH,
                             "mesh_vertices_per_hemisphere": int(n_vertices), "conventions": record, **extra})
    ensure_dataset_description(root)
    return PreprocessResult(betas=out_dir / names["betas.h5"], mask=out_dir / mask_names["lh"],
                            sidecar=out_dir / names["betas.json"],
                            picture=out_dir / map_names["flat"] if flatmap else None,
                            n_trials=n_trials, n_voxels=int(keep.sum()), n_dropped=n_dropped)


def nsd_surface_roi(layout: NSDLayout, roi: str, labels: list[int] | None,
                    n_vertices: int) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Vertices of an NSD ROI on fsaverage, per hemisphere.

    Returns
    -------
    masks : dict
        ``{"lh": bool (n_vertices,), "rh": ...}``.
    inputs : list of dict
        Checksums of the label files read.

    Raises
    ------
    MissingInputError
        No such atlas; DataValueError: labels of another vertex count, or no vertex selected.
    """
    from fmrikit.io.nsd_surface import fsaverage_atlases, fsaverage_label_path

    if roi == ALL_VERTICES:
        return {h: np.ones(n_vertices, bool) for h in HEMIS}, []
    only = roi[:2] if roi.startswith(("lh.", "rh.")) else None
    if roi.endswith(SURFACE_FILES):
        paths = hemi_pair(roi)
    else:
        atlas = roi[3:] if only else roi
        paths = {h: fsaverage_label_path(layout, h, atlas) for h in HEMIS}
        if not paths["lh"].is_file() or not paths["rh"].is_file():
            raise MissingInputError("fsaverage ROI file not found", path=paths["lh"], expected=f"ROI '{roi}'",
                                    found=", ".join(fsaverage_atlases(layout)) or "no fsaverage atlases")
    masks, inputs = {}, []
    for h, path in paths.items():
        values = np.rint(read_vertex_values(path)).astype(np.int64)
        if len(values) != n_vertices:
            raise DataValueError("ROI labels of another vertex count than the betas", path=path,
                                 expected=str(n_vertices), found=str(len(values)))
        masks[h] = (np.isin(values, labels) if labels is not None else values > 0) & (only in (None, h))
        inputs.append(file_checksum(path))
    if not any(m.any() for m in masks.values()):
        raise DataValueError("the ROI selects no vertex", path=paths["lh"],
                             expected="labels > 0" if labels is None else f"labels {labels}", found="none")
    return masks, inputs


def surface_atlas_labels(info: DatasetInfo, roi: str) -> np.ndarray:
    """The integer label of every column of a surface dataset in an ROI.

    Parameters
    ----------
    info : DatasetInfo
    roi : str
        An fsaverage atlas of the dataset's NSD tree (``prf-visualrois``, ``lh.floc-faces``...), an ROI class of
        its Algonauts folder, or one hemisphere's label file (``.mgz``, ``.gii``) with its partner beside it.

    Returns
    -------
    ndarray of int64, shape (n_columns,)
        Columns of a hemisphere the ROI does not cover (``lh.`` / ``rh.`` names) get -1, as NSD's volumes mark
        the other hemisphere.
    """
    require_mesh(info, "surface ROI labels")
    per_hemi = _surface_label_values(info, roi)
    out = np.full(info.n_voxels, -1, np.int64)
    for h, name in enumerate(HEMIS):
        if name in per_hemi:
            sel = info.hemi == h
            out[sel] = per_hemi[name][info.vertex[sel]]
    return out


def surface_label_names(info: DatasetInfo, roi: str) -> dict[int, str]:
    """Names of an fsaverage atlas's labels (its ``.ctab``, or the Algonauts mapping); {} when unknown."""
    from fmrikit.io.nsd import read_ctab

    atlas = roi[3:] if roi.startswith(("lh.", "rh.")) else roi
    if info.nsd_root:
        from fmrikit.io.nsd_surface import fsaverage_ctab_path

        path = fsaverage_ctab_path(NSDLayout(info.nsd_root), atlas)
        return read_ctab(path) if path.is_file() else {}
    if _algonauts_root(info):
        from fmrikit.io.algonauts import AlgonautsLayout

        layout = AlgonautsLayout(_algonauts_root(info))
        return layout.roi_names(info.subject, atlas) if atlas in layout.roi_classes(info.subject) else {}
    return {}


def surface_atlases(info: DatasetInfo) -> list[str]:
    """The atlases (ROI classes) known for a surface dataset's source."""
    if info.nsd_root:
        from fmrikit.io.nsd_surface import fsaverage_atlases

        return fsaverage_atlases(NSDLayout(info.nsd_root))
    if _algonauts_root(info):
        from fmrikit.io.algonauts import AlgonautsLayout

        return AlgonautsLayout(_algonauts_root(info)).roi_classes(info.subject)
    return []


def surface_mask_columns(mask: str | os.PathLike, info: DatasetInfo) -> np.ndarray:
    """Dataset columns inside a surface mask: one hemisphere's file (``.label.gii``, ``.func.gii``, ``.mgz``)
    whose partner lies beside it (as ``roi-train`` writes its mask), values > 0.

    Raises
    ------
    InputError
        A volume dataset, or a NIfTI mask.
    DataValueError
        The mask has another vertex count, selects no column, or vertices the dataset does not hold.
    """
    require_mesh(info, "a surface mask")
    if str(mask).endswith((".nii", ".nii.gz")):
        raise InputError("a NIfTI mask needs a volume dataset", path=mask, expected="one hemisphere's mask file "
                         "(.label.gii, .mgz) with its partner beside it", found=f"a NIfTI for {info.path.name}")
    inside = np.zeros(info.n_voxels, bool)
    n_mask = 0
    for h, (name, path) in enumerate(hemi_pair(mask).items()):
        values = read_vertex_values(path)
        if len(values) != info.n_mesh_vertices:
            raise DataValueError("the mask has another vertex count than the dataset", path=path,
                                 expected=str(info.n_mesh_vertices), found=str(len(values)))
        on = np.asarray(values) > 0
        n_mask += int(on.sum())
        sel = info.hemi == h
        inside[sel] = on[info.vertex[sel]]
    n_in = int(inside.sum())
    if n_in == 0:
        raise DataValueError("the mask selects none of the dataset's vertices", path=mask,
                             expected=f"vertices of {info.path.name}",
                             found=f"{n_mask} mask vertices, 0 in the dataset")
    if n_in < n_mask:
        raise DataValueError("the mask has vertices the dataset does not hold", path=mask,
                             expected=f"a subset of the {info.n_voxels} vertices of {info.path.name}",
                             found=f"{n_mask - n_in} of {n_mask} mask vertices outside")
    return np.nonzero(inside)[0]


def _surface_label_values(info: DatasetInfo, roi: str) -> dict[str, np.ndarray]:
    """Per hemisphere, the ROI's value at every mesh vertex (only the hemispheres the ROI covers)."""
    only = roi[:2] if roi.startswith(("lh.", "rh.")) else None
    if roi.endswith(SURFACE_FILES):
        paths = hemi_pair(roi)
    elif info.nsd_root:
        from fmrikit.io.nsd_surface import fsaverage_label_path

        layout = NSDLayout(info.nsd_root)
        paths = {h: fsaverage_label_path(layout, h, roi[3:] if only else roi) for h in HEMIS}
    elif _algonauts_root(info):
        return _algonauts_labels(info, roi[3:] if only else roi, only)
    else:
        raise MissingInputError("an atlas name needs an NSD or Algonauts source", path=info.path,
                                expected="a label file (.mgz, .gii) of one hemisphere", found=f"ROI {roi!r}")
    out = {}
    for h, path in paths.items():
        if only in (None, h):
            values = np.rint(read_vertex_values(path)).astype(np.int64)
            if len(values) != info.n_mesh_vertices:
                raise DataValueError("ROI labels of another vertex count than the dataset", path=path,
                                     expected=str(info.n_mesh_vertices), found=str(len(values)))
            out[h] = values
    return out


def _algonauts_labels(info: DatasetInfo, roi_class: str, only: str | None) -> dict[str, np.ndarray]:
    from fmrikit.checks import check_option
    from fmrikit.io.algonauts import AlgonautsLayout, load_npy

    layout = AlgonautsLayout(_algonauts_root(info))
    check_option("Algonauts ROI class", roi_class, layout.roi_classes(info.subject))
    out = {}
    for h, vertices in layout.vertices(info.subject).items():
        if only in (None, h):
            full = np.zeros(info.n_mesh_vertices, np.int64)
            full[vertices] = load_npy(layout.roi_path(info.subject, h, roi_class)).astype(np.int64)
            out[h] = full
    return out


def _algonauts_root(info: DatasetInfo) -> str:
    from fmrikit.io.hdf5 import open_h5

    with open_h5(info.path) as f:
        return str(f.attrs.get("algonauts_root", ""))


def _columns(masks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(hemi, vertex) of the selected vertices, left hemisphere first, vertices increasing."""
    vertex = [np.nonzero(masks[h])[0] for h in HEMIS]
    hemi = np.concatenate([np.full(len(v), k, np.int64) for k, v in enumerate(vertex)])
    return hemi, np.concatenate(vertex).astype(np.int64)


def _per_column(values: dict[str, np.ndarray], hemi, vertex, n_vertices: int, paths) -> np.ndarray:
    out = np.empty(len(hemi), np.float64)
    for h, name in enumerate(HEMIS):
        if len(values[name]) != n_vertices:
            raise DataValueError("per-vertex file of another vertex count than the betas", path=paths[name],
                                 expected=str(n_vertices), found=str(len(values[name])))
        out[hemi == h] = values[name][vertex[hemi == h]]
    return out


def _scaled(raw: np.ndarray, path: Path) -> np.ndarray:
    """Stored betas in percent signal change, float32: integers / 300 (NSD), floats as stored (finite)."""
    x = raw.astype(np.float32)
    if np.issubdtype(raw.dtype, np.integer):
        x /= NSD_BETA_SCALE
    elif not np.isfinite(x).all():
        raise DataValueError("betas contain NaN or Inf", path=path, expected="finite values",
                             found=f"non-finite values in {int((~np.isfinite(x)).any(1).sum())} trial(s)")
    return x


def _selection_name(roi: str, labels: list[int] | None, name: str | None) -> str:
    if name is not None:
        return name
    base = Path(roi).name.split(".")[0] if roi.endswith(SURFACE_FILES) else roi
    if base in HEMIS:  # lh.<atlas>.mgz: keep the hemisphere in the name
        base = Path(roi).name.rsplit(".", 1)[0]
    return base + "".join(f"l{v}" for v in labels or [])


def check_surface_roi(roi: str) -> str:
    """Refuse a volume file as the ROI of a surface dataset."""
    if roi.endswith((".nii", ".nii.gz")):
        raise InputError("a NIfTI ROI needs a volume dataset", path=roi,
                         expected="an fsaverage atlas name, brainmask, or a label file (.mgz, .gii)",
                         found="a NIfTI for --space fsaverage")
    return roi
