"""fmrikit: voxel selection, decoding, encoding, reconstruction and evaluation for visual fMRI.

Importing the package is cheap: torch, diffusers and pycortex are imported only by the
functions that need them.
"""

from fmrikit._version import __version__
from fmrikit.errors import FmrikitError

__all__ = ["__version__", "FmrikitError"]
