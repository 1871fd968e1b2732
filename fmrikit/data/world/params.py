"""Every number of the simulated world, with its source.

Visual field
    NSD images span 8.4 x 8.4 degrees (Allen et al. 2022, Nat Neurosci 25:116), so the image
    half-width is :data:`IMAGE_HALF_DEG` = 4.2 deg.
Retinotopy (V1, V2, V3, hV4, V3A/B)
    Each area holds a mirrored hemifield map; polar angle reverses at every area border
    (Sereno et al. 1995, Science 268:889; Wandell, Dumoulin & Brewer 2007, Neuron 56:366); hV4
    covers the full contralateral hemifield (Winawer et al. 2010, J Vis 10(5):1).
    Eccentricity grows away from the occipital pole with the log-like cortical magnification of
    Horton & Hoyt 1991 (Arch Ophthalmol 109:816), M(E) = 17.3 / (E + 0.75) mm/deg, hence cortical
    distance d(E) proportional to ln(1 + E / 0.75); each area's band spans 0 to
    :data:`MAX_ECC_DEG` (a modelling choice: S1's drawn areas reach beyond the stimulus).
    pRF size (the sd of the CSS model's point response, sigma / sqrt(n)) grows linearly with
    eccentricity and along the hierarchy (Dumoulin & Wandell 2008, NeuroImage 39:647; Kay et al.
    2013, J Neurophysiol 110:481): :data:`PRF_SIZE` holds approximate (intercept deg, slope)
    per area read from those reports. The compressive spatial summation (CSS) exponent falls from
    about 0.5 in V1 to about 0.2 in hV4 (Kay et al. 2013): :data:`CSS_EXPONENT`.
First-order terms
    Beside contrast energy (Kay et al. 2013, PLoS Comput Biol 9:e1003079), early voxels carry
    signed terms: local luminance relative to the image mean and the cone-opponent channels L-M
    and S-(L+M) (Derrington, Krauskopf & Lennie 1984, J Physiol 357:241), with a stronger colour
    share in hV4 (Brewer et al. 2005, Nat Neurosci 8:1102): :data:`TERM_SHARES`. Cone responses
    are the Hunt-Pointer-Estevez matrix applied to CIE XYZ of linearised sRGB (IEC 61966-2-1).
Higher areas
    Face regions OFA/FFA (Kanwisher, McDermott & Chun 1997, J Neurosci 17:4302), scene regions
    PPA, OPA, RSC (Epstein & Kanwisher 1998, Nature 392:598; Dilks et al. 2013, J Neurosci
    33:1331), body/animal region EBA (Downing et al. 2001, Science 293:2470) come from S1's drawn
    localiser regions; the word region sits lateral to the left FFA, as the VWFA does (Cohen et
    al. 2000, Brain 123:291), with a weaker right homologue; food- and colour-biased patches lie
    between FFA and PPA (Khosla et al. 2022, Curr Biol 32:4159; Jain et al. 2023, Commun Biol
    6:175; Pennock et al. 2023, Curr Biol 33:134). Medial ventral cortex prefers large objects,
    lateral cortex small ones (Konkle & Oliva 2012, Neuron 74:1114); parietal cortex maps
    numerosity (Harvey et al. 2013, Science 341:1123); higher areas prefer the contralateral
    hemifield (Hemond, Kanwisher & Op de Beeck 2007, PLoS ONE 2:e574). Responses are divisively
    normalised by the pooled drive of the higher visual population (Carandini & Heeger 2012, Nat Rev
    Neurosci 13:51).
Between subjects
    Functional regions of registered subjects differ by a few millimetres (Frost & Goebel 2012,
    NeuroImage 59:1369): a smooth warp of :data:`WARP_RMS_MM` rms and a jitter of each category
    region of :data:`REGION_JITTER_MM` sd.
Noise and reliability
    Noise is spatially smooth (:data:`NOISE_FWHM_VOXELS` voxels FWHM, the residual smoothness the
    issue asks for, typical of fMRI noise) with a global per-trial component, the kind of
    structured noise GLMdenoise models (Kay et al. 2013, Front Neurosci 7:247); sessions drift in
    gain and offset. Signal-to-noise is graded so that, as in NSD, most nsdgeneral voxels are
    reliable and 3-trial noise ceilings run from near 0 to about 70 % (Allen et al. 2022):
    :data:`NCSNR_GAIN` sets the typical ncsnr of each area, :data:`NCSNR_MAX` caps it (70 %
    noise ceiling at 3 trials is ncsnr 0.88).
Modelling choices
    The remaining numbers (term shares beyond their ordering, category boost, map and voxel sd,
    wavelengths, band widths, the fringe, the dead share) are choices, set so that the figures the
    tests measure from the written files (``tests/data/test_world.py``: pixel decodability,
    ncsnr distribution, cross-subject overlap, noise smoothness, pRF size vs eccentricity) match
    the reports above.
"""

from __future__ import annotations

import numpy as np

#: Image half-width (deg) and the grid on which stimulus features are pooled.
IMAGE_HALF_DEG = 4.2
FEATURE_GRID = 32

#: Visual areas and regions; index 0 is "not visual". Early areas come first.
AREAS: tuple[str, ...] = ("none", "V1", "V2", "V3", "hV4", "V3AB", "LO", "OFA", "FFA", "VWFA", "food", "PPA",
                          "OPA", "RSC", "EBA", "IPS", "visual")
