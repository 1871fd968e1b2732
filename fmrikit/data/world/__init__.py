"""The simulated world's physiology (world version 2): anatomy layout, responses and noise.

:mod:`~fmrikit.data.world.params` holds every number and its source;
:mod:`~fmrikit.data.world.atlas` draws S1's visual areas and category regions on the flatmap;
:mod:`~fmrikit.data.world.layout` places them on one simulated subject (warp, pRFs, tuning, SNR);
:mod:`~fmrikit.data.world.model` computes noise-free responses to images;
:mod:`~fmrikit.data.world.noise` draws trial noise; :mod:`~fmrikit.data.world.truth` reads the ground
truth back. :func:`fmrikit.data.simulate.simulate` writes all of it in NSD's formats.
"""

WORLD_VERSION = 2
