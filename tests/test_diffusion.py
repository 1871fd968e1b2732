import json

import numpy as np
import pytest
import torch
from PIL import Image

from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError
from fmrikit.diffusion import (decode_latents, encode_images, generate_img2img, generate_unclip,
                                         latent_shape, load_autoencoder, load_pipeline)
from tests.tiny_diffusion import TEXT_WIDTH, save_tiny_img2img, save_tiny_unclip

STEPS = 4


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion")
    return {"img2img": save_tiny_img2img(root / "img2img"), "unclip": save_tiny_unclip(root / "unclip")}


@pytest.fixture(scope="module")
def img2img(folders):
    return load_pipeline(folders["img2img"], "img2img")[0]


@pytest.fixture(scope="module")
def unclip(folders):
    return load_pipeline(folders["unclip"], "unclip")[0]


@pytest.fixture(scope="module")
def vae(folders):
    return load_autoencoder(folders["img2img"])[0]


def _inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 4, 8, 8)).astype(np.float32),
            rng.standard_normal((n, 15, TEXT_WIDTH)).astype(np.float32))


def test_load_both_kinds(folders, img2img, unclip):
    for kind, pipe in [("img2img", img2img), ("unclip", unclip)]:
        again, record = load_pipeline(str(folders[kind]), kind)
        assert type(again).__name__ == type(pipe).__name__ == record["class"]
        assert record["pipeline"] == str(folders[kind].resolve())
        assert again.dtype == torch.float32 and again.device.type == "cpu"


