"""pycortex access: its import (quiet), the flatmap height every cache shares, and the subject / transform check.

pycortex prints while it builds its caches; its output goes to the debug log so the library stays silent.
"""

from __future__ import annotations

import contextlib
import io

from fmrikit._logging import logger
from fmrikit.errors import GridMismatchError, InputError


#: Flatmap height in pixels; one value so pycortex's caches are built once and shared.
FLATMAP_HEIGHT = 512


def check_flatmap_target(subject: str, xfm: str, volume_shape: tuple[int, ...]):
    """Check that a pycortex subject and transform exist and match the grid (X, Y, Z).

    Returns
    -------
    module
        The imported ``cortex`` package.

    Raises
    ------
    InputError, GridMismatchError
    """
    cortex = import_cortex()
    if subject not in cortex.db.subjects:
        raise InputError("unknown pycortex subject", path=cortex.database.default_filestore,
                         expected="one of " + ", ".join(sorted(cortex.db.subjects)), found=subject)
    try:
        ref_shape = cortex.db.get_xfm(subject, xfm).shape  # (Z, Y, X)
    except Exception as exc:
        raise InputError("unknown pycortex transform", expected=f"a transform of {subject}",
                         found=f"{xfm} ({exc})") from exc
    if tuple(ref_shape)[::-1] != tuple(volume_shape[:3]):
        raise GridMismatchError("volume does not match the pycortex transform's reference grid",
                                path=f"{subject}/{xfm}", expected=f"(X, Y, Z) {tuple(ref_shape)[::-1]}",
                                found=str(tuple(volume_shape[:3])))
    return cortex


def import_cortex():
    with quiet_pycortex():
        import cortex
    return cortex


@contextlib.contextmanager
def quiet_pycortex():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    for line in buf.getvalue().splitlines():
        if line.strip():
            logger.debug("pycortex: %s", line)
