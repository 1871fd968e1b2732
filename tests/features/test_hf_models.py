import json

import numpy as np
import pytest
import torch

from fmrikit.errors import InputError, MissingInputError
from fmrikit.features.networks import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from fmrikit.features.registry import get_extractor

TINY = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, image_size=32, patch_size=8,
            intermediate_size=37)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, Dinov2Config, Dinov2Model

    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=16, **TINY)).save_pretrained(root / "clip")
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(**TINY)).save_pretrained(root / "dinov2")
    return {"clip": (root / "clip", CLIPVisionModelWithProjection, CLIP_MEAN, CLIP_STD),
            "dinov2": (root / "dinov2", Dinov2Model, IMAGENET_MEAN, IMAGENET_STD)}


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)


def _by_hand(model, images, mean, std):
    x = torch.from_numpy(images.astype(np.float32) / 255).permute(0, 3, 1, 2)  # 32 px already: no resize
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model(pixel_values=x, output_hidden_states=True)


@pytest.mark.parametrize("name, layers", [("clip", (1, 2, 3, 4)), ("dinov2", (1, 4))])
def test_matches_model_run_by_hand(tiny_models, images, name, layers):
    path, cls, mean, std = tiny_models[name]
    ext = get_extractor(name, image_model=str(path))
    assert ext.layers == layers and ext.patch_shape == (len(layers), 16, 32)
    out = _by_hand(cls.from_pretrained(path).eval(), images, mean, std)
    patches = ext.patches(images, batch_size=2)
    assert patches.shape == (3, len(layers), 16, 32) and patches.dtype == np.float32
    want = np.stack([out.hidden_states[k][:, 1:].numpy() for k in layers], 1)  # no CLS token
    np.testing.assert_allclose(patches, want, rtol=1e-4, atol=1e-5)
    pooled = ext.pooled(images)
    want = out.image_embeds if name == "clip" else out.pooler_output
    assert pooled.shape == (3, 16 if name == "clip" else 32)
    np.testing.assert_allclose(pooled, want.numpy(), rtol=1e-4, atol=1e-5)


def test_layers_option(tiny_models, images):
    ext = get_extractor("dinov2", image_model=str(tiny_models["dinov2"][0]), layers=["0", 2])
    assert ext.layers == (0, 2) and ext.patches(images[:1]).shape == (1, 2, 16, 32)
    with pytest.raises(InputError, match="0 .embeddings. to 4"):
        get_extractor("dinov2", image_model=str(tiny_models["dinov2"][0]), layers=[6])


def test_config_names_the_weights(tiny_models):
    path = tiny_models["clip"][0]
    cfg = get_extractor("clip", image_model=str(path)).config()
    json.dumps(cfg)
    assert cfg["model"] == str(path.resolve()) and cfg["weights"][0]["file"] == "model.safetensors"
    assert len(cfg["weights"][0]["sha256"]) == 64 and cfg["image_size"] == 32
    assert get_extractor("clip", image_model=str(path), layers=[4]).config() != cfg


def test_non_square_images_resized(tiny_models):
    ext = get_extractor("clip", image_model=str(tiny_models["clip"][0]))
    rng = np.random.default_rng(1)
    feats = ext.pooled(rng.integers(0, 256, (2, 48, 40, 3), dtype=np.uint8))
    assert feats.shape == (2, 16) and np.isfinite(feats).all()


def test_cached_hub_id(tiny_models, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--org--tiny-dinov2"
    shutil.copytree(tiny_models["dinov2"][0], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    cfg = get_extractor("dinov2", image_model="org/tiny-dinov2").config()
    assert cfg["model"] == "org/tiny-dinov2" and cfg["revision"] == commit


def test_missing_model(tmp_path):
    for model in (str(tmp_path / "absent"), "org/not-cached"):
        with pytest.raises(MissingInputError, match="a save_pretrained folder or a cached Hugging Face id"):
            get_extractor("dinov2", image_model=model)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingInputError, match="no weights"):
        get_extractor("clip", image_model=str(tmp_path / "empty"))
