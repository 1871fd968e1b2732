import numpy as np
import pytest

from fmrikit.methods.troi.stages import keep_count, lowpass, select


def test_keep_count_reaches_the_budget_on_the_last_epoch_and_never_grows():
    counts = [keep_count(80_000, 3000, 15, e, warmup=5) for e in range(15)]
    assert counts[:5] == [80_000] * 5 and counts[5] < 80_000
    assert counts[-1] == 3000
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    # geometric: a constant ratio between epochs after the warm-up
    ratios = np.array(counts[6:]) / np.array(counts[5:-1])
    assert np.allclose(ratios, (3000 / 80_000) ** 0.1, atol=2e-3)
    assert keep_count(2000, 3000, 15, 0) == 2000  # already under budget


def test_lowpass_equals_a_brute_force_weighted_gaussian_mean():
    rng = np.random.default_rng(0)
    shape = (6, 7, 5)
    ijk = np.argwhere(rng.uniform(size=shape) < 0.5)
    values = rng.normal(size=len(ijk))
    affine = np.diag([2.0, 1.5, 2.5, 1.0])
    sigma = 2.0
    got = lowpass(values, ijk, shape, affine, sigma)
    # direct weighted mean over every voxel pair with a 1D Gaussian kernel per axis, truncated at 4 sigma (scipy's default)
    sig_vox = sigma / np.array([2.0, 1.5, 2.5])
    radius = np.floor(4 * sig_vox + 0.5).astype(int)
    expected, norm = np.zeros(len(ijk)), np.zeros(len(ijk))
    for a, p in enumerate(ijk):
        for b, q in enumerate(ijk):
            d = p - q
            if np.any(np.abs(d) > radius):
                continue
            w = 1.0
            for ax in range(3):
                k = np.exp(-0.5 * (np.arange(-radius[ax], radius[ax] + 1) / sig_vox[ax]) ** 2)
                w *= k[d[ax] + radius[ax]] / k.sum()
            expected[a] += w * values[b]
            norm[a] += w
    expected /= norm
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_select_keeps_the_highest_positive_alive_scores():
    scores = np.array([0.5, 0.9, -1.0, 0.7, 0.9, 0.0, 0.8])
    alive = np.array([True, True, True, True, False, True, True])
    kept = select(scores, alive, 3)
    assert np.nonzero(kept)[0].tolist() == [1, 3, 6]
    assert select(scores, alive, 10).sum() == 4  # only alive voxels with positive scores


def _neighbours(w):  # a 1-D "low-pass": the mean of each voxel and its two neighbours
    padded = np.concatenate([[w[0]], w, [w[-1]]])
    return (padded[:-2] + padded[1:-1] + padded[2:]) / 3


def test_gate_lasso_is_a_proximal_step_then_lowpass_then_threshold():
    import torch

    from fmrikit.methods.troi.gate import VoxelGate

    gate = VoxelGate(6, threshold=0.5, lasso=0.25, lowpass=_neighbours, step_size=0.4)
    start = np.array([1.1, 1.1, 0.3, 1.1, 0.2, 0.05])
    with torch.no_grad():
        gate.weight.copy_(torch.tensor(start))
    assert gate.penalty().item() == 0  # the LASSO never enters the loss's gradient (AdamW would normalise it away)
    assert gate.lasso_value() == pytest.approx(0.25 * start.sum(), rel=1e-6)
    gate.after_step()
    shrunk = np.maximum(start - 0.4 * 0.25, 0)  # soft threshold by step * lasso: [1, 1, .2, 1, .1, 0]
    kept = _neighbours(shrunk) >= 0.5  # filtered [1, .733, .733, .433, .367, .033]
    assert gate.alive.numpy().tolist() == kept.tolist() == [True, True, True, False, False, False]
    np.testing.assert_allclose(gate.weight.detach().numpy(), np.where(kept, shrunk, 0), rtol=1e-6)
    np.testing.assert_allclose(gate.scores(), _neighbours(np.where(kept, shrunk, 0)), rtol=1e-6)
    gate.keep_only(np.array([True, False, True, True, True, True]))
    assert gate.alive.tolist() == [True, False, True, False, False, False] and gate.weight[1] == 0


def test_gate_floor_keeps_the_best_filtered_voxels_and_then_stops_shrinking():
    import torch

    from fmrikit.methods.troi.gate import VoxelGate

    gate = VoxelGate(6, threshold=0.5, lasso=1.0, step_size=0.3, floor=2)
    w = np.array([0.6, 0.7, 0.75, 0.4, 0.65, 0.2])
    with torch.no_grad():
        gate.weight.copy_(torch.tensor(w))
    gate.after_step()  # shrunk [.3, .4, .45, .1, .35, 0]: all below 0.5, so the floor keeps the 2 best
    assert np.nonzero(gate.alive.numpy())[0].tolist() == [1, 2]
    before = gate.weight.detach().clone()
    gate.after_step()  # at the floor: nothing moves any more
    torch.testing.assert_close(gate.weight.detach(), before)
    assert int(gate.alive.sum()) == 2


def test_occipital_crop_keeps_the_posterior_fraction_in_world_coordinates():
    from types import SimpleNamespace

    from fmrikit.methods.troi.stages import occipital_columns

    rng = np.random.default_rng(0)
    ijk = np.argwhere(rng.uniform(size=(6, 9, 4)) < 0.6)
    # the second voxel axis runs from anterior to posterior (negative y step), as in NSD's func1pt8mm grids
    affine = np.array([[-1.8, 0, 0, 90], [0, -2.0, 0, 30], [0, 0, 1.5, -20], [0, 0, 0, 1.0]])
    info = SimpleNamespace(is_surface=False, ijk=ijk, affine=affine, n_voxels=len(ijk))
    got = occipital_columns(info, 0.4)
    y = 30 - 2.0 * ijk[:, 1]
    expected = np.nonzero(y <= y.min() + 0.4 * (y.max() - y.min()))[0]
    np.testing.assert_array_equal(got, expected)
    assert ijk[got, 1].min() >= ijk[:, 1].max() - 0.4 * (ijk[:, 1].max() - ijk[:, 1].min())  # the back of the grid
    assert len(occipital_columns(info, 1.0)) == len(ijk)
