"""``fmrikit simulate`` and ``fmrikit preprocess``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli import options as o
from fmrikit.cli._common import call, err_console, int_list, out_console
from fmrikit.data.world.config import SimulationConfig as C


def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to create for the simulated NSD tree.")],
    subjects: Annotated[int, typer.Option(min=1, help="Number of subjects.")] = C.n_subjects,
    sessions: Annotated[str, typer.Option(help="Sessions per subject; a list such as 4,4,3 gives each its own.")] = "4",
    trials_per_session: Annotated[int, typer.Option(min=6, help="Trials per session.")] = C.trials_per_session,
    runs: Annotated[int, typer.Option(min=1, help="Runs per session.")] = C.runs_per_session,
    shared: Annotated[int, typer.Option(min=1, help="Images every subject sees (three trials each, in the sessions "
                                                    "every subject has).")] = C.n_shared,
    image_size: Annotated[int, typer.Option(min=16, help="Stimulus size in pixels.")] = C.image_size,
    noise: Annotated[float, typer.Option(min=0.0, help="Typical trial noise sd (% signal change); at 1.5 the 3-trial "
                                                       "noise ceilings of visual voxels reach about 70 %.")] = C.noise,
    betas_format: Annotated[str, typer.Option("--format", help="nifti, hdf5 or both; a list such as nifti,hdf5 "
                                                                "cycles over subjects.")] = "nifti",
    seed: Annotated[int, typer.Option(help="Random seed (the world).")] = C.seed,
    noise_free: Annotated[bool, typer.Option(help="Write the same world with its noise-free responses as betas "
                                                  "(oracle runs).")] = False,
    overwrite: o.Overwrite = False,
) -> None:
    """Write a miniature NSD-format world with known ground truth."""
    from fmrikit.data.simulate import simulate as run
    from fmrikit.data.world.config import SimulationConfig

    config = SimulationConfig(n_subjects=subjects, sessions=int_list(sessions, "--sessions"),
                              trials_per_session=trials_per_session,
                              runs_per_session=runs, n_shared=shared, image_size=image_size, noise=noise,
                              formats=[f.strip() for f in betas_format.split(",")], seed=seed, noise_free=noise_free)
    path = call(run, out, config, overwrite=overwrite)
    out_console.print(f"simulated NSD tree: {path}")


def preprocess(
    nsd_root: Annotated[Optional[Path], typer.Option(help="NSD tree (holds nsddata/, nsddata_betas/).")] = None,
    subject: o.Subject = 1,
    betas: Annotated[str, typer.Option(help="betas_assumehrf | betas_fithrf | betas_fithrf_GLMdenoise_RR")]
    = "betas_fithrf_GLMdenoise_RR",
    space: Annotated[str, typer.Option(help="func1pt8mm | func1mm | fsaverage (NSD's surface betas, both "
                                             "hemispheres)")] = "func1pt8mm",
    sessions: Annotated[Optional[str], typer.Option(help="Sessions, e.g. 1-40 or 1,3 [default: all found].")]
    = None,
    roi: Annotated[str, typer.Option(help="NSD ROI name (nsdgeneral, lh.floc-faces...), brainmask, or a mask "
                                          "NIfTI path (fsaverage: a .mgz/.gii label file of one hemisphere; "
                                          "Algonauts: an ROI class).")] = "nsdgeneral",
    labels: Annotated[Optional[str], typer.Option(help="ROI values to keep, e.g. 1,2 [default: > 0].")] = None,
    zscore_exclude_shared: Annotated[bool, typer.Option(help="Fit z-score statistics on non-shared trials.")]
    = False,
    algonauts_root: Annotated[Optional[Path], typer.Option(help="Algonauts 2023 folder (holds subjNN/): fsaverage "
                                                                 "fMRI already z-scored and averaged.")] = None,
    betas_file: Annotated[Optional[list[Path]], typer.Option(help="Generic path: a 4D NIfTI (repeatable).")]
    = None,
    trials: Annotated[Optional[Path], typer.Option(help="Generic path: TSV with file, index_in_file, session, "
                                                        "stimulus_id [, shared, image_file].")] = None,
    images: Annotated[Optional[Path], typer.Option(help="Generic path: image HDF5 or folder.")] = None,
    images_dataset: Annotated[str, typer.Option(help="Dataset in the image HDF5.")] = "imgBrick",
    mask: Annotated[Optional[Path], typer.Option(help="Generic path: mask or label NIfTI.")] = None,
    input_scale: Annotated[str, typer.Option(help="Divide stored values by this; auto = 300 for integer "
                                                  "files, 1 for float.")] = "auto",
    pycortex_subject: Annotated[Optional[str], typer.Option(help="pycortex subject for the flatmap.")] = None,
    pycortex_xfm: Annotated[Optional[str], typer.Option(help="pycortex transform for the flatmap.")] = None,
    flatmap: Annotated[bool, typer.Option(help="Draw the map's picture: a pycortex flatmap with a pycortex subject, "
                                               "else a nilearn mosaic on the subject's anatomy.")] = True,
    name: Annotated[Optional[str], typer.Option(help="Name of the voxel selection in output names (roi-NAME) "
                                                     "[default: from --roi; none for nsdgeneral].")] = None,
    root: o.Root = None,
    overwrite: o.Overwrite = False,
) -> None:
    """Z-score single-trial betas per session into the subject's dataset file."""
    from fmrikit.data import preprocess as pp

    common = dict(root=root, labels=int_list(labels, "--labels"), zscore_exclude_shared=zscore_exclude_shared,
                  pycortex_subject=pycortex_subject, pycortex_xfm=pycortex_xfm, flatmap=flatmap, name=name,
                  overwrite=overwrite)
    surface = dict(root=root, labels=int_list(labels, "--labels"), flatmap=flatmap, name=name, overwrite=overwrite)
    is_surface = algonauts_root is not None or (nsd_root is not None and space == "fsaverage")
    if is_surface and (pycortex_subject or pycortex_xfm):
        err_console.print("[bold red]error:[/] --pycortex-subject/--pycortex-xfm apply to volume data; surface maps "
                          "are drawn on fsaverage")
        raise typer.Exit(2)
    if algonauts_root is not None:
        from fmrikit.data.surface import preprocess_algonauts

        result = call(preprocess_algonauts, algonauts_root, subject, roi=roi, **surface)
    elif nsd_root is not None and space == "fsaverage":
        from fmrikit.data.surface import preprocess_nsd_surface

        session_list = call(pp.parse_sessions, sessions) if sessions else None
        result = call(preprocess_nsd_surface, nsd_root, subject, betas=betas, sessions=session_list, roi=roi,
                      zscore_exclude_shared=zscore_exclude_shared, **surface)
    elif nsd_root is not None:
        session_list = call(pp.parse_sessions, sessions) if sessions else None
        result = call(pp.preprocess_nsd, nsd_root, subject, betas=betas, space=space, sessions=session_list, roi=roi,
                      **common)
    elif trials is not None and betas_file and images is not None and mask is not None:
        result = call(pp.preprocess_files, betas_file, trials, subject, mask=mask, images=images,
                      images_dataset=images_dataset, input_scale=input_scale, **common)
    else:
        err_console.print("[bold red]error:[/] give --nsd-root, --algonauts-root, or --betas-file, --trials, --images "
                          "and --mask")
        raise typer.Exit(2)
    columns = "vertices" if is_surface else "voxels"
    out_console.print(f"{result.betas}: {result.n_trials} trials x {result.n_voxels} {columns}"
                      + (f" ({result.n_dropped} constant {columns} dropped)" if result.n_dropped else ""))
