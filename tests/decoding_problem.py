"""A synthetic decoding problem: subjects whose betas are a linear map of image targets, and tiny decoders."""

import numpy as np
import torch

from fmrikit.methods.mindeye.model import MindEyeDecoder
from fmrikit.data.splits import SubjectData
from fmrikit.methods.mindeye.settings import ModelSize, TrainSettings

TINY = ModelSize(hidden=16, n_blocks=1, proj_hidden=16)


def synthetic_problem(n_voxels: dict[str, int], *, n_train: int = 48, n_test: int = 24, dim: int = 8,
                      noise: float = 0.5, seed: int = 0) -> tuple[list[SubjectData], dict, dict]:
    """Subjects whose betas are a linear map of their image targets plus noise.

    Returns
    -------
    data : list of SubjectData
    train_targets, test_targets : dict of str to Tensor, shapes (n_train, dim) and (n_test, dim)
    """
    rng = np.random.default_rng(seed)
    data, train_t, test_t = [], {}, {}
    for key, v in n_voxels.items():
        mixing = rng.normal(size=(dim, v))
        t = rng.normal(size=(n_train + n_test, dim))
        x = t @ mixing + noise * rng.normal(size=(n_train + n_test, v)) * np.sqrt(dim)
        x = (x - x.mean(0)) / x.std(0)
        x, t = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(t.astype(np.float32))
        data.append(SubjectData(key=key, info=None, columns=np.arange(v), train_x=x[:n_train],
                                train_stim=np.arange(n_train), test_x=x[n_train:],
                                test_stim=np.arange(n_train, n_train + n_test)))
        train_t[key], test_t[key] = t[:n_train], t[n_train:]
    return data, train_t, test_t


def tiny_model(data: list[SubjectData], dim: int = 8, seed: int = 0) -> MindEyeDecoder:
    """A tiny decoder over the subjects of ``data``, initialised from ``seed``."""
    torch.manual_seed(seed)
    return MindEyeDecoder({d.key: d.n_voxels for d in data}, embed_dim=dim, hidden=TINY.hidden,
                          n_blocks=TINY.n_blocks, proj_hidden=TINY.proj_hidden, dropout=TINY.dropout)


def quick_settings(**kw) -> TrainSettings:
    """Few epochs of small batches."""
    return TrainSettings(**{"epochs": 4, "batch_size": 16, "lr": 3e-3, **kw})
