import importlib.util

import numpy as np
import pytest
import torch

from fmrikit.errors import DataValueError, InputError, MissingInputError
from fmrikit.features.networks import (CLIP_MEAN, CLIP_STD, EFFNET_LITE0_LAYERS, PROTOCOL_NETWORKS, clip_vision,
                                       effnet_lite0, torchvision_network)
from fmrikit.devices import resolve_device

H, W = 40, 56  # non-square on purpose


def _disc():
    yy, xx = np.mgrid[:H, :W]
    img = np.full((H, W, 3), 230, dtype=np.uint8)
    img[(yy - H / 2) ** 2 + (xx - W / 2) ** 2 < 14 ** 2] = (220, 20, 20)
    return img


def _stripes():
    img = np.zeros((H, W, 3), dtype=np.uint8)
    img[:, (np.arange(W) // 4) % 2 == 0] = (20, 40, 200)
    return img


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    disc = _disc()
    noisy = np.clip(disc + rng.normal(0, 10, disc.shape), 0, 255).astype(np.uint8)
    return np.stack([disc, _stripes(), noisy])


@pytest.fixture(scope="module")
def lite0():
    return effnet_lite0()


def _corr(a, b):
    return np.corrcoef(a, b)[0, 1]


def test_effnet_lite0_pooled(lite0, images):
    feats = lite0.extract(images)
    assert feats.shape == (3, 1280) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    np.testing.assert_array_equal(feats, lite0.extract(images))
    assert not np.allclose(feats[0], feats[1])
    assert _corr(feats[0], feats[2]) > _corr(feats[0], feats[1]) + 0.1


def test_effnet_lite0_float_input_and_batching(lite0, images):
    feats = lite0.extract(images)
    np.testing.assert_allclose(lite0.extract(images.astype(np.float32) / 255), feats, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(lite0.extract(images, batch_size=2), feats, rtol=1e-4, atol=1e-5)


def test_effnet_lite0_layers(images):
    assert EFFNET_LITE0_LAYERS[0] == "block0" and EFFNET_LITE0_LAYERS[-2:] == ("head", "pooled")
    assert effnet_lite0("block5").extract(images[:2]).shape == (2, 80 * 14 * 14)
    assert effnet_lite0("head").extract(images[:1]).shape == (1, 1280 * 7 * 7)
    with pytest.raises(InputError):
        effnet_lite0("block16")


def test_effnet_lite0_attributes(lite0):
    assert lite0.resize == 224 and lite0.interpolation == "bilinear"
    assert lite0.mean == (0.485, 0.456, 0.406) and lite0.std == (0.229, 0.224, 0.225)


def test_bad_images_rejected(lite0, images):
    with pytest.raises(InputError):
        lite0.extract(images[0])
    with pytest.raises(InputError):
        lite0.extract(images[..., :2])
    with pytest.raises(DataValueError):
        lite0.extract(images.astype(np.float32))  # floats must be in [0, 1]
    with pytest.raises(InputError):
        lite0.extract(images, batch_size=0)


def _tiny_clip(path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=224,
                              patch_size=32, projection_dim=16, intermediate_size=37)
    CLIPVisionModelWithProjection(config).save_pretrained(path)
    return CLIPVisionModelWithProjection.from_pretrained(path).eval()


def test_clip_vision_matches_model(tmp_path, images):
    model = _tiny_clip(tmp_path)
    net = clip_vision(str(tmp_path))
    feats = net.extract(images)
    assert feats.shape == (3, 16) and feats.dtype == np.float32
    x = torch.from_numpy(images.astype(np.float32) / 255).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
    x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model(pixel_values=x).image_embeds.numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)


def test_clip_vision_missing(tmp_path):
    with pytest.raises(MissingInputError, match="never downloaded"):
        clip_vision(str(tmp_path / "absent"))


def test_torchvision_network_unavailable(tmp_path):
    with pytest.raises(MissingInputError) as info:
        torchvision_network("alexnet2", None)
    if importlib.util.find_spec("torchvision") is None:
        assert "torchvision" in str(info.value)
    with pytest.raises(InputError):
        torchvision_network("vgg16", None)


def test_protocol_networks():
    assert {"alexnet2", "alexnet5", "inception", "clip", "effnet-b", "swav"} == set(PROTOCOL_NETWORKS)


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError):
        resolve_device("tpu-please")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_effnet_lite0_cuda_matches_cpu(lite0, images):
    cpu = lite0.extract(images, device="cpu")
    gpu = lite0.extract(images, device="cuda")
    assert gpu.shape == cpu.shape and np.isfinite(gpu).all()
    for a, b in zip(cpu, gpu):
        assert _corr(a, b) > 0.99
