"""Preprocessing: single-trial betas -> the z-scored (n_trials, n_voxels) dataset.

Two entry points share one streaming core:

* :func:`preprocess_nsd` reads an NSD tree (``--nsd-root``), NIfTI or HDF5 session files.
* :func:`preprocess_files` reads any 4D NIfTI files listed in a trial table (THINGS,
  BOLD5000 and similar).

Per session: scale to percent signal change, z-score each voxel over the session's trials
(ddof 0), optionally fitting mean and std on non-shared trials only. One session is in
memory at a time, so peak memory does not grow with the number of sessions. The dataset
records its conventions (sessions, beta version, normalisation, the test stimulus ids and how
many of them have all their repeats: :func:`fmrikit.data.dataset.conventions`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmrikit._logging import logger
from fmrikit._progress import track
from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError
from fmrikit.checks import check_number
from fmrikit.io.atomic import claim_outputs, one_run, staged_outputs
from fmrikit.io.hdf5 import as_float32_rows, h5_betas_shape, open_h5, read_masked_betas_h5
from fmrikit.io.images import check_image
from fmrikit.io.nifti import check_same_grid, image_data, iter_masked_volumes, load_image, load_mask
from fmrikit.io.nsd import NSDLayout, TrialDesign
from fmrikit.io.provenance import file_checksum, new_run_id, write_sidecar
from fmrikit.project import dataset_stem, ensure_dataset_description, subject_dir, subject_label

#: Name of the marker the simulator writes at the root of a simulated NSD tree.
SIMULATION_MARKER = "fmrikit_simulation.json"
#: NSD stores betas as int16 percent signal change x 300.
NSD_BETA_SCALE = 300.0


@dataclass(frozen=True)
class SessionPart:
    """Volumes of one betas file that belong to one session, in trial order."""

    path: Path
    rows: np.ndarray
    n_volumes: int  # volumes in the file (read once, with the grid checks)


@dataclass(frozen=True)
class StimulusSource:
    """Where the stimulus images are: an HDF5 brick (row = stim id) or files by stim id."""

    path: Path
    dataset: str = ""
    files: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PreprocessResult:
    """Paths and counts of one preprocessing run."""

    betas: Path
    mask: Path
    sidecar: Path
    picture: Path | None  # the map's PNG: a pycortex flatmap, else a nilearn mosaic
    n_trials: int
    n_voxels: int
    n_dropped: int


@one_run
def preprocess_nsd(nsd_root: str | os.PathLike, subject: int, *, root: str | os.PathLike | None = None,
                   betas: str = "betas_fithrf_GLMdenoise_RR", space: str = "func1pt8mm",
                   sessions: list[int] | None = None, roi: str = "nsdgeneral", labels: list[int] | None = None,
                   zscore_exclude_shared: bool = False, pycortex_subject: str | None = None,
                   pycortex_xfm: str | None = None, flatmap: bool = True, name: str | None = None,
                   overwrite: bool = False) -> PreprocessResult:
    """Preprocess one subject of an NSD tree into the project folder.

    Parameters
    ----------
    nsd_root : path-like
        Folder holding ``nsddata/``, ``nsddata_betas/`` and ``nsddata_stimuli/``.
    subject : int
        1-based subject number.
    root : path-like, optional
        Project folder (see :func:`fmrikit.project.project_root`).
    betas : str
        ``betas_assumehrf``, ``betas_fithrf`` or ``betas_fithrf_GLMdenoise_RR``.
    space : str
        ``func1pt8mm`` or ``func1mm`` (NSD's fsaverage betas: :func:`fmrikit.data.surface.preprocess_nsd_surface`).
    sessions : list of int, optional
        1-based sessions; default every session with a betas file.
    roi : str
        An NSD ROI name (``nsdgeneral``, ``lh.floc-faces``...), ``brainmask``, or a mask NIfTI path.
    labels : list of int, optional
        ROI values to keep; default every value > 0.
    zscore_exclude_shared : bool
        Fit z-score statistics on non-shared trials only.
    pycortex_subject, pycortex_xfm : str, optional
        pycortex subject and transform for the flatmap; read from a simulated tree's marker.
    flatmap : bool
        Draw the picture of the noise-ceiling (or mean-response) map, whose NIfTI is always written: a pycortex
        flatmap when a pycortex subject is known, else a nilearn mosaic on the subject's anatomy
        (``T1_to_<space>``, ``mean`` or ``brainmask`` of the NSD tree).
    name : str, optional
        Name of the voxel selection in the output file names (``roi-<name>``); default from
        ``roi`` and ``labels``; nsdgeneral gives the plain ``sub-NN_desc-preproc`` names.
    overwrite : bool
        Replace existing outputs.

    Returns
    -------
    PreprocessResult
    """
    layout = NSDLayout(nsd_root)
    layout._check_subject(subject)
    if sessions is None:
        sessions = layout.available_sessions(subject, space, betas)
        if not sessions:
            raise MissingInputError("no betas session files", path=layout.betas_dir(subject, space, betas),
                                    expected="betas_sessionNN.nii.gz or .hdf5")
    files = {s: layout.session_file(subject, space, betas, s) for s in sessions}
    grids = {s: _file_grid(p) for s, p in files.items()}

    if roi == "brainmask":
        mask_path = layout.brainmask_path(subject, space)
    elif roi.endswith((".nii", ".nii.gz")):
        mask_path = Path(roi)
    else:
        mask_path = layout.roi_path(subject, space, roi)
        if not mask_path.is_file():
            have = sorted(p.name.split(".nii")[0] for p in mask_path.parent.glob("*.nii*"))
            raise MissingInputError("ROI file not found", path=mask_path, expected=f"ROI '{roi}'",
                                    found=", ".join(have) or "no ROI files")
    mask, affine = load_mask(mask_path, labels)
    check_same_grid({str(mask_path): (mask.shape, affine),
                     **{str(files[s]): (g[1], g[2]) for s, g in grids.items()}})

    design = layout.trial_design(subject, {s: g[0] for s, g in grids.items()})
    stimuli = StimulusSource(layout.stimuli_path, "imgBrick")
    _check_stimuli(stimuli, design.stim_id)
    parts = {s: [SessionPart(files[s], np.arange(grids[s][0]), grids[s][0])] for s in sessions}

    ncsnr = None
    ncsnr_path = layout.ncsnr_path(subject, space, betas)
    if ncsnr_path.is_file():
        img = load_image(ncsnr_path, ndim=(3, 4))
        check_same_grid({str(mask_path): (mask.shape, affine), str(ncsnr_path): (img.shape, img.affine)})
        ncsnr = image_data(img, ncsnr_path, np.float32).reshape(img.shape[:3])

    marker = layout.root / SIMULATION_MARKER
    if marker.is_file() and pycortex_subject is None:
        sim = json.loads(marker.read_text())
        pycortex_subject, pycortex_xfm = sim.get("pycortex_subject"), sim.get("pycortex_xfm")

    params = dict(nsd_root=str(layout.root), subject=subject, betas=betas, space=space, sessions=sessions,
                  roi=roi, labels=labels, zscore_exclude_shared=zscore_exclude_shared,
                  pycortex_subject=pycortex_subject, pycortex_xfm=pycortex_xfm)
    inputs = [file_checksum(p) for p in (layout.expdesign_path, mask_path) if p.is_file()]
    if name is None:
        name = Path(roi).name.split(".nii")[0] if roi.endswith((".nii", ".nii.gz")) else roi
        name += "".join(f"l{v}" for v in labels or [])
    sources = [*files.values(), mask_path, layout.expdesign_path, stimuli.path, ncsnr_path]
    anatomy = layout.anatomy_path(subject, space)
    return _run(subject, design, parts, mask, affine, stimuli, root=root, ncsnr_volume=ncsnr, scale="auto", name=name,
                sources=sources, anatomy=anatomy,
                attrs={"nsd_root": str(layout.root.resolve()), "space": space, "betas_version": betas},
                zscore_exclude_shared=zscore_exclude_shared, pycortex=(pycortex_subject, pycortex_xfm),
                flatmap=flatmap, overwrite=overwrite, command="preprocess", params=params, inputs=inputs)


@one_run
def preprocess_files(betas_files: list[str | os.PathLike], trials_tsv: str | os.PathLike, subject: int, *,
                     mask: str | os.PathLike, images: str | os.PathLike, images_dataset: str = "imgBrick",
                     root: str | os.PathLike | None = None, labels: list[int] | None = None,
                     input_scale: float | str = "auto", zscore_exclude_shared: bool = False,
                     pycortex_subject: str | None = None, pycortex_xfm: str | None = None,
                     flatmap: bool = True, name: str | None = None, overwrite: bool = False) -> PreprocessResult:
    """Preprocess 4D NIfTI betas listed in a trial table (the generic path).

    Parameters
    ----------
    betas_files : list of path-like
        4D NIfTI files (X, Y, Z, T).
    trials_tsv : path-like
        Tab-separated, one row per trial in chronological order, columns ``file`` (name or
        path of a betas file), ``index_in_file`` (0-based volume), ``session`` (1-based),
        ``stimulus_id`` (0-based); optional ``shared`` (0/1) and ``image_file`` (name of the
        image in the ``images`` folder).
    subject : int
        Subject number for the output folder.
    mask : path-like
        3D mask or label NIfTI on the betas' grid.
    images : path-like
        HDF5 file whose ``images_dataset`` rows are the stimuli, or a folder of image files
        named in the ``image_file`` column.
    images_dataset : str
        Dataset name in the images HDF5.
    input_scale : float or str
        Divide stored values by this (a number > 0, or its text); "auto" uses 300 for integer files
        (NSD's convention), 1 for float files.
    Other parameters are as in :func:`preprocess_nsd`; without a pycortex subject the pictures are drawn
    over ``mask``.

    Returns
    -------
    PreprocessResult
    """
    import pandas as pd

    trials_tsv = Path(trials_tsv)
    if not trials_tsv.is_file():
        raise MissingInputError("trial table not found", path=trials_tsv, expected="a TSV file")
    try:
        table = pd.read_csv(trials_tsv, sep="\t")
    except (ValueError, pd.errors.ParserError) as exc:
        raise CorruptFileError("unreadable trial table", path=trials_tsv, found=str(exc)) from exc
    need = {"file", "index_in_file", "session", "stimulus_id"}
    if not need <= set(table.columns):
        raise DataValueError("trial table lacks columns", path=trials_tsv, expected=", ".join(sorted(need)),
                             found=", ".join(table.columns))
    _check_trial_table(table, trials_tsv)
    input_scale = _check_scale(input_scale)
    by_name = {}
    for f in betas_files:
        by_name[str(f)] = by_name[Path(f).name] = Path(f)
    unknown = sorted(set(table["file"].astype(str)) - set(by_name))
    if unknown:
        raise MissingInputError("trial table names a betas file that was not given", path=trials_tsv,
                                expected="one of " + ", ".join(sorted({p.name for p in by_name.values()})),
                                found=unknown[0])
    mask_arr, affine = load_mask(mask, labels)
    used = sorted({by_name[str(f)] for f in table["file"]})
    grids = {p: _file_grid(p) for p in used}
    check_same_grid({str(mask): (mask_arr.shape, affine), **{str(p): (g[1], g[2]) for p, g in grids.items()}})
    table = table.sort_values("session", kind="stable").reset_index(drop=True)
    paths = table["file"].astype(str).map(by_name)
    for p, g in grids.items():
        rows = table.loc[paths == p, "index_in_file"]
        if (rows >= g[0]).any() or (rows < 0).any():
            raise DataValueError("trial table points past the end of a betas file", path=p,
                                 expected=f"index_in_file < {g[0]}", found=str(int(rows.max())))

    parts: dict[int, list[SessionPart]] = {}
    for session, rows in table.groupby("session", sort=True):
        # consecutive rows of one file form one part, so files are read in trial order
        run_id = (paths[rows.index] != paths[rows.index].shift()).cumsum()
        parts[int(session)] = [SessionPart(paths[r.index[0]], r["index_in_file"].to_numpy(np.int64),
                                           grids[paths[r.index[0]]][0])
                               for _, r in rows.groupby(run_id, sort=False)]
    design = TrialDesign(
        stim_id=table["stimulus_id"].to_numpy(np.int64), session=table["session"].to_numpy(np.int16),
        index_in_session=table.groupby("session").cumcount().to_numpy(np.int64),
        shared=table["shared"].to_numpy(bool) if "shared" in table else np.zeros(len(table), bool))

    images = Path(images)
    if images.is_dir():
        if "image_file" not in table:
            raise DataValueError("an image folder needs an image_file column", path=trials_tsv,
                                 expected="column image_file", found=", ".join(table.columns))
        stimuli = StimulusSource(images, files=dict(zip(design.stim_id.tolist(), table["image_file"].astype(str))))
    else:
        stimuli = StimulusSource(images, images_dataset)
    _check_stimuli(stimuli, design.stim_id)

    params = dict(betas_files=[str(p) for p in used], trials=str(trials_tsv), subject=subject, mask=str(mask),
                  labels=labels, images=str(images), images_dataset=images_dataset, input_scale=input_scale,
                  zscore_exclude_shared=zscore_exclude_shared, pycortex_subject=pycortex_subject,
                  pycortex_xfm=pycortex_xfm)
    inputs = [file_checksum(trials_tsv), file_checksum(mask)]
    return _run(subject, design, parts, mask_arr, affine, stimuli, root=root, ncsnr_volume=None, scale=input_scale,
                name=name, anatomy=Path(mask), attrs={}, sources=[*used, trials_tsv, mask, images],
                zscore_exclude_shared=zscore_exclude_shared, pycortex=(pycortex_subject, pycortex_xfm),
                flatmap=flatmap, overwrite=overwrite, command="preprocess", params=params, inputs=inputs)


# -- the streaming core -------------------------------------------------------------------

def _run(subject, design: TrialDesign, parts: dict[int, list[SessionPart]], mask, affine,
         stimuli: StimulusSource, *, root, ncsnr_volume, scale, name, anatomy: Path | None, attrs,
         zscore_exclude_shared, pycortex, flatmap, overwrite, command, params, inputs,
         sources: list[Path]) -> PreprocessResult:
    import h5py

    from fmrikit.data.dataset import convention_attrs, conventions
    from fmrikit.viz.maps import MapTarget, save_voxel_map

    label, stem = subject_label(subject), dataset_stem(subject, name)
    names = {k: f"{stem}_{k}" for k in ("betas.h5", "betas.json", "mask.nii.gz")}
    map_name = f"{stem}_{'noiseceiling' if ncsnr_volume is not None else 'meanpsc'}"
    names["map_nii"] = map_name + ".nii.gz"
    if flatmap:
        names["map_png"] = map_name + ".png"
    # what the picture needs is checked before the heavy work, not after it
    target = MapTarget(tuple(mask.shape), affine, pycortex[0] or "", pycortex[1] or "",
                       str(anatomy.resolve()) if anatomy is not None else "").check(pycortex=flatmap)
    fitted_on = "its non-shared" if zscore_exclude_shared else "all its"
    normalisation = (f"z-score per voxel within each session over {fitted_on} trials (ddof 0), after dividing by "
                     f"{_scale_text(scale)}; constant voxels dropped")
    record = conventions(design.stim_id, design.session, design.shared, betas_version=attrs.get("betas_version", ""),
                         space=attrs.get("space", ""), normalisation=normalisation,
                         planned_repeats=design.planned_repeats)
    ijk = np.argwhere(mask).astype(np.int32)  # C order over (X, Y, Z)
    n_trials, n_vox = len(design.stim_id), len(ijk)
    out_dir = subject_dir(root, subject)
    claim_outputs([out_dir / n for n in names.values()], kind=command, overwrite=overwrite, inputs=sources, root=root)
    run_id = new_run_id()

    with staged_outputs(out_dir, list(names.values()), overwrite=overwrite, kind=command) as tmp:
        betas_tmp = tmp[names["betas.h5"]]
        constant = np.zeros(n_vox, dtype=bool)
        psc_sum = np.zeros(n_vox, dtype=np.float64)
        with h5py.File(betas_tmp, "w") as out:
            stream_sessions(out, design, sorted(parts), lambda s: _read_session(parts[s], ijk, scale, inputs),
                            n_vox, zscore_exclude_shared, label, constant, psc_sum,
                            where=lambda s: parts[s][0].path)
            _write_tables(out, design, ijk, subject, affine, mask.shape, stimuli, pycortex, ncsnr_volume)
            out.attrs.update(attrs)
            out.attrs.update({"anatomy": target.anatomy, **convention_attrs(record)})
        n_dropped = int(constant.sum())
        keep = ~constant
        if n_dropped:
            logger.warning("%s: dropped %d constant voxel(s) of %d", label, n_dropped, n_vox)
            drop_columns(betas_tmp, keep)
        ijk, psc = ijk[keep], (psc_sum / max(n_trials, 1))[keep]

        from fmrikit.io.nifti import save_nifti
        kept_mask = np.zeros(mask.shape, dtype=np.uint8)
        kept_mask[tuple(ijk.T)] = 1
        save_nifti(kept_mask, affine, tmp[names["mask.nii.gz"]])
        if ncsnr_volume is not None:
            nc = ncsnr_volume[tuple(ijk.T)].astype(np.float64) ** 2
            values, title, units = 100 * nc / (nc + 1 / 3), f"{label} noise ceiling (3 trials)", "noise ceiling (%)"
        else:
            values, title, units = psc, f"{label} mean response", "mean response (% signal change)"
        drawn = save_voxel_map(values, ijk, target, nifti_path=tmp[names["map_nii"]],
                               png_path=tmp[names["map_png"]] if flatmap else None, title=title, units=units,
                               vmin=0.0 if ncsnr_volume is not None else None)
        extra = {"n_trials": n_trials, "n_voxels": int(len(ijk)), "n_dropped_constant": n_dropped,
                 "n_sessions": len(parts), "n_shared_trials": int(design.shared.sum()), "conventions": record,
                 "pictures": {names["map_png"]: drawn["picture"]} if flatmap else {}}
        if flatmap and "png" not in drawn:
            del names["map_png"]
        write_sidecar(tmp[names["betas.json"]], command=command, parameters=params, inputs=inputs,
                      run_id=run_id, outputs=sorted(names.values()), extra=extra,
                      root=root, folder=out_dir)
    ensure_dataset_description(root)
    return PreprocessResult(betas=out_dir / names["betas.h5"], mask=out_dir / names["mask.nii.gz"],
                            sidecar=out_dir / names["betas.json"],
                            picture=out_dir / names["map_png"] if "map_png" in names else None,
                            n_trials=n_trials, n_voxels=int(len(ijk)), n_dropped=n_dropped)


def stream_sessions(out, design: TrialDesign, sessions: list[int], read, n_columns: int, zscore_exclude_shared: bool,
                    label: str, constant: np.ndarray, psc_sum: np.ndarray, where) -> None:
    """Write the z-scored betas of each session, one session in memory at a time, into ``out["betas"]``.

    Parameters
    ----------
    out : h5py.File
    design : TrialDesign
    sessions : list of int
        In chronological order.
    read : callable
        ``read(session)`` -> float32 (n_trials_of_session, n_columns) in percent signal change.
    n_columns : int
    zscore_exclude_shared : bool
    label : str
        Progress label.
    constant, psc_sum : ndarray, shape (n_columns,)
        Updated in place: columns constant in some session; sum of the scaled betas.
    where : callable
        ``where(session)`` -> the file named in errors.
    """
    n_trials = len(design.stim_id)
    rows_per_chunk = int(max(1, min(n_trials, 2**21 // (4 * n_columns))))
    ds = out.create_dataset("betas", (n_trials, n_columns), dtype=np.float32, chunks=(rows_per_chunk, n_columns))
    row = 0
    for session in track(sessions, f"preprocess {label}"):
        sel = design.session == session
        x = read(session)
        psc_sum += x.sum(0, dtype=np.float64)
        fit = x[~design.shared[sel]] if zscore_exclude_shared else x
        if len(fit) < 2:
            raise DataValueError("too few trials to z-score a session", path=where(session),
                                 expected=">= 2 trials" + (" not shared" if zscore_exclude_shared else ""),
                                 found=f"{len(fit)} in session {session}")
        constant |= fit.max(0) == fit.min(0)  # float32 rounding can leave std > 0
        mean = fit.mean(0)
        fit -= mean  # x itself when every trial is fitted
        std = np.sqrt(np.einsum("ij,ij->j", fit, fit) / len(fit))  # one pass, no temporaries
        if fit is not x:
            x -= mean
        constant |= std == 0
        x /= np.where(std == 0, 1, std)
        ds[row:row + len(x)] = x
        row += len(x)
        del x, fit  # before the next session is read: one session in memory at a time


def _scale_text(scale) -> str:
    if scale == "auto":
        return f"{NSD_BETA_SCALE:g} for integer betas (NSD's int16 percent signal change x 300), 1 for float betas"
    return f"{float(scale):g}"


def _read_session(session_parts: list[SessionPart], ijk: np.ndarray, scale, inputs: list) -> np.ndarray:
    """Masked betas of one session, float32 (n_trials, n_voxels), scaled to % signal change."""
    blocks = []
    for part in session_parts:
        in_order = np.array_equal(part.rows, np.arange(part.n_volumes))
        if part.path.suffix in (".hdf5", ".h5"):
            values = read_masked_betas_h5(part.path, ijk)
            inputs.append(file_checksum(part.path))
            x, dtype = as_float32_rows(values if in_order else values[part.rows]), values.dtype
        else:
            wanted = np.zeros(part.n_volumes, dtype=bool)
            wanted[part.rows] = True
            checksum: dict = {}
            x, filled, dtype = np.empty((int(wanted.sum()), len(ijk)), np.float32), 0, None
            for start, block in iter_masked_volumes(part.path, ijk, checksum=checksum):
                keep = wanted[start:start + len(block)]
                kept = block if keep.all() else block[keep]
                x[filled:filled + len(kept)] = kept  # file order, as float32
                filled, dtype = filled + len(kept), block.dtype
            inputs.append(checksum)
            if not in_order:  # rows may repeat or be out of order: map file order back to the part's order
                x = x[np.searchsorted(np.nonzero(wanted)[0], part.rows)]
        integer = np.issubdtype(dtype, np.integer)
        divisor = (NSD_BETA_SCALE if integer else 1.0) if scale == "auto" else float(scale)
        if not integer and not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).any(1).sum())
            raise DataValueError("betas contain NaN or Inf", path=part.path, expected="finite values",
                                 found=f"non-finite values in {bad} trial(s)")
        x /= divisor
        blocks.append(x)
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def _check_trial_table(table, path: Path) -> None:
    """Make the integer columns of a trial table integers (in place), refusing text, fractions, values out of range
    and a betas volume listed twice; lines are counted from 1, the header being line 1."""
    import pandas as pd

    for column, low, high in (("index_in_file", 0, None), ("session", 1, None), ("stimulus_id", 0, None),
                              ("shared", 0, 1)):
        if column not in table:
            continue
        numeric = pd.to_numeric(table[column], errors="coerce")
        odd = table[column][numeric.isna() | (numeric % 1 != 0)]
        if len(odd):
            raise DataValueError(f"trial table column {column} must hold integers", path=path, expected="integers",
                                 found=f"{odd.iloc[0]!r} on line {odd.index[0] + 2}")
        out = numeric[(numeric < low) | (numeric > high if high is not None else False)]
        if len(out):
            raise DataValueError(f"trial table column {column} out of range", path=path,
                                 expected=f"values from {low}" + (f" to {high}" if high is not None else ""),
                                 found=f"{out.iloc[0]:g} on line {out.index[0] + 2}")
        table[column] = numeric.astype(np.int64)
    again = table.duplicated(["file", "index_in_file"])
    if again.any():
        line = table.index[again][0]
        row = table.loc[line]
        first = table.index[(table["file"] == row["file"]) & (table["index_in_file"] == row["index_in_file"])][0]
        raise DataValueError("trial table lists one betas volume twice", path=path,
                             expected="one line per (file, index_in_file)",
                             found=f"{row['file']} volume {row['index_in_file']} on lines {first + 2} and {line + 2}")


def _check_scale(scale: float | str) -> float | str:
    """``"auto"``, or a finite divisor > 0 (given as a number or text)."""
    if scale == "auto":
        return scale
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise InputError("--input-scale must be auto or a number", expected="auto or a number > 0",
                         found=repr(scale)) from None
    return check_number("--input-scale", value, low=0, low_open=True)


def _file_grid(path: Path) -> tuple[int, tuple[int, int, int], np.ndarray | None]:
    """Number of volumes, (X, Y, Z) grid and affine (None for HDF5) of a betas file."""
    if path.suffix in (".hdf5", ".h5"):
        n, shape = h5_betas_shape(path)
        return n, shape, None
    img = load_image(path, ndim=4)
    if np.dtype(img.get_data_dtype()).kind not in "iuf":
        raise DataValueError("betas must be real numbers", path=path, expected="integer or float voxels",
                             found=str(np.dtype(img.get_data_dtype())))
    return img.shape[3], img.shape[:3], img.affine


def _check_stimuli(stimuli: StimulusSource, stim_id: np.ndarray) -> None:
    """Refuse a run whose listed stimuli have no image."""
    if stimuli.files:
        missing = [f for f in stimuli.files.values() if not (stimuli.path / f).is_file()]
        if missing:
            raise MissingInputError(f"images missing for {len(missing)} listed stimuli",
                                    path=stimuli.path / missing[0], expected="an image file", found="no file")
        for name in sorted(set(stimuli.files.values())):
            check_image(stimuli.path / name)
        return
    with open_h5(stimuli.path, stimuli.dataset) as f:
        n_images = f[stimuli.dataset].shape[0]
    if stim_id.max() >= n_images:
        n_bad = int(np.unique(stim_id[stim_id >= n_images]).size)
        raise MissingInputError(f"images missing for {n_bad} listed stimuli", path=stimuli.path,
                                expected=f"row {int(stim_id.max())} in '{stimuli.dataset}'",
                                found=f"{n_images} images")


def _write_tables(out, design: TrialDesign, ijk, subject, affine, volume_shape, stimuli: StimulusSource,
                  pycortex, ncsnr_volume) -> None:
    import h5py

    out.create_dataset("trials/stim_id", data=design.stim_id.astype(np.int64))
    out.create_dataset("trials/session", data=design.session.astype(np.int16))
    out.create_dataset("trials/shared", data=design.shared.astype(bool))
    out.create_dataset("trials/index_in_session", data=design.index_in_session.astype(np.int64))
    out.create_dataset("voxels/ijk", data=ijk.astype(np.int32))
    if ncsnr_volume is not None:
        out.create_dataset("voxels/ncsnr", data=ncsnr_volume[tuple(ijk.T)].astype(np.float32))
    if stimuli.files:
        ids = np.array(sorted(stimuli.files), dtype=np.int64)
        out.create_dataset("stimuli/stim_id", data=ids)
        out.create_dataset("stimuli/file", data=[stimuli.files[i] for i in ids], dtype=h5py.string_dtype())
    out.attrs.update({
        "subject": int(subject), "affine": np.asarray(affine, dtype=np.float64),
        "volume_shape": np.asarray(volume_shape, dtype=np.int64),
        "stimuli_path": str(Path(stimuli.path).resolve()), "stimuli_dataset": stimuli.dataset,
        "pycortex_subject": pycortex[0] or "", "pycortex_xfm": pycortex[1] or "",
    })


def drop_columns(path: Path, keep: np.ndarray) -> None:
    """Remove columns (voxels or vertices) from a staged dataset, copying it in row blocks."""
    import h5py

    tmp = path.with_name(path.name + ".drop")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        old = src["betas"]
        n_keep = int(keep.sum())
        if n_keep == 0:
            raise DataValueError("every selected voxel is constant", path=path, expected="varying voxels",
                                 found=f"{len(keep)} constant")
        rows = int(max(1, min(old.shape[0], 2**21 // (4 * n_keep))))
        new = dst.create_dataset("betas", (old.shape[0], n_keep), dtype=np.float32, chunks=(rows, n_keep))
        for start in range(0, old.shape[0], 1024):
            new[start:start + 1024] = old[start:start + 1024][:, keep]
        for name in ("trials/stim_id", "trials/session", "trials/shared", "trials/index_in_session",
                     "stimuli/stim_id", "stimuli/file"):
            if name in src:
                src.copy(src[name], dst, name=name)
        for group in ("voxels", "vertices"):  # the column tables of either form
            for name, table in src.get(group, {}).items():
                dst.create_dataset(f"{group}/{name}", data=table[:][keep])
        dst.attrs.update(dict(src.attrs))
    os.replace(tmp, path)


def parse_sessions(text: str) -> list[int]:
    """Parse a session list such as ``1-40``, ``1,3,5`` or ``1-4,7``.

    Raises
    ------
    InputError
    """
    return parse_ranges(text, "--sessions", minimum=1)


def parse_ranges(text: str, what: str, minimum: int = 0) -> list[int]:
    """Sorted unique integers of a list of values and ranges such as ``0-9,20``.

    Parameters
    ----------
    text : str
    what : str
        What the list is, for the error message (``"session list"``, ``"trial indices"``...).
    minimum : int
        Smallest value allowed.

    Raises
    ------
    InputError
        Unreadable text, an empty list or a value below ``minimum``.
    """
    out: list[int] = []
    try:
        for piece in text.split(","):
            piece = piece.strip()
            if "-" in piece[1:]:
                lo, hi = (int(v) for v in piece.split("-", 1))
                out.extend(range(lo, hi + 1))
            elif piece:
                out.append(int(piece))
    except ValueError:
        raise InputError(f"cannot parse {what}", expected=f"values from {minimum} and ranges such as "
                         f"{minimum}-{minimum + 9},{minimum + 20}", found=repr(text)) from None
    if not out or min(out) < minimum:
        raise InputError(f"cannot parse {what}", expected=f"values from {minimum} and ranges such as "
                         f"{minimum}-{minimum + 9},{minimum + 20}", found=repr(text))
    return sorted(set(out))
