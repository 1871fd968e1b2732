"""The reconstruction models' minibatch trainer: early stopping keeps the best epoch, resume is exact."""

import numpy as np
import torch

from fmrikit.engine.supervised import fit_supervised
from fmrikit.engine.settings import SupervisedSettings


def _problem(init_seed=0):
    torch.manual_seed(0)
    x = torch.randn(40, 5)
    y = x @ torch.randn(5, 3)
    torch.manual_seed(init_seed)
    model = torch.nn.Linear(5, 3)

    def batch_loss(rows, net):
        idx = torch.from_numpy(rows)
        loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx])
        return loss, {"mse": loss.item()}

    return model, batch_loss


def test_early_stopping_restores_the_best_epoch(tmp_path):
    model, batch_loss = _problem()
    scripted = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8])
    snapshots = []

    def val_loss():
        snapshots.append(model.weight.detach().clone())
        return next(scripted)

    result = fit_supervised(model, batch_loss, 40, SupervisedSettings(epochs=6, batch_size=8, lr=1e-2, patience=2),
                            device=torch.device("cpu"), val_loss=val_loss, checkpoint=tmp_path / "ck")
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]  # epochs 3 and 4 brought no gain
    assert result.best_epoch == 2
    assert torch.equal(model.weight, snapshots[1]) and not torch.equal(model.weight, snapshots[-1])


def test_resume_continues_exactly(tmp_path):
    settings = SupervisedSettings(epochs=4, batch_size=8, lr=1e-2, patience=None, seed=3)
    straight, loss_a = _problem()
    fit_supervised(straight, loss_a, 40, settings, device=torch.device("cpu"), checkpoint=tmp_path / "a")

    resumed, loss_b = _problem()
    half = SupervisedSettings(**{**settings.__dict__, "epochs": 2})
    fit_supervised(resumed, loss_b, 40, half, device=torch.device("cpu"), checkpoint=tmp_path / "b")
    again, loss_c = _problem(init_seed=1)  # other initial weights: everything must come from the checkpoint
    result = fit_supervised(again, loss_c, 40, settings, device=torch.device("cpu"), checkpoint=tmp_path / "b",
                            resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert torch.equal(again.weight, straight.weight) and torch.equal(again.bias, straight.bias)
    assert np.isfinite([r["loss"] for r in result.history]).all()
