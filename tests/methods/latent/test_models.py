import json

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev

from fmrikit.errors import DataValueError, InputError
from fmrikit.methods.latent.models import (ChebConv, LatentMapper, connectivity_graph, node_columns_from_labels,
                                           scaled_laplacian)
from fmrikit.engine.serialization import PretrainedModule

V, D = 37, 4 * 3 * 5
ARCHS = ["ridge", "cnn", "text-cnn", "vae", "gcn"]
# an undirected weighted graph
ADJ = [[0.0, 0.8, 0.6, 0.0], [0.8, 0.0, 0.7, 0.9], [0.6, 0.7, 0.0, 0.55], [0.0, 0.9, 0.55, 0.0]]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest on busy cores


def _labels() -> np.ndarray:
    return np.random.default_rng(1).integers(1, 9, size=V)


def _tiny(arch: str) -> LatentMapper:
    torch.manual_seed(0)
    graph = {}
    if arch == "gcn":
        graph = {"node_columns": node_columns_from_labels(_labels(), [[1, 2], [3, 4], [5, 6], [7, 8]]),
                 "adjacency": ADJ}
    return LatentMapper(arch, V, D, channels=3, hidden=24, text_hidden=[20, 28], latent_dim=6,
                        gcn_width=10, gcn_hidden=26, **graph)


def _planted(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, V, generator=g)
    w = torch.randn(V, D, generator=g) / V ** 0.5
    return x, x @ w * 2.0 + 5.0


def _np_scaled_laplacian(a: np.ndarray, lambda_max: float | None = None) -> np.ndarray:
    """2 L / lambda_max - I from the definitions, element by element; lambda_max by numpy's eigvalsh."""
    n = len(a)
    deg = a.sum(axis=1)
    lap = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            norm = a[i, j] / np.sqrt(deg[i] * deg[j]) if deg[i] > 0 and deg[j] > 0 else 0.0
            lap[i, j] = float(i == j) - norm
    lambda_max = np.linalg.eigvalsh(lap).max() if lambda_max is None else lambda_max
    return 2.0 / lambda_max * lap - np.eye(n)


def test_scaled_laplacian_uses_the_largest_eigenvalue_and_spans_minus_one_to_one():
    a = np.array(ADJ)
    got = scaled_laplacian(torch.tensor(a)).numpy()
    np.testing.assert_allclose(got, _np_scaled_laplacian(a), atol=1e-12)
    evals = np.linalg.eigvalsh(got)
    assert evals.max() == pytest.approx(1.0) and evals.min() >= -1 - 1e-12
    lap = np.eye(4) - a / np.sqrt(np.outer(a.sum(1), a.sum(1)))
    assert np.linalg.eigvalsh(lap).max() < 1.9  # far from the assumed 2: the scaling matters here
    np.testing.assert_allclose(scaled_laplacian(torch.tensor(a), lambda_max=1.5).numpy(),
                               _np_scaled_laplacian(a, 1.5), atol=1e-12)


def test_scaled_laplacian_of_a_graph_with_an_isolated_node():
    a = np.array(ADJ)
    a[3, :] = a[:, 3] = 0.0
    got = scaled_laplacian(torch.tensor(a)).numpy()
    np.testing.assert_allclose(got, _np_scaled_laplacian(a), atol=1e-12)
    assert np.all(got[3, :3] == 0) and np.all(got[:3, 3] == 0)  # cut off from the others


def test_scaled_laplacian_refuses_a_directed_graph():
    with pytest.raises(InputError, match="symmetric"):
        scaled_laplacian(torch.tensor(np.triu(ADJ)))


def _cheb_reference(x, lap_terms, weight, bias):
    return sum(np.einsum("nm,bmc->bnc", t, x) @ w for t, w in zip(lap_terms, weight)) + bias


@pytest.mark.parametrize("K", [1, 2, 4])
def test_chebconv_matches_explicit_polynomial_matrices(K):
    torch.manual_seed(0)
    conv = ChebConv(5, 7, K).double()
    with torch.no_grad():
        conv.bias.normal_()
    lap = _np_scaled_laplacian(np.array(ADJ))
    terms = [np.eye(4), lap]
    while len(terms) < K:
        terms.append(2 * lap @ terms[-1] - terms[-2])
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    got = conv(torch.tensor(x), torch.tensor(lap)).detach().numpy()
    assert got.shape == (3, 4, 7)
    ref = _cheb_reference(x, terms[:K], conv.weight.detach().numpy(), conv.bias.detach().numpy())
    np.testing.assert_allclose(got, ref, atol=1e-10)


def test_chebconv_matches_spectral_chebyshev():
    torch.manual_seed(0)
    conv = ChebConv(2, 3, 4, bias=False).double()
    a = np.array(ADJ)
    lap = _np_scaled_laplacian(a)
    evals, evecs = np.linalg.eigh(lap)
    terms = [evecs @ np.diag(chebyshev.chebval(evals, np.eye(4)[k])) @ evecs.T for k in range(4)]
    x = np.random.default_rng(1).normal(size=(2, 4, 2))
    got = conv(torch.tensor(x), scaled_laplacian(torch.tensor(a))).detach().numpy()
    np.testing.assert_allclose(got, _cheb_reference(x, terms, conv.weight.detach().numpy(), 0.0), atol=1e-10)


