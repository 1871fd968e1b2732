"""NSD's fsaverage files: per-hemisphere betas and ncsnr, the fsaverage atlases and surfaces.

``nsddata_betas/ppdata/subjNN/fsaverage/<betas>/{lh,rh}.betas_sessionNN.mgh``  (163842, 1, 1, n_trials)
``nsddata_betas/ppdata/subjNN/fsaverage/<betas>/{lh,rh}.ncsnr.mgh``            (163842, 1, 1, 1)
``nsddata/freesurfer/fsaverage/label/{lh,rh}.<atlas>.mgz`` and ``<atlas>.mgz.ctab``
``nsddata/freesurfer/fsaverage/surf/{lh,rh}.<surface>``                     (FreeSurfer geometry)
"""

from __future__ import annotations

from pathlib import Path

from fmrikit.errors import MissingInputError
from fmrikit.io.nsd import BETA_VERSIONS, NSDLayout
from fmrikit.io.surface import HEMIS

#: The value of ``--space`` that selects NSD's surface betas.
SURFACE_SPACE = "fsaverage"


def surface_betas_dir(layout: NSDLayout, subject: int, betas: str) -> Path:
    from fmrikit.checks import check_option

    check_option("betas version", betas, BETA_VERSIONS)
    return layout.root / f"nsddata_betas/ppdata/subj{subject:02d}/{SURFACE_SPACE}/{betas}"


def surface_session_files(layout: NSDLayout, subject: int, betas: str, session: int) -> dict[str, Path]:
    """Both hemispheres' betas files of one session.

    Raises
    ------
    MissingInputError
        A hemisphere's file is missing.
    """
    folder = surface_betas_dir(layout, subject, betas)
    files = {h: folder / f"{h}.betas_session{session:02d}.mgh" for h in HEMIS}
    for path in files.values():
        if not path.is_file():
            if not folder.is_dir():
                layout._check_subject(subject)
                raise MissingInputError("surface betas folder not found", path=folder,
                                        expected=f"{betas} betas on fsaverage")
            raise MissingInputError("session file not found", path=path,
                                    expected=f"session {session} of both hemispheres",
                                    found=f"sessions {available_surface_sessions(layout, subject, betas)}")
    return files


def available_surface_sessions(layout: NSDLayout, subject: int, betas: str) -> list[int]:
    """Sessions with a betas file of both hemispheres, sorted."""
    folder = surface_betas_dir(layout, subject, betas)
    found = {}
    for hemi in HEMIS:
        found[hemi] = set()
        for p in folder.glob(f"{hemi}.betas_session*.mgh"):
            digits = p.name[len(f"{hemi}.betas_session"):-len(".mgh")]
            if digits.isdigit():
                found[hemi].add(int(digits))
    return sorted(found["lh"] & found["rh"])


def surface_ncsnr_files(layout: NSDLayout, subject: int, betas: str) -> dict[str, Path]:
    folder = surface_betas_dir(layout, subject, betas)
    return {h: folder / f"{h}.ncsnr.mgh" for h in HEMIS}


def fsaverage_dir(layout: NSDLayout) -> Path:
    return layout.root / "nsddata/freesurfer/fsaverage"


def fsaverage_label_path(layout: NSDLayout, hemi: str, atlas: str) -> Path:
    return fsaverage_dir(layout) / "label" / f"{hemi}.{atlas}.mgz"


def fsaverage_ctab_path(layout: NSDLayout, atlas: str) -> Path:
    return fsaverage_dir(layout) / "label" / f"{atlas}.mgz.ctab"


def fsaverage_surface_path(layout: NSDLayout, hemi: str, surface: str) -> Path:
    return fsaverage_dir(layout) / "surf" / f"{hemi}.{surface}"


def fsaverage_atlases(layout: NSDLayout) -> list[str]:
    """Atlases on fsaverage with both hemispheres' files and a colour table."""
    names = sorted(p.name[3:-len(".mgz")] for p in (fsaverage_dir(layout) / "label").glob("lh.*.mgz"))
    return [n for n in names if fsaverage_label_path(layout, "rh", n).is_file()
            and fsaverage_ctab_path(layout, n).is_file()]
