import numpy as np
import torch

from fmrikit.methods.mindeye.losses import mixco, mixco_nce, soft_clip_loss


def _log_softmax(a):
    a = a - a.max(axis=1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=1, keepdims=True))


def _normalise(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_mixco_nce_matches_a_loop_over_samples():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    weights, perm = rng.uniform(size=6), rng.permutation(6)
    p, t = _normalise(pred), _normalise(target)
    logits = p @ t.T / 0.1
    fwd, bwd = _log_softmax(logits), _log_softmax(logits.T)
    expected_f = expected_b = 0.0
    for i in range(6):
        expected_f -= weights[i] * fwd[i, i] + (1 - weights[i]) * fwd[i, perm[i]]
    for j in range(6):  # column j: the brain rows whose labels put mass on image j
        for i in range(6):
            label = (weights[i] if i == j else 0.0) + ((1 - weights[i]) if perm[i] == j else 0.0)
            expected_b -= label * bwd[j, i]
    expected = (expected_f / 6 + expected_b / 6) / 2
    got = mixco_nce(torch.tensor(pred), torch.tensor(target), 0.1, torch.tensor(weights), torch.tensor(perm))
    assert np.isclose(got.item(), expected)


def test_mixco_nce_without_mixing_is_the_clip_loss():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    logits = _normalise(pred) @ _normalise(target).T / 0.05
    expected = -(np.trace(_log_softmax(logits)) + np.trace(_log_softmax(logits.T))) / 10
    assert np.isclose(mixco_nce(torch.tensor(pred), torch.tensor(target), 0.05).item(), expected)


def test_soft_clip_loss_matches_numpy():
    rng = np.random.default_rng(2)
    pred, target = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    p, t = _normalise(pred), _normalise(target)
    teacher = np.exp(_log_softmax(t @ t.T / 0.2))
    logits = p @ t.T / 0.2
    expected = (-(_log_softmax(logits) * teacher).sum(1).mean() - (_log_softmax(logits.T) * teacher.T).sum(1).mean()) / 2
    assert np.isclose(soft_clip_loss(torch.tensor(pred), torch.tensor(target), 0.2).item(), expected)


def test_mixco_mixes_pairs_with_beta_weights():
    x = torch.arange(40, dtype=torch.float64).reshape(8, 5)
    mixed, w, perm = mixco(x, np.random.default_rng(3))
    assert sorted(perm.tolist()) == list(range(8))
    assert ((w >= 0) & (w <= 1)).all()
    for i in range(8):
        assert torch.allclose(mixed[i], w[i] * x[i] + (1 - w[i]) * x[perm[i]])
    again = mixco(x, np.random.default_rng(3))
    assert torch.equal(again[0], mixed)
