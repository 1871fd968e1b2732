import subprocess
import sys

import numpy as np
import pytest

from fmrikit.errors import InputError
from fmrikit.features.networks import effnet_lite0
from fmrikit.features.registry import EXTRACTORS, get_extractor
from fmrikit.features.effnet import EffnetLite0Extractor
from fmrikit.features.base import FeatureExtractor


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def effnet():
    return get_extractor("effnet-lite0", layers=["block2", 7, "block14"])


def test_names_and_errors():
    assert EXTRACTORS == ("gabor", "effnet-lite0", "clip", "dinov2")
    with pytest.raises(InputError, match="gabor, effnet-lite0, clip, dinov2"):
        get_extractor("vgg")
    for name in ("clip", "dinov2"):
        with pytest.raises(InputError, match="image model"):
            get_extractor(name)
    with pytest.raises(InputError, match="no image model"):
        get_extractor("gabor", image_model="openai/clip-vit-large-patch14")
    with pytest.raises(InputError):
        get_extractor("effnet-lite0", layers=["pooled"])  # not a spatial layer
    with pytest.raises(InputError):
        get_extractor("gabor", layers=["fine"])


def test_gabor_by_name():
    gabor = get_extractor("gabor", layers=[1, 3])
    assert isinstance(gabor, FeatureExtractor) and gabor.name == "gabor"
    assert gabor.patch_shape == (2, 64, 24) and gabor.config()["scales"] == [1, 3]


def test_effnet_defaults():
    ext = EffnetLite0Extractor()
    assert ext.layers == ("block2", "block4", "block7", "block10", "block14")
    assert ext.level_channels == (24, 40, 80, 112, 192) and ext.patch_shape == (5, 49, 192)
    cfg = ext.config()
    assert cfg["level_channels"] == [24, 40, 80, 112, 192] and len(cfg["weights"][0]["sha256"]) == 64


def test_effnet_pooled_is_effnet_lite0(effnet, images):
    np.testing.assert_allclose(effnet.pooled(images), effnet_lite0("pooled").extract(images), rtol=1e-5, atol=1e-6)


def test_effnet_patches_levels_and_padding(effnet, images):
    assert effnet.layers == ("block2", "block7", "block14") and effnet.level_channels == (24, 80, 192)
    patches = effnet.patches(images, batch_size=2)
    assert patches.shape == (3, 3, 49, 192) and patches.dtype == np.float32
    for level, channels in enumerate(effnet.level_channels):
        assert np.all(patches[:, level, :, channels:] == 0) and np.abs(patches[:, level, :, :channels]).max() > 0
    # block2 by itself: (24, 56, 56) maps, averaged over 8 x 8 px cells by hand
    block2 = effnet_lite0("block2").extract(images).reshape(3, 24, 7, 8, 7, 8).mean((3, 5))
    np.testing.assert_allclose(patches[:, 0, :, :24], block2.reshape(3, 24, 49).transpose(0, 2, 1),
                               rtol=1e-4, atol=1e-5)
    # block14 is 7 x 7 already: pooling keeps it
    block14 = effnet_lite0("block14").extract(images).reshape(3, 192, 49).transpose(0, 2, 1)
    np.testing.assert_allclose(patches[:, 2], block14, rtol=1e-4, atol=1e-5)


def test_a_finer_grid_pools_the_same_maps_to_more_cells(images):
    from fmrikit.features.registry import feature_spec, get_extractor, spec_extractor

    fine = spec_extractor(feature_spec("effnet-lite0", None, 14))
    assert fine.patch_shape == (5, 196, 192) and fine.config()["grid"] == 14
    # block7 is a 14 x 14 map at 224 px: a 14-grid keeps it as it is
    patches = get_extractor("effnet-lite0", layers=["block7"], grid=14).patches(images, batch_size=3)
    block7 = effnet_lite0("block7").extract(images).reshape(3, 80, 196).transpose(0, 2, 1)
    np.testing.assert_allclose(patches[:, 0, :, :80], block7, rtol=1e-4, atol=1e-5)
    assert get_extractor("gabor", grid=16).patch_shape[1] == 256
    assert feature_spec("gabor", None) == {"name": "gabor", "image_model": None}  # old records unchanged
    with pytest.raises(InputError):
        get_extractor("dinov2", image_model="x", grid=14)


def test_import_is_light():
    code = "import fmrikit.features.registry, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