EARLY_AREAS: tuple[str, ...] = ("V1", "V2", "V3", "hV4", "V3AB")
#: Regions drawn in S1's overlays.svg (the rest are derived from them).
S1_REGIONS: tuple[str, ...] = ("V1", "V2", "V3", "OFA", "FFA", "PPA", "OPA", "RSC", "EBA", "IPS")
#: Category regions: region -> stimulus category it prefers.
CATEGORY_OF: dict[str, str] = {"OFA": "face", "FFA": "face", "VWFA": "text", "food": "food", "PPA": "scene",
                               "OPA": "scene", "RSC": "scene", "EBA": "animal"}
#: Ground-truth voxel classes (index = value in ``voxel_class``).
VOXEL_CLASSES: tuple[str, ...] = ("noise", "early", "face", "text", "scene", "food", "animal", "visual")

#: Eccentricity at the far end of each early band (deg) and Horton & Hoyt's E2 (deg).
MAX_ECC_DEG = 10.0
HH_E2_DEG = 0.75
#: pRF size sigma / sqrt(n) = intercept + slope * eccentricity (deg).
PRF_SIZE: dict[str, tuple[float, float]] = {"V1": (0.3, 0.12), "V2": (0.35, 0.18), "V3": (0.4, 0.25),
                                            "hV4": (0.6, 0.35), "V3AB": (0.6, 0.4)}
#: Voxel-to-voxel scatter of pRF centres around the map, as a fraction of pRF size (a modelling choice).
PRF_SCATTER = 0.1
#: CSS exponent n per area.
CSS_EXPONENT: dict[str, float] = {"V1": 0.5, "V2": 0.4, "V3": 0.35, "hV4": 0.2, "V3AB": 0.25}
#: Mean shares of response variance: contrast energy, luminance, L-M, S-(L+M).
TERM_NAMES: tuple[str, ...] = ("contrast_energy", "luminance", "l_minus_m", "s_minus_lm")
TERM_SHARES: dict[str, tuple[float, float, float, float]] = {
    "V1": (0.45, 0.35, 0.13, 0.07), "V2": (0.5, 0.3, 0.13, 0.07), "V3": (0.55, 0.27, 0.12, 0.06),
    "hV4": (0.4, 0.15, 0.28, 0.17), "V3AB": (0.65, 0.27, 0.05, 0.03)}
#: Dirichlet concentration of each voxel's shares around its area's mean.
TERM_CONCENTRATION = 30.0
#: Probability that a voxel's luminance and colour weights are positive.
P_POSITIVE_SIGN = 0.65

#: Width (mm) of the derived bands hV4 / V3A/B and of LO beyond V3.
DERIVED_BAND_MM = 11.0
#: VWFA and food patches: radius (mm), and VWFA's offset lateral to FFA (mm).
PATCH_RADIUS_MM = 7.0
VWFA_LATERAL_MM = 16.0
#: The visual (signal-carrying) region extends this far beyond nsdgeneral (mm).
FRINGE_MM = 5.0
#: Category boost on the preferred category (z-scored one-hot units) and fall-off (mm).
CATEGORY_BOOST = 3.0
CATEGORY_FALLOFF_MM = 3.0
#: Right-hemisphere VWFA strength relative to the left.
VWFA_RIGHT = 0.5

#: Subject warp: rms displacement and smallest wavelength (mm); category region jitter sd (mm).
WARP_RMS_MM = 3.0
WARP_WAVELENGTH_MM = 40.0
REGION_JITTER_MM = 2.0
#: Semantic maps: random Fourier components and their wavelength range (mm).
MAP_COMPONENTS = 48
MAP_WAVELENGTH_MM = (15.0, 50.0)
#: Sd of the smooth semantic maps and of each voxel's own deviation from them.
MAP_SD = 0.35
VOXEL_SD = 0.1

#: Typical ncsnr per area (before the spatial gain field and taper); cap.
NCSNR_GAIN: dict[str, float] = {"V1": 0.7, "V2": 0.7, "V3": 0.65, "hV4": 0.55, "V3AB": 0.5, "LO": 0.45,
                                "OFA": 0.5, "FFA": 0.55, "VWFA": 0.45, "food": 0.45, "PPA": 0.5, "OPA": 0.45,
                                "RSC": 0.4, "EBA": 0.5, "IPS": 0.2, "visual": 0.3}
NCSNR_MAX = 0.95
#: Sd (log units) and wavelengths (mm) of the smooth spatial gain field, and the share of the visual
#: region with no response.
GAIN_LOG_SD = 0.35
GAIN_WAVELENGTH_MM = (10.0, 30.0)
DEAD_SHARE = 0.06
#: Subject-to-subject sd of the overall SNR (log units).
SUBJECT_LOG_SD = 0.1

#: Noise: spatial smoothness (voxels FWHM, at most 2), share of the global per-trial component,
#: spatial sd (log units) and wavelengths (mm) of the noise level; session gain and offset drift sd.
NOISE_FWHM_VOXELS = 2.0
GLOBAL_SHARE = 0.15
NOISE_LOG_SD = 0.15
NOISE_WAVELENGTH_MM = (30.0, 80.0)
SESSION_GAIN_SD = 0.1
SESSION_OFFSET_SD = 0.5
#: Mean evoked response (% signal change), uniform range, of every brain voxel.
BASELINE_RANGE = (0.5, 2.0)

#: Linear sRGB -> CIE XYZ (D65) and XYZ -> LMS (Hunt-Pointer-Estevez), composed.
_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_XYZ_TO_LMS = np.array([[0.38971, 0.68898, -0.07868], [-0.22981, 1.18340, 0.04641], [0.0, 0.0, 1.0]])
RGB_TO_LMS = _XYZ_TO_LMS @ _SRGB_TO_XYZ