def test_missing_sources_raise(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for source in [tmp_path / "absent", "fmrikit-tests/not-a-cached-pipeline"]:
        with pytest.raises(MissingInputError, match="never downloaded"):
            load_pipeline(source, "img2img")
        with pytest.raises(MissingInputError):
            load_autoencoder(source)
    with pytest.raises(MissingInputError, match="model_index.json"):
        load_pipeline(tmp_path, "unclip")


def test_wrong_kind_raises(folders):
    with pytest.raises(CorruptFileError) as info:
        load_pipeline(folders["img2img"], "unclip")
    assert info.value.expected == "StableUnCLIPImg2ImgPipeline" and info.value.path == str(folders["img2img"])
    with pytest.raises(CorruptFileError):
        load_pipeline(folders["unclip"], "img2img")  # loads, but its UNet needs class labels
    with pytest.raises(InputError, match="unknown pipeline kind"):
        load_pipeline(folders["img2img"], "text2img")


def test_load_autoencoder_sources(folders, vae, tmp_path):
    vae.save_pretrained(tmp_path / "vae")
    standalone, record = load_autoencoder(tmp_path / "vae")
    assert record == {"autoencoder": str((tmp_path / "vae").resolve()), "class": "AutoencoderKL"}
    assert load_autoencoder(folders["unclip"])[1]["subfolder"] == "vae"
    for a, b in zip(standalone.parameters(), vae.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(CorruptFileError, match="not an AutoencoderKL"):
        load_autoencoder(folders["img2img"] / "unet")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    with pytest.raises(CorruptFileError):
        load_autoencoder(tmp_path / "bad")


def test_latent_shape(vae):
    assert latent_shape(vae, 16) == (4, 8, 8)
    with pytest.raises(InputError):
        latent_shape(vae, 15)


def test_encode_decode(vae):
    images = np.random.default_rng(0).integers(0, 256, (3, 20, 12, 3), dtype=np.uint8)
    latents = encode_images(vae, images, size=16, batch_size=2)
    assert latents.shape == (3, 4, 8, 8) and latents.dtype == np.float32
    resized = np.stack([np.asarray(Image.fromarray(im).resize((16, 16), Image.BICUBIC)) for im in images])
    with torch.no_grad():
        x = torch.from_numpy(resized).permute(0, 3, 1, 2).float() / 127.5 - 1
        expected = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    np.testing.assert_allclose(latents, expected.numpy(), rtol=1e-4, atol=1e-5)
    assert encode_images(vae, images.transpose(0, 2, 1, 3)[:, :, :20]).shape == (3, 4, 6, 10)  # no size: as given

    decoded = decode_latents(vae, latents, batch_size=2)
    assert decoded.shape == (3, 16, 16, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, decode_latents(vae, torch.from_numpy(latents)))
    with pytest.raises(DataValueError):
        encode_images(vae, images.astype(np.float32))
    with pytest.raises(DataValueError):
        decode_latents(vae, latents[:, :3])


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_img2img_shape_and_seeds(img2img, guidance):
    latents, embeds = _inputs(2)
    out = generate_img2img(img2img, latents, embeds, seeds=[0, 1], steps=STEPS, guidance_scale=guidance)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8
    again = generate_img2img(img2img, latents, embeds, seeds=[0, 1], steps=STEPS, guidance_scale=guidance)
    np.testing.assert_array_equal(out, again)
    other = generate_img2img(img2img, latents, embeds, seeds=[5, 1], steps=STEPS, guidance_scale=guidance)
    assert not np.array_equal(out[0], other[0])
    np.testing.assert_allclose(out[1], other[1], atol=2)


def test_img2img_batch_equals_singles_and_strength(img2img):
    latents, embeds = _inputs(3, seed=1)
    kwargs = {"steps": STEPS, "guidance_scale": 3.0}
    batch = generate_img2img(img2img, latents, embeds, seeds=[3, 4, 5], **kwargs)
    singles = np.concatenate([generate_img2img(img2img, latents[i:i + 1], embeds[i:i + 1], seeds=[3 + i], **kwargs)
                              for i in range(3)])
    np.testing.assert_allclose(batch.astype(int), singles.astype(int), atol=2)
    weaker = generate_img2img(img2img, latents, embeds, seeds=[3, 4, 5], strength=0.5, **kwargs)
    assert not np.array_equal(batch, weaker)
    empty = generate_img2img(img2img, latents, None, seeds=[3, 4, 5], **kwargs)
    assert empty.shape == batch.shape
    with pytest.raises(InputError, match="one seed per sample"):
        generate_img2img(img2img, latents, embeds, seeds=[0], **kwargs)
    with pytest.raises(DataValueError):
        generate_img2img(img2img, latents[:, :3], embeds, seeds=[3, 4, 5], **kwargs)


def test_unclip(unclip):
    embeds = np.random.default_rng(2).standard_normal((3, 32)).astype(np.float32)
    kwargs = {"steps": STEPS, "guidance_scale": 3.0}
    out = generate_unclip(unclip, embeds, seeds=[0, 1, 2], **kwargs)
    assert out.shape == (3, 16, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, generate_unclip(unclip, embeds, seeds=[0, 1, 2], **kwargs))
    assert not np.array_equal(out[0], generate_unclip(unclip, embeds[:1], seeds=[9], **kwargs)[0])
    singles = np.concatenate([generate_unclip(unclip, embeds[i:i + 1], seeds=[i], **kwargs) for i in range(3)])
    np.testing.assert_allclose(out.astype(int), singles.astype(int), atol=2)
    with pytest.raises(DataValueError):
        generate_unclip(unclip, embeds[:, :16], seeds=[0, 1, 2])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_both_routes_on_cuda_bf16(folders):
    pipe, _ = load_pipeline(folders["img2img"], "img2img", device="cuda")
    assert pipe.dtype == torch.bfloat16 and pipe.device.type == "cuda"
    latents, embeds = _inputs(2)
    out = generate_img2img(pipe, latents, embeds, seeds=[0, 1], steps=STEPS, guidance_scale=3.0)
    assert out.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(out, generate_img2img(pipe, latents, embeds, seeds=[0, 1], steps=STEPS,
                                                        guidance_scale=3.0))
    pipe, _ = load_pipeline(folders["unclip"], "unclip", device="cuda")
    assert pipe.dtype == torch.bfloat16
    embeds = np.random.default_rng(2).standard_normal((2, 32)).astype(np.float32)
    assert generate_unclip(pipe, embeds, seeds=[0, 1], steps=STEPS).shape == (2, 16, 16, 3)
    vae, _ = load_autoencoder(folders["img2img"], device="cuda")
    images = np.zeros((2, 16, 16, 3), np.uint8)
    assert decode_latents(vae, encode_images(vae, images, device="cuda"), device="cuda").shape == images.shape
