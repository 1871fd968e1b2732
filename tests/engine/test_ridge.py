import h5py
import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold

from fmrikit.errors import CorruptFileError, DataValueError, InputError, MissingInputError, OutputExistsError
from fmrikit.engine.ridge import DEFAULT_ALPHAS, RidgeEncoder, fit_ridge

N, D, V = 120, 15, 40


def _problem(noise_sd: np.ndarray, n: int = N, d: int = D, seed: int = 0):
    """Features with arbitrary means and scales; responses = linear map + offset + noise of sd ``noise_sd``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 5, d) + rng.normal(0, 3, d)
    w = rng.normal(size=(d, len(noise_sd)))
    w /= np.linalg.norm(w, axis=0)  # same signal strength in every voxel
    z = (x - x.mean(0)) / x.std(0)
    y = z @ w + rng.normal(0, 2, len(noise_sd)) + rng.normal(size=(n, len(noise_sd))) * noise_sd
    return x, y


def _standardise(x):
    return (x - x.mean(0)) / x.std(0)


@pytest.fixture(scope="module")
def fitted():
    x, y = _problem(np.logspace(-1.5, 1, V))
    return x, y, fit_ridge(x[:100], y[:100])


def test_predictions_match_sklearn_ridge_at_each_voxels_alpha(fitted):
    x, y, enc = fitted
    train_mean, train_std = x[:100].mean(0), x[:100].std(0)
    z_train, z_test = (x[:100] - train_mean) / train_std, (x[100:] - train_mean) / train_std
    got = enc.predict(x[100:])
    assert got.dtype == np.float32 and got.shape == (20, V)
    assert len(np.unique(enc.alphas)) > 3  # the check below covers several alphas
    for v in range(V):
        ref = Ridge(alpha=enc.alphas[v], fit_intercept=True).fit(z_train, y[:100, v])
        np.testing.assert_allclose(got[:, v], ref.predict(z_test), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(enc.weights[:, v], ref.coef_, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(enc.intercept[v], ref.intercept_, rtol=1e-6)


def test_chosen_alpha_is_the_best_mean_fold_r2_of_a_brute_force_search(fitted):
    x, y, enc = fitted
    z, y = _standardise(x[:100]), y[:100]
    scores = np.zeros((len(DEFAULT_ALPHAS), V))
    for i, alpha in enumerate(DEFAULT_ALPHAS):
        for train, val in KFold(5, shuffle=True, random_state=0).split(z):
            pred = Ridge(alpha=alpha, fit_intercept=True).fit(z[train], y[train]).predict(z[val])
            scores[i] += r2_score(y[val], pred, multioutput="raw_values") / 5
    best = scores.argmax(0)
    np.testing.assert_array_equal(enc.alphas, DEFAULT_ALPHAS[best])
    np.testing.assert_allclose(enc.cv_scores, scores[best, np.arange(V)], rtol=1e-5, atol=1e-6)


def test_noisier_voxels_get_larger_alphas():
    groups = np.array([0.1, 0.5, 2.0, 8.0])
    x, y = _problem(np.repeat(groups, 10), seed=1)
    enc = fit_ridge(x, y)
    mean_log_alpha = np.log10(enc.alphas).reshape(4, 10).mean(1)
    assert np.all(np.diff(mean_log_alpha) > 0), mean_log_alpha
    assert mean_log_alpha[-1] - mean_log_alpha[0] > 2
    assert np.all(np.diff(np.median(enc.cv_scores.reshape(4, 10), 1)) < 0)


def test_backends_and_target_batches_agree(fitted):
    x, y, enc = fitted
    for kw in ({"backend": "torch"}, {"n_targets_batch": 7}):
        other = fit_ridge(x[:100], y[:100], **kw)
        np.testing.assert_array_equal(other.alphas, enc.alphas)
        np.testing.assert_allclose(other.weights, enc.weights, rtol=1e-5, atol=1e-6)
    from himalaya.backend import get_backend

    assert get_backend().name == "numpy"  # the previous backend is restored


def test_float32_inputs_and_constant_feature():
    x, y = _problem(np.full(6, 0.5), d=5)
    x[:, 2] = 4.0
    enc = fit_ridge(x.astype(np.float32), y.astype(np.float32), alphas=[1.0, 10.0], cv=3)
    assert enc.feature_std[2] == 1 and enc.weights.dtype == np.float32
    assert np.isfinite(enc.weights).all() and np.abs(enc.weights[2]).max() < 1e-5
    assert set(enc.alphas) <= {1.0, 10.0}
    assert np.corrcoef(enc.predict(x).ravel(), y.ravel())[0, 1] > 0.8


def test_save_load_round_trip(fitted, tmp_path):
    _, _, enc = fitted
    path = enc.save(tmp_path / "ridge.h5")
    loaded = RidgeEncoder.load(path)
    for name in ("weights", "intercept", "feature_mean", "feature_std", "alphas", "cv_scores"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(enc, name))
        assert getattr(loaded, name).dtype == getattr(enc, name).dtype
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ridge.h5"]  # no temporary file left
    with pytest.raises(OutputExistsError):
        enc.save(path)
    enc.save(path, overwrite=True)


def test_load_errors(fitted, tmp_path):
    _, _, enc = fitted
    data = enc.save(tmp_path / "ridge.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError):
        RidgeEncoder.load(tmp_path / "cut.h5")
    with pytest.raises(MissingInputError):
        RidgeEncoder.load(tmp_path / "none.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["weights"] = np.zeros((2, 3))
    with pytest.raises(CorruptFileError, match="not a ridge encoder"):
        RidgeEncoder.load(tmp_path / "other.h5")
    with h5py.File(tmp_path / "ridge.h5", "a") as f:
        del f["alphas"]
        f["alphas"] = np.ones(V + 1)
    with pytest.raises(CorruptFileError, match="inconsistent"):
        RidgeEncoder.load(tmp_path / "ridge.h5")


@pytest.mark.parametrize("change, error, match", [
    ({"responses": np.ones((11, 3))}, DataValueError, "different numbers of rows"),
    ({"features": np.ones(12)}, DataValueError, "2-D"),
    ({"features": np.ones((12, 0))}, DataValueError, "2-D"),
    ({"responses": np.full((12, 3), np.nan)}, DataValueError, "NaN"),
    ({"features": np.ones((12, 4), dtype=object)}, DataValueError, "numeric"),
    ({"features": np.ones((5, 4)), "responses": np.ones((5, 3))}, DataValueError, "at least 6 rows"),
    ({"cv": 1}, InputError, "cv"),
    ({"alphas": [1.0, -1.0]}, InputError, "alphas"),
    ({"alphas": []}, InputError, "alphas"),
    ({"alphas": [[1.0]]}, InputError, "alphas"),
    ({"backend": "jax"}, InputError, "backend"),
    ({"n_targets_batch": 0}, InputError, "n_targets_batch"),
])
def test_bad_input(change, error, match):
    rng = np.random.default_rng(0)
    args = {"features": rng.normal(size=(12, 4)), "responses": rng.normal(size=(12, 3)), **change}
    with pytest.raises(error, match=match):
        fit_ridge(args.pop("features"), args.pop("responses"), **args)


def test_predict_checks_features(fitted):
    _, _, enc = fitted
    with pytest.raises(DataValueError, match=r"\(N, 15\)"):
        enc.predict(np.ones((3, D + 1)))
    with pytest.raises(DataValueError, match="NaN"):
        enc.predict(np.full((3, D), np.inf))


def test_simulated_world_informative_voxels_are_predicted_better(sim_world, tmp_path_factory):
    from fmrikit.analysis.metrics import voxel_pearson
    from fmrikit.data.preprocess import preprocess_nsd
    from fmrikit.features.cache import dataset_features
    from fmrikit.features.registry import get_extractor
    from fmrikit.data.splits import load_subject_data

    root = tmp_path_factory.mktemp("ridge-project")
    data = load_subject_data(preprocess_nsd(sim_world, 1, root=root, flatmap=False).betas, "sub-01")
    gabor = get_extractor("gabor")
    train_f = dataset_features(data.info, data.train_stim, gabor, root=root, device="cpu")
    test_f = dataset_features(data.info, data.test_stim, gabor, root=root, device="cpu")
    enc = fit_ridge(train_f, data.train_x.numpy())
    r = voxel_pearson(enc.predict(test_f), data.test_x.numpy())
    with h5py.File(sim_world / "simulation_truth.h5", "r") as f:
        informative = f["subj01/informative_mask"][:][tuple(data.ijk.T)]
    assert 0 < informative.sum() < len(informative)
    assert np.nanmedian(r[informative]) > np.nanmedian(r[~informative]) + 0.2
    assert np.median(enc.cv_scores[informative]) > np.median(enc.cv_scores[~informative])


def test_groups_keep_an_images_repeats_in_one_fold():
    # 40 images seen 3 times each: the same features, independent noise. Folded row by row, each validation row's
    # twins are in training and reward fitting the noise (small alphas); folded by image they cannot.
    rng = np.random.default_rng(1)
    x_img, _ = _problem(np.ones(V), n=40, d=30)
    w = rng.normal(size=(30, V)) * 0.3
    x = np.repeat(x_img, 3, axis=0)
    y = _standardise(x) @ w + rng.normal(0, 3, (120, V)) + np.repeat(rng.normal(0, 3, (40, V)), 3, axis=0)
    groups = np.repeat(np.arange(40), 3)
    by_row, by_image = fit_ridge(x, y), fit_ridge(x, y, groups=groups)
    assert np.median(by_image.alphas) > 10 * np.median(by_row.alphas)
    with pytest.raises(DataValueError, match="group label per row"):
        fit_ridge(x, y, groups=groups[:-1])
    with pytest.raises(DataValueError, match="too few groups"):
        fit_ridge(x, y, groups=np.arange(120) % 3)
