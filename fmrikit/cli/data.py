"""``fmrikit simulate`` and ``fmrikit preprocess``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fmrikit.cli import options as o
from fmrikit.cli._common import call, err_console, int_list, out_console


def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to create for the simulated NSD tree.")],
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 4,
    sessions: Annotated[str, typer.Option(help="Sessions per subject; a list such as 4,4,3 gives each its own.")] = "4",
    trials_per_session: Annotated[int, typer.Option(help="Trials per session.")] = 150,
    runs: Annotated[int, typer.Option(help="Runs per session.")] = 5,
    shared: Annotated[int, typer.Option(help="Images every subject sees.")] = 60,
    image_size: Annotated[int, typer.Option(help="Stimulus size in pixels.")] = 64,
    noise: Annotated[float, typer.Option(help="Trial noise sd (% signal change; signal sd is 0.5-1.5).")] = 1.5,
    betas_format: Annotated[str, typer.Option("--format", help="nifti, hdf5 or both; a list such as nifti,hdf5 "
                                                                "cycles over subjects.")] = "nifti",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    overwrite: o.Overwrite = False,
) -> None:
    """Write a miniature NSD-format world with known ground truth."""
    from fmrikit.data.simulate import SimulationConfig, simulate as run

    config = SimulationConfig(n_subjects=subjects, sessions=int_list(sessions), trials_per_session=trials_per_session,
                              runs_per_session=runs, n_shared=shared, image_size=image_size, noise=noise,
                              formats=[f.strip() for f in betas_format.split(",")], seed=seed)
    path = call(run, out, config, overwrite=overwrite)
    out_console.print(f"simulated NSD tree: {path}")


def preprocess(
    nsd_root: Annotated[Optional[Path], typer.Option(help="NSD tree (holds nsddata/, nsddata_betas/).")] = None,
    subject: Annotated[int, typer.Option(help="Subject number (1-based).")] = 1,
    betas: Annotated[str, typer.Option(help="betas_assumehrf | betas_fithrf | betas_fithrf_GLMdenoise_RR")]
    = "betas_fithrf_GLMdenoise_RR",
    space: Annotated[str, typer.Option(help="func1pt8mm | func1mm")] = "func1pt8mm",
    sessions: Annotated[Optional[str], typer.Option(help="Sessions, e.g. 1-40 or 1,3 [default: all found].")]
    = None,
    roi: Annotated[str, typer.Option(help="NSD ROI name (nsdgeneral, lh.floc-faces...), brainmask, or a mask "
                                          "NIfTI path.")] = "nsdgeneral",
    labels: Annotated[Optional[str], typer.Option(help="ROI values to keep, e.g. 1,2 [default: > 0].")] = None,
    zscore_exclude_shared: Annotated[bool, typer.Option(help="Fit z-score statistics on non-shared trials.")]
    = False,
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

    common = dict(root=root, labels=int_list(labels), zscore_exclude_shared=zscore_exclude_shared,
                  pycortex_subject=pycortex_subject, pycortex_xfm=pycortex_xfm, flatmap=flatmap, name=name,
                  overwrite=overwrite)
    if nsd_root is not None:
        session_list = call(pp.parse_sessions, sessions) if sessions else None
        result = call(pp.preprocess_nsd, nsd_root, subject, betas=betas, space=space, sessions=session_list, roi=roi,
                      **common)
    elif trials is not None and betas_file and images is not None and mask is not None:
        scale = input_scale if input_scale == "auto" else float(input_scale)
        result = call(pp.preprocess_files, betas_file, trials, subject, mask=mask, images=images,
                      images_dataset=images_dataset, input_scale=scale, **common)
    else:
        err_console.print("[bold red]error:[/] give --nsd-root, or --betas-file, --trials, --images and --mask")
        raise typer.Exit(2)
    out_console.print(f"{result.betas}: {result.n_trials} trials x {result.n_voxels} voxels"
                      + (f" ({result.n_dropped} constant voxels dropped)" if result.n_dropped else ""))
