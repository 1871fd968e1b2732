"""Sizes and noise of a simulated world (importable without numpy's heavier users: the CLI reads its defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fmrikit.checks import check_number, check_option
from fmrikit.data.world import params as P
from fmrikit.errors import InputError


@dataclass
class SimulationConfig:
    """Sizes and noise of a simulated world.

    Attributes
    ----------
    n_subjects : int
    sessions : list of int
        Sessions per subject (a shorter list repeats its last value).
    trials_per_session : int
    runs_per_session : int
    n_shared : int
        Images every subject sees, three times each within the sessions every subject has.
    image_size : int
        Stimulus width and height (pixels).
    noise : float
        Typical trial noise sd in % signal change; at the default 1.5 the true ncsnr of visual
        voxels runs from 0 to about 0.95 (3-trial noise ceilings up to about 70 %).
    formats : list of str
        Betas format per subject, cycled: "nifti", "hdf5" or "both".
    seed : int
        The world: stimuli, design, layout and noise.
    noise_free : bool
        Write the noise-free responses as betas (no trial noise, no global component, no
        session drift); everything else is the world of the same seed.
    noise_fwhm : float
        Spatial smoothness of the noise (voxels FWHM, 0 to 2).
    """

    n_subjects: int = 4
    sessions: list[int] = field(default_factory=lambda: [4])
    trials_per_session: int = 150
    runs_per_session: int = 5
    n_shared: int = 60
    image_size: int = 64
    noise: float = 1.5
    formats: list[str] = field(default_factory=lambda: ["nifti"])
    seed: int = 0
    noise_free: bool = False
    noise_fwhm: float = P.NOISE_FWHM_VOXELS

    def sessions_of(self, subject: int) -> int:
        return self.sessions[min(subject - 1, len(self.sessions) - 1)]

    def format_of(self, subject: int) -> str:
        return self.formats[(subject - 1) % len(self.formats)]

    def validate(self) -> None:
        """Refuse values out of range (NaN and infinities included), naming the command-line option.

        Raises
        ------
        InputError
        """
        check_number("--subjects", self.n_subjects, low=1)
        if not self.sessions:
            raise InputError("--sessions lists no session", expected="a count per subject, e.g. 4 or 4,4,3",
                             found="none")
        check_number("--sessions", min(self.sessions), low=1)
        check_number("--trials-per-session", self.trials_per_session, low=6)
        check_number("--runs", self.runs_per_session, low=1)
        check_number("--image-size", self.image_size, low=16)
        check_number("--noise", self.noise, low=0, low_open=True)  # noise_free writes none
        for f in self.formats:
            check_option("betas format", f, ("nifti", "hdf5", "both"))
        n_per = max(self.sessions) * self.trials_per_session // 3
        check_number("--shared", self.n_shared, low=0, high=n_per, low_open=True, high_open=True)
        first = min(self.sessions) * self.trials_per_session
        if 3 * self.n_shared > first:
            raise InputError("the shared images' three trials must fit in the sessions every subject has",
                             expected=f"3 x n_shared <= {first} trials ({min(self.sessions)} sessions)",
                             found=f"{3 * self.n_shared} shared trials")
        check_number("noise smoothness (voxels FWHM)", self.noise_fwhm, low=0, high=2)
