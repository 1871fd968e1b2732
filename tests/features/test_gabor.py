import math

import numpy as np
import pytest
from PIL import Image
from scipy.signal import fftconvolve
from skimage.filters import gabor_kernel

from fmrikit.errors import DataValueError, InputError
from fmrikit.features.gabor import FREQUENCY, GaborExtractor

SIDE = 96
LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def gabor():
    return GaborExtractor()


def _energy_by_hand(channel: np.ndarray, theta: float, frequency: float) -> np.ndarray:
    """Gabor energy of one channel from skimage's kernel and scipy's FFT convolution."""
    sigma = math.sqrt(math.log(2) / 2) / math.pi * 3 / frequency  # one octave of bandwidth
    n_stds = 3 / max(abs(math.cos(theta)), abs(math.sin(theta)))  # a (2 ceil(3 sigma) + 1) px square
    kernel = gabor_kernel(frequency, theta=theta, sigma_x=sigma, sigma_y=sigma, n_stds=n_stds)
    envelope = np.abs(kernel)
    even = kernel.real - envelope * kernel.real.sum() / envelope.sum()
    r = kernel.shape[0] // 2
    padded = np.pad(channel, r, mode="reflect")
    return np.hypot(fftconvolve(padded, even, mode="valid"), fftconvolve(padded, kernel.imag, mode="valid"))


def _cells(energy: np.ndarray, grid: int) -> np.ndarray:
    """Energy averaged on a grid x grid grid, row-major, shape (grid**2,)."""
    h = energy.shape[0] // grid
    return energy.reshape(grid, h, grid, h).mean((1, 3)).ravel()


def _grating(theta: float, cycles_per_px: float, rgb_amplitude=(0.4, 0.4, 0.4), side: int = SIDE) -> np.ndarray:
    y, x = np.mgrid[:side, :side]
    wave = np.cos(2 * np.pi * cycles_per_px * (x * np.cos(theta) + y * np.sin(theta)))
    return np.clip(0.5 + wave[..., None] * np.array(rgb_amplitude), 0, 1)


@pytest.mark.parametrize("k", [0, 2])
def test_energy_matches_skimage_and_fftconvolve(gabor, k):
    rng = np.random.default_rng(0)
    img = rng.random((SIDE, SIDE, 3))
    lum = img @ LUMA
    patches = gabor.patches(img[None])[0]
    theta = k * np.pi / 8
    fine = _cells(_energy_by_hand(lum, theta, FREQUENCY), 8)
    np.testing.assert_allclose(patches[0, :, k], fine, rtol=1e-4, atol=1e-6)
    # scale 1: the channel at half size (PIL's antialiased bilinear), same kernel
    half = np.asarray(Image.fromarray(lum.astype(np.float32), mode="F").resize((SIDE // 2,) * 2, Image.BILINEAR))
    coarse = _cells(_energy_by_hand(half.astype(np.float64), theta, FREQUENCY), 8)
    np.testing.assert_allclose(patches[1, :, k], coarse, rtol=1e-3, atol=1e-5)


def test_grating_drives_its_orientation(gabor):
    for k in range(8):
        theta = k * np.pi / 8
        feats = gabor.patches(np.stack([_grating(theta, FREQUENCY), _grating(theta, FREQUENCY / 2)]))
        for scale, lum_energy in enumerate(feats[[0, 1], [0, 1], :, :8].mean(1)):
            assert lum_energy.argmax() == k
        assert feats[0, 0, :, k].mean() == pytest.approx(0.4 / 2, rel=0.1)  # amplitude A gives about A / 2


def test_position_moves_energy_between_patches(gabor):
    y, x = np.mgrid[:SIDE, :SIDE]
    feats = []
    for cx in (24, 72):
        window = np.exp(-((x - cx) ** 2 + (y - 48) ** 2) / (2 * 10 ** 2))
        img = 0.5 + 0.4 * window * np.cos(2 * np.pi * FREQUENCY * x)
        feats.append(gabor.patches(np.repeat(img[None, ..., None], 3, axis=3))[0, 0, :, 0].reshape(8, 8))
    left, right = feats
    assert left[:, :4].sum() > 10 * left[:, 4:].sum()
    assert right[:, 4:].sum() > 10 * right[:, :4].sum()
    np.testing.assert_allclose(left[:, 1:3], right[:, 5:7], rtol=0.05, atol=1e-4)  # shifted by 48 px


def test_colour_opponent_channels(gabor):
    lum_grating = _grating(0.0, FREQUENCY, (0.4, 0.4, 0.4))
    red_green = _grating(0.0, FREQUENCY, (0.4, -0.4, 0.0))
    grey, rg = gabor.patches(np.stack([lum_grating, red_green]))[:, 0].mean(1).reshape(2, 3, 8)  # channel, orient
    assert grey[0, 0] > 0.1 and np.abs(grey[1:]).max() < 1e-6  # a grey grating: no colour energy
    assert rg[1, 0] == pytest.approx(0.8 / 2, rel=0.1) and rg[1, 0] > 5 * max(rg[0, 0], rg[2, 0])


def test_shapes_and_pooled(gabor):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)  # non-square: resized to 96 x 96
    patches = gabor.patches(images)
    pooled = gabor.pooled(images, batch_size=2)
    assert patches.shape == (3, 4, 64, 24) and patches.dtype == np.float32 and gabor.patch_shape == (4, 64, 24)
    assert pooled.shape == (3, 4 * 16 * 24) and pooled.dtype == np.float32
    # pooled is the 4 x 4 grid: at the finest level each cell averages 2 x 2 cells of the 8 x 8 grid
    fine = patches[:, 0].reshape(3, 4, 2, 4, 2, 24).mean((2, 4)).reshape(3, 16, 24)
    np.testing.assert_allclose(pooled.reshape(3, 4, 16, 24)[:, 0], fine, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(gabor.patches(images), patches)
    np.testing.assert_allclose(gabor.patches(images.astype(np.float32) / 255), patches, rtol=1e-5, atol=1e-6)


def test_options_and_config():
    small = GaborExtractor(scales=[0, 2], n_orientations=4, side=64, grid=4, pooled_grid=2)
    img = np.zeros((1, 64, 64, 3), np.uint8)
    assert small.patches(img).shape == (1, 2, 16, 12) and small.pooled(img).shape == (1, 2 * 4 * 12)
    assert small.config() != GaborExtractor().config()
    assert GaborExtractor().config() == GaborExtractor().config()
    with pytest.raises(InputError):
        GaborExtractor(side=40)  # 40 / 8 px is below the filter radius
    with pytest.raises(InputError):
        GaborExtractor(scales=[1, 1])
    with pytest.raises(DataValueError):
        GaborExtractor().pooled(np.full((1, 8, 8, 3), 2.0))
