"""NeuroPictor's flatmap autoencoder: ViT tokens, a decoder that reads only [CLS], masked MSE, folders."""

from dataclasses import asdict

import numpy as np
import pytest
import torch

from fmrikit.errors import DataValueError, InputError
from fmrikit.methods.neuropictor.flatmap_ae_model import (FlatmapAutoencoder, FlatmapEncoder, encoder_state,
                                                          sincos_positions)
from fmrikit.methods.neuropictor.flatmap_ae_model import FLATMAP_AE_PRESETS, FlatmapAESize

TINY = dict(image_size=48, patch_size=16, width=32, depth=2, heads=2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread):
    """Tiny models on one thread."""


def _tiny(**kw) -> FlatmapAutoencoder:
    torch.manual_seed(0)
    return FlatmapAutoencoder(**{**TINY, **kw}).eval()


def _smooth_maps(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random sums of a few 2D sinusoids: smooth maps an autoencoder can learn quickly."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    maps = np.zeros((n, size, size))
    for _ in range(3):
        fy, fx, phase = rng.uniform(0.5, 2, (3, n, 1, 1)) * np.array([1, 1, np.pi])[:, None, None, None]
        maps += rng.normal(size=(n, 1, 1)) * np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
    return torch.from_numpy(maps.astype(np.float32))


def test_tokens_are_cls_plus_patches_and_reconstruction_has_the_map_shape():
    model = _tiny(decoder_width=16, decoder_depth=1, decoder_heads=4)
    x = torch.randn(3, 48, 48)
    tokens = model.encode(x)
    assert tokens.shape == (3, 1 + 9, 32) and model.encoder.n_tokens == 10 and model.encoder.width == 32
    assert torch.equal(tokens, model.encode(x[:, None]))  # (B, 1, S, S) is the same input
    assert model(x).shape == (3, 48, 48)
    assert model.config["decoder_width"] == 16 and _tiny().config["decoder_depth"] == 2  # symmetric by default
    pos = sincos_positions(32, 3)
    assert pos.shape == (10, 32) and not pos[0].any() and torch.allclose(model.encoder.pos_embed[0], pos)


def test_decoder_reads_only_the_cls_token():
    model = _tiny()
    with torch.no_grad():
        tokens = model.encode(torch.randn(2, 48, 48))
        noisy = tokens.clone()
        noisy[:, 1:] = torch.randn_like(noisy[:, 1:]) * 10
        assert torch.equal(model.decode(tokens), model.decode(noisy))
        assert torch.equal(model.decode(tokens), model.decode(tokens[:, 0]))
        other = tokens.clone()
        other[:, 0] += 1
        assert not torch.allclose(model.decode(tokens), model.decode(other))


def test_patches_follow_row_major_order():
    model = _tiny()
    patches = torch.arange(9 * 256, dtype=torch.float32).reshape(1, 9, 256)
    image = model.unpatchify(patches)[0]
    # patch k covers rows 16 * (k // 3) ... and columns 16 * (k % 3) ...; within it, pixels row-major
    assert image[16, 32] == 5 * 256 and image[17, 33] == 5 * 256 + 17 and image[47, 47] == 9 * 256 - 1
    # the patch embedding is a strided convolution in the same order
    x = torch.zeros(1, 48, 48)
    x[0, 20, 40] = 1.0  # inside patch 5
    w = model.encoder.patch_embed.weight
    emb = model.encoder.patch_embed(x[:, None]).flatten(2).transpose(1, 2)[0] - model.encoder.patch_embed.bias
    assert torch.allclose(emb[5], w[:, 0, 4, 8], atol=1e-6) and emb[4].abs().max() < 1e-6


def test_save_and_load_round_trip_and_encoder_state(tmp_path):
    model = _tiny()
    x = torch.randn(2, 48, 48)
    model.save_pretrained(tmp_path / "ae", extra={"subjects": [1]})
    loaded = FlatmapAutoencoder.from_pretrained(tmp_path / "ae").eval()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
        config, state = encoder_state(tmp_path / "ae")
        assert config == {**TINY, "mlp_ratio": 4.0}
        assert not any(k.startswith("decoder") for k in state)
        torch.manual_seed(1)
        encoder = FlatmapEncoder(**config).eval()
        encoder.load_state_dict(state)
        assert torch.equal(encoder(x), model.encode(x))


def test_adam_steps_lower_the_masked_loss_below_the_mean_map():
    model = _tiny().train()
    x = _smooth_maps(16, 48)
    mask = torch.zeros(48, 48, dtype=torch.bool)
    mask[4:44, 6:40] = True
    x = x * mask
    mean_map = float(((x - x.mean(0)) ** 2)[:, mask].mean())  # the best input-independent output
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(200):  # first the mean map (a plateau), then the [CLS] token starts to carry each map
        loss, parts = model.loss(x, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[20] < losses[0] and losses[-1] < 0.6 * mean_map and set(parts) == {"mse_full_map"}


def test_masked_loss_ignores_pixels_outside_the_mask():
    model = _tiny()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(3, 48, 48)).astype(np.float32))
    mask = torch.from_numpy(rng.random((48, 48)) < 0.4)
    with torch.no_grad():
        recon = model(x).numpy()
        loss, parts = model.loss(x, mask)
        expected = np.mean((recon - x.numpy())[:, mask.numpy()] ** 2)
        assert np.isclose(loss.item(), expected, rtol=1e-5)
        assert np.isclose(parts["mse_full_map"], np.mean((recon - x.numpy()) ** 2), rtol=1e-5)
        rows = torch.from_numpy(rng.random((3, 48, 48)) < 0.5)  # per-row masks (one per subject)
        got, _ = model.loss(x, rows)
        assert np.isclose(got.item(), np.mean((recon - x.numpy())[rows.numpy()] ** 2), rtol=1e-5)


def test_bad_inputs_raise_fmrikit_errors():
    model = _tiny()
    with pytest.raises(DataValueError, match=r"expected \(B, 48, 48\)"):
        model(torch.randn(2, 64, 64))
    with pytest.raises(DataValueError):
        model(torch.randn(2, 3, 48, 48))
    with pytest.raises(DataValueError, match="cortex mask"):
        model.loss(torch.randn(2, 48, 48), torch.ones(40, 40, dtype=torch.bool))
    with pytest.raises(InputError, match="divisible by the patch size"):
        FlatmapEncoder(image_size=50, patch_size=16, width=32, depth=1, heads=2)
    with pytest.raises(InputError, match="heads"):
        FlatmapAutoencoder(**{**TINY, "heads": 3})


def test_presets_and_overrides():
    assert FlatmapAESize.from_preset("paper") == FlatmapAESize(**FLATMAP_AE_PRESETS["paper"])
    size = FlatmapAESize.from_preset("small", image_size=48, width=None, depth=2)
    assert (size.image_size, size.width, size.depth, size.heads) == (48, 128, 2, 4)
    assert FlatmapAutoencoder(**asdict(size)).config["decoder_width"] == 128
    with pytest.raises(InputError, match="did you mean 'small'"):
        FlatmapAESize.from_preset("smal")
    with pytest.raises(InputError, match="divisible"):
        FlatmapAESize.from_preset("small", image_size=60)
    with pytest.raises(InputError, match="unknown flatmap autoencoder size"):
        FlatmapAESize.from_preset("small", colour=3)
