"""Per-subject ridge encoding baseline: image features to voxel responses, one alpha per voxel.

:func:`fit_ridge` z-scores the features, then fits himalaya's ``RidgeCV`` with an intercept,
choosing each voxel's alpha by K-fold cross-validation (R^2 averaged over folds).
:class:`RidgeEncoder` predicts and saves to one HDF5 file:

``weights``       float32 (D, V), on z-scored features
``intercept``     float32 (V,)
``feature_mean``  float64 (D,)
``feature_std``   float64 (D,)
``alphas``        float64 (V,)
``cv_scores``     float32 (V,)
attributes        ``format`` (``"fmrikit-ridge"``), ``fmrikit_version``
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmrikit.errors import CorruptFileError, DataValueError, InputError, OutputExistsError
from fmrikit.io.hdf5 import open_h5
from fmrikit.checks import check_option

#: Alphas tried when none are given: 17 values, 1e-2 to 1e6, two per decade.
DEFAULT_ALPHAS = np.logspace(-2, 6, 17)
#: himalaya backends :func:`fit_ridge` accepts.
BACKENDS = ("numpy", "torch", "torch_cuda")
#: Value of the ``format`` attribute of a saved encoder.
FORMAT = "fmrikit-ridge"
_FIELDS = ("weights", "intercept", "feature_mean", "feature_std", "alphas", "cv_scores")


@dataclass
class RidgeEncoder:
    """Per-voxel ridge from standardised features to responses.

    Attributes
    ----------
    weights : ndarray of float32, shape (D, V)
        Coefficients on z-scored features (response units per feature sd).
    intercept : ndarray of float32, shape (V,)
        Response at the mean feature vector (the training mean of each voxel).
    feature_mean, feature_std : ndarray of float64, shape (D,)
        Training mean and sd of each feature; sd is 1 for constant features.
    alphas : ndarray of float64, shape (V,)
        Alpha chosen for each voxel.
    cv_scores : ndarray of float32, shape (V,)
        Each voxel's cross-validated R^2 at its alpha, averaged over folds, as himalaya reports it.
    """

    weights: np.ndarray
    intercept: np.ndarray
    feature_mean: np.ndarray
    feature_std: np.ndarray
    alphas: np.ndarray
    cv_scores: np.ndarray

    @property
    def n_features(self) -> int:
        return self.weights.shape[0]

    @property
    def n_voxels(self) -> int:
        return self.weights.shape[1]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted responses.

        Parameters
        ----------
        features : ndarray, shape (N, D)
            Raw (not z-scored) features, as given to :func:`fit_ridge`.

        Returns
        -------
        ndarray of float32, shape (N, V)
            In the units of the training responses.

        Raises
        ------
        DataValueError
            Wrong shape or non-finite values.
        """
        x = _check_matrix(features, "features", n_cols=self.n_features)
        z = ((x - self.feature_mean) / self.feature_std).astype(self.weights.dtype)
        return (z @ self.weights + self.intercept).astype(np.float32, copy=False)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the encoder to an HDF5 file, under a temporary name first, then renamed.

        Parameters
        ----------
        path : path-like
            Output file (``.h5``).
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        Path

        Raises
        ------
        OutputExistsError
            ``path`` exists and ``overwrite`` is False.
        """
        import h5py

        from fmrikit._version import __version__

        path = Path(path)
        if path.exists() and not overwrite:
            raise OutputExistsError("output exists already; pass overwrite to replace it", path=path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        try:
            with h5py.File(tmp, "w") as f:
                for name in _FIELDS:
                    f.create_dataset(name, data=getattr(self, name))
                f.attrs.update({"format": FORMAT, "fmrikit_version": __version__})
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> RidgeEncoder:
        """Read an encoder written by :meth:`save`.

        Raises
        ------
        MissingInputError
            No such file.
        CorruptFileError
            Not a readable HDF5 file, not a ridge encoder, or datasets missing or of inconsistent shapes.
        """
        with open_h5(path) as f:
            if f.attrs.get("format") != FORMAT:
                raise CorruptFileError("not a ridge encoder file", path=path, expected=f"format '{FORMAT}'",
                                       found=repr(f.attrs.get("format")))
            missing = [n for n in _FIELDS if n not in f]
            if missing:
                raise CorruptFileError("datasets missing", path=path, expected=", ".join(_FIELDS),
                                       found=f"no {', '.join(missing)}")
            try:
                arrays = {n: f[n][()] for n in _FIELDS}
            except (OSError, RuntimeError) as exc:
                raise CorruptFileError("cannot read data (truncated or corrupt?)", path=path,
                                       found=str(exc).splitlines()[0]) from exc
        d, v = arrays["weights"].shape if arrays["weights"].ndim == 2 else (-1, -1)
        expected = {"weights": (d, v), "intercept": (v,), "feature_mean": (d,), "feature_std": (d,),
                    "alphas": (v,), "cv_scores": (v,)}
        bad = [f"{n} {arrays[n].shape}" for n in _FIELDS if d < 0 or arrays[n].shape != expected[n]]
        if bad:
            raise CorruptFileError("inconsistent dataset shapes", path=path,
                                   expected="weights (D, V), intercept/alphas/cv_scores (V,), feature stats (D,)",
                                   found=", ".join(bad))
        return cls(**arrays)


def fit_ridge(features: np.ndarray, responses: np.ndarray, *, alphas: np.ndarray | None = None, cv: int = 5,
              backend: str = "numpy", n_targets_batch: int | None = None, seed: int = 0,
              groups: np.ndarray | None = None) -> RidgeEncoder:
    """Fit one ridge regression per voxel, its alpha chosen by K-fold cross-validation.

    Features are z-scored with their mean and sd over all rows (constant features get sd 1).
    himalaya's ``RidgeCV`` then fits with ``fit_intercept=True``: in each fold, features and
    responses are centred on the fold's training rows; the score of an alpha is the validation
    R^2 averaged over the folds; each voxel is refit on all rows with its best alpha (ties go to
    the larger alpha). Computation runs in float64 if either input is float64, else float32.

    Parameters
    ----------
    features : ndarray, shape (N, D)
        Image features of the N training trials.
    responses : ndarray, shape (N, V)
        Responses (betas) of V voxels.
    alphas : ndarray, shape (n_alphas,), optional
        Positive candidate alphas; default :data:`DEFAULT_ALPHAS` (``np.logspace(-2, 6, 17)``).
    cv : int
        Number of folds, >= 2; rows are shuffled with ``seed`` (``KFold(cv, shuffle=True)``).
    backend : {"numpy", "torch", "torch_cuda"}
        himalaya backend; if it cannot be loaded, himalaya warns and keeps the current one. The
        previous backend is restored afterwards.
    n_targets_batch : int, optional
        Voxels solved at once (to bound memory); all by default.
    seed : int
        Random state of the fold shuffling.
    groups : ndarray, shape (N,), optional
        A label per row (e.g. each trial's stimulus): the rows of a group share one fold, so the repeats of an
        image never validate each other (which would favour too small an alpha); groups are shuffled into the
        folds with ``seed``. Default: rows are folded one by one.

    Returns
    -------
    RidgeEncoder

    Raises
    ------
    DataValueError
        Wrong shapes, row counts that differ, fewer than ``cv + 1`` rows, non-finite values.
    InputError
        Bad ``alphas``, ``cv``, ``backend`` or ``n_targets_batch``.
    """
    x = _check_matrix(features, "features")
    y = _check_matrix(responses, "responses")
    if len(x) != len(y):
        raise DataValueError("features and responses have different numbers of rows",
                             expected=f"{len(x)} response rows", found=str(len(y)))
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise InputError("cv must be an integer number of folds", expected="cv >= 2", found=repr(cv))
    if len(x) < cv + 1:
        raise DataValueError("too few rows for cross-validation", expected=f"at least {cv + 1} rows (cv + 1)",
                             found=str(len(x)))
    grid = _check_alphas(DEFAULT_ALPHAS if alphas is None else alphas)
    check_option("himalaya backend", backend, BACKENDS)
    if n_targets_batch is not None and (isinstance(n_targets_batch, bool)
                                        or not isinstance(n_targets_batch, (int, np.integer)) or n_targets_batch < 1):
        raise InputError("n_targets_batch must be a positive integer or None", expected=">= 1",
                         found=repr(n_targets_batch))

    from himalaya.backend import get_backend, set_backend
    from himalaya.ridge import RidgeCV
    from himalaya.scoring import r2_score
    from sklearn.model_selection import KFold, PredefinedSplit

    splitter = KFold(cv, shuffle=True, random_state=seed)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (len(x),):
            raise DataValueError("one group label per row is needed", expected=f"shape ({len(x)},)",
                                 found=f"shape {groups.shape}")
        ids, inverse = np.unique(groups, return_inverse=True)
        if len(ids) < cv:
            raise DataValueError("too few groups for cross-validation", expected=f">= {cv} groups",
                                 found=str(len(ids)))
        fold = np.empty(len(ids), np.int64)
        fold[np.random.default_rng(seed).permutation(len(ids))] = np.arange(len(ids)) % cv
        splitter = PredefinedSplit(fold[inverse])

    dtype = np.result_type(x.dtype, y.dtype, np.float32)
    mean, std = x.mean(0, dtype=np.float64), x.std(0, dtype=np.float64)
    std[np.ptp(x, axis=0) == 0] = 1.0
    z = ((x - mean) / std).astype(dtype)
    previous = get_backend().name
    hb = set_backend(backend, on_error="warn")
    try:
        model = RidgeCV(alphas=grid, fit_intercept=True, cv=splitter,
                        solver_params={"score_func": r2_score, "n_targets_batch": n_targets_batch, "warn": False})
        model.fit(z, y.astype(dtype, copy=False))
        out = {k: np.asarray(hb.to_numpy(getattr(model, k)), dtype=np.float64)
               for k in ("coef_", "intercept_", "best_alphas_", "cv_scores_")}
    finally:
        set_backend(previous)
    # himalaya returns exp(-log(alpha)); snap back to the exact grid value
    chosen = grid[np.abs(np.log(out["best_alphas_"])[:, None] - np.log(grid)[None]).argmin(1)]
    return RidgeEncoder(weights=out["coef_"].astype(np.float32), intercept=out["intercept_"].astype(np.float32),
                        feature_mean=mean, feature_std=std, alphas=chosen,
                        cv_scores=out["cv_scores_"].astype(np.float32))


def _check_matrix(a, name: str, n_cols: int | None = None) -> np.ndarray:
    """``a`` as a finite, non-empty 2-D float array (float64 stays float64, other types become float32)."""
    a = np.asarray(a)
    want = f"(N, {n_cols})" if n_cols is not None else "(N, D)"
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0 or (n_cols is not None and a.shape[1] != n_cols):
        raise DataValueError(f"{name} must be a non-empty 2-D array", expected=f"shape {want}",
                             found=f"shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise DataValueError(f"{name} must be numeric", expected="float or int", found=str(a.dtype))
    a = a if a.dtype == np.float64 else a.astype(np.float32)
    if not np.isfinite(a).all():
        raise DataValueError(f"{name} contain NaN or Inf", expected="finite values",
                             found=f"{int((~np.isfinite(a)).sum())} non-finite")
    return a


def _check_alphas(alphas) -> np.ndarray:
    """Sorted unique positive finite alphas, float64."""
    try:
        a = np.asarray(alphas, dtype=np.float64)
    except (TypeError, ValueError):
        a = np.zeros(0)
    if a.ndim != 1 or not a.size or not np.isfinite(a).all() or (a <= 0).any():
        raise InputError("alphas must be a non-empty 1-D array of positive finite values",
                         expected="e.g. np.logspace(-2, 6, 17)", found=repr(alphas))
    return np.unique(a)