def test_connectivity_graph_is_the_symmetric_thresholded_correlation():
    rng = np.random.default_rng(0)
    s = rng.normal(size=300)
    activity = np.stack([s + 0.3 * rng.normal(size=300), s + 0.3 * rng.normal(size=300),
                         rng.normal(size=300), -s + 0.3 * rng.normal(size=300), s + 0.5 * rng.normal(size=300)], 1)
    got = connectivity_graph(activity, threshold=0.5)
    corr = np.corrcoef(activity.T)
    expected = np.where(corr >= 0.5, corr, 0.0)
    np.fill_diagonal(expected, 0.0)
    assert got.dtype == np.float32 and got.shape == (5, 5)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.array_equal(got, got.T)
    assert got[0, 1] > 0.8 and got[0, 2] == 0 and got[0, 3] == 0 and got[4, 0] > 0.5
    assert (got.sum(1) > 0).tolist() == [True, True, False, False, True]  # the last node keeps its edges
    with pytest.raises(DataValueError, match="constant"):
        connectivity_graph(np.c_[activity, np.ones(300)])


def test_node_columns_from_labels():
    labels = np.array([3, 1, 5, 2, 7, 0, 4, 6, 1])
    assert node_columns_from_labels(labels, [[1, 2], [3, 4], [5, 6, 7]]) == [[1, 3, 8], [0, 6], [2, 4, 7]]
    with pytest.raises(DataValueError, match=r"\[\[8, 9\]\]"):
        node_columns_from_labels(labels, [[1, 2], [8, 9]])


def test_unknown_arch_and_missing_graph_raise_input_errors():
    with pytest.raises(InputError, match="unknown latent mapper") as info:
        LatentMapper("transformer", V, D)
    assert info.value.found == "'transformer'" and "gcn" in info.value.expected
    with pytest.raises(InputError, match="needs its graph"):
        LatentMapper("gcn", V, D)
    with pytest.raises(InputError, match="adjacency"):
        LatentMapper("gcn", V, D, node_columns=[[0, 1], [2]], adjacency=ADJ)


@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_round_trip_and_predict(arch, tmp_path):
    model = _tiny(arch)
    x, y = _planted(16)
    model.set_target_statistics(y)
    model.train()
    model(x)  # moves the BatchNorm running statistics away from their defaults
    model.ijk.copy_(torch.arange(3 * V, dtype=torch.int32).reshape(V, 3))
    assert model(x).shape == (16, D)
    with pytest.raises(DataValueError, match="do not fit"):
        model(x[:, :-1])

    pred = model.predict(x)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(pred, model(x) * model.target_std + model.target_mean)
        torch.testing.assert_close(model(x), model(x))  # deterministic in eval mode

    model.save_pretrained(tmp_path / "m")
    record = json.loads((tmp_path / "m" / "config.json").read_text())
    assert record["class"] == "LatentMapper" and record["config"]["arch"] == arch
    loaded = PretrainedModule.from_pretrained(tmp_path / "m")
    assert type(loaded) is LatentMapper
    torch.testing.assert_close(loaded.predict(x), pred, rtol=0, atol=0)
    for name in ["ijk", "target_mean", "target_std"]:
        assert torch.equal(getattr(loaded, name), getattr(model, name))
    assert loaded.ijk.dtype == torch.int32


def test_gcn_node_features_are_zero_padded_columns():
    columns = [[5, 0, 9], [2], [30, 31, 32, 33, 36]]
    model = LatentMapper("gcn", V, D, channels=2, gcn_width=4, gcn_hidden=6, node_columns=columns,
                         adjacency=np.array(ADJ[:3])[:, :3]).eval()
    seen = []
    model.cheb1.register_forward_hook(lambda module, args, out: seen.append(args))
    x = torch.randn(2, V)
    out = model(x)
    expected = np.zeros((2, 3, 5), dtype=np.float32)
    for i, cols in enumerate(columns):
        expected[:, i, :len(cols)] = x.numpy()[:, cols]
    np.testing.assert_array_equal(seen[0][0].numpy(), expected)
    np.testing.assert_allclose(seen[0][1].numpy(), _np_scaled_laplacian(np.array(ADJ[:3])[:, :3]), atol=1e-6)
    unused = x.clone()
    unused[:, [1, 3, 20]] += 7.0  # columns in no node do not matter
    torch.testing.assert_close(model(unused), out)


def test_set_target_statistics_and_standardize():
    model = _tiny("ridge")
    y = torch.randn(9, D, dtype=torch.float64)
    y[:, 4] = 2.5
    model.set_target_statistics(y)
    std = np.maximum(y.numpy().std(axis=0, ddof=1), 1e-6)
    np.testing.assert_allclose(model.target_mean.numpy(), y.numpy().mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.target_std.numpy(), std, rtol=1e-5)
    np.testing.assert_allclose(model.standardize(y.float()).numpy(),
                               (y.numpy() - y.numpy().mean(axis=0)) / std, rtol=1e-4, atol=1e-4)
    with pytest.raises(DataValueError):
        model.set_target_statistics(torch.randn(9, D + 1))


def test_vae_loss_has_reconstruction_and_kl_terms():
    model = _tiny("vae").eval()
    x, y = _planted(8)
    loss, parts = model.training_loss(x, y)
    assert set(parts) == {"mse", "recon", "kl"}
    mean, logvar = model.encoder(x).chunk(2, dim=1)
    expected_kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).mean()
    assert parts["kl"] == pytest.approx(expected_kl.item(), rel=1e-5)
    assert parts["recon"] == pytest.approx(((model.reconstruction(mean) - x) ** 2).mean().item(), rel=1e-5)
    assert loss.item() == pytest.approx(parts["mse"] + parts["recon"] + 1e-3 * parts["kl"], rel=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_training_fits_a_planted_linear_map(arch):
    model = _tiny(arch).train()
    x, y = _planted()
    model.set_target_statistics(y)
    y_std = model.standardize(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses, mses = [], []
    for _ in range(60):
        loss, parts = model.training_loss(x, y_std)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        mses.append(parts["mse"])
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    assert mses[-1] < 0.5 * mses[0], mses[::10]
