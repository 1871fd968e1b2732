"""NeuroPictor's conditioner: shapes, the zero-initialised auxiliary branch, save/load."""

import numpy as np
import pytest
import torch

from fmrikit.methods.neuropictor.model import NeuroPictorConditioner, TokenHead

ENCODER = dict(image_size=48, patch_size=16, width=32, depth=2, heads=2)


def _tiny(seed: int = 0) -> NeuroPictorConditioner:
    torch.manual_seed(seed)
    return NeuroPictorConditioner(ENCODER, text_tokens=7, text_width=12, latent_channels=4, latent_size=5)


def test_shapes_and_zero_initialised_auxiliary_encoder(one_thread):
    model = _tiny()
    flat = torch.randn(3, 48, 48)
    semantic, text, control = model(flat)
    assert semantic.shape == text.shape == (3, 7, 12)
    assert control.shape == (3, 4, 5, 5)
    # F_sem = F~txt + F_au with F_au zero at initialisation (zero 1D convolution)
    torch.testing.assert_close(semantic, text, rtol=0, atol=0)
    assert model.encoder.n_tokens == 1 + 3 * 3


def test_token_head_matches_a_hand_computation(one_thread):
    torch.manual_seed(0)
    head = TokenHead(in_tokens=5, out_tokens=3, in_width=6, out_width=4, hidden_tokens=4, hidden_width=8).double()
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    conv1, conv2 = head.tokens[0], head.tokens[2]
    # 1D convolutions of kernel 1 over the token axis = per-position matrix products across tokens
    h = np.einsum("ot,bti->boi", conv1.weight[:, :, 0].detach().numpy(), x.numpy()) + conv1.bias.detach().numpy()[:, None]
    h = torch.nn.functional.gelu(torch.from_numpy(h)).numpy()
    h = np.einsum("ot,bti->boi", conv2.weight[:, :, 0].detach().numpy(), h) + conv2.bias.detach().numpy()[:, None]
    norm, lin1, lin2 = head.features[0], head.features[1], head.features[3]
    h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + norm.eps)
    h = h * norm.weight.detach().numpy() + norm.bias.detach().numpy()
    h = torch.nn.functional.gelu(torch.from_numpy(h @ lin1.weight.detach().numpy().T + lin1.bias.detach().numpy()))
    expected = h.numpy() @ lin2.weight.detach().numpy().T + lin2.bias.detach().numpy()
    np.testing.assert_allclose(head(x).detach().numpy(), expected, rtol=1e-10, atol=1e-10)


def test_save_and_load_round_trip(tmp_path, one_thread):
    model = _tiny()
    with torch.no_grad():  # make the auxiliary branch non-zero so its weights are tested too
        model.auxiliary_out.weight.normal_()
    model.save_pretrained(tmp_path / "m")
    again = NeuroPictorConditioner.from_pretrained(tmp_path / "m")
    flat = torch.randn(2, 48, 48)
    for a, b in zip(model(flat), again(flat)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(*model(flat)[:2])


def test_wrong_flatmap_size_is_refused(one_thread):
    from fmrikit.errors import DataValueError

    with pytest.raises(DataValueError, match="wrong shape"):
        _tiny()(torch.randn(2, 64, 64))
