import json

import pytest
import torch

from fmrikit.errors import CorruptFileError
from fmrikit.methods.mindeye.targets import retrieval_scores
from fmrikit.engine.distributed import Distributed
from fmrikit.methods.mindeye.loop import fit
from fmrikit.methods.troi.gate import VoxelGate
from fmrikit.engine.checkpoint import STATE_NAME, TRAINER_NAME
from tests.decoding_problem import quick_settings, synthetic_problem, tiny_model

CPU = Distributed(0, 1, torch.device("cpu"))
SUBJECTS = {"sub-01": 30, "sub-02": 23}


class Interrupt(Exception):
    pass


def train(model, data, targets, settings, **kw):
    return fit(model, data, targets, settings, CPU, param_groups=[{"params": model.parameters()}], **kw)


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)


def test_resume_continues_exactly_where_the_interrupted_run_stopped(tmp_path):
    data, targets, _ = synthetic_problem(SUBJECTS)
    settings = quick_settings()  # 4 epochs: MixCo for 2, then soft CLIP
    whole = tiny_model(data)
    full = train(whole, data, targets, settings)

    def stop_after_two(epoch):
        if epoch == 2:  # before epoch 3's checkpoint: the folder holds 2 epochs
            raise Interrupt

    with pytest.raises(Interrupt):
        train(tiny_model(data), data, targets, settings, checkpoint=tmp_path / "ckpt", epoch_end=stop_after_two)
    assert len(json.loads((tmp_path / "ckpt/history.json").read_text())) == 2
    resumed = tiny_model(data, seed=99)  # other initial weights: everything must come from the checkpoint
    result = train(resumed, data, targets, settings, checkpoint=tmp_path / "ckpt", resume=True)
    assert_same_weights(whole, resumed)
    assert [r["loss"] for r in result.history] == [r["loss"] for r in full.history]
    assert [r["objective"] for r in result.history] == ["mixco"] * 2 + ["soft_clip"] * 2


def test_same_seed_same_weights_other_seed_other_weights():
    data, targets, _ = synthetic_problem(SUBJECTS)
    runs = []
    for seed in (0, 0, 1):
        model = tiny_model(data)
        train(model, data, targets, quick_settings(epochs=2, seed=seed))
        runs.append(model)
    assert_same_weights(runs[0], runs[1])
    w0, w2 = runs[0].inputs["sub-01"].linear.weight, runs[2].inputs["sub-01"].linear.weight
    assert not torch.allclose(w0, w2, atol=1e-4)


def test_loss_falls_and_held_out_retrieval_beats_chance():
    data, targets, test_targets = synthetic_problem({"sub-01": 40}, n_train=160, n_test=40, noise=0.3)
    model = tiny_model(data)
    result = train(model, data, targets, quick_settings(epochs=12, batch_size=32, lr=1e-2, mixco_fraction=0.0))
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.7 * losses[0]
    scores = retrieval_scores(model, data[0], test_targets["sub-01"])
    assert scores["n_candidates"] == 40
    assert scores["image_retrieval"] > 5 * scores["chance"] and scores["brain_retrieval"] > 5 * scores["chance"]


def test_voxel_gate_zeroes_weights_under_the_threshold_for_good():
    gate = VoxelGate(5, threshold=0.5, lasso=0.1, step_size=0.5)
    with torch.no_grad():
        gate.weight.copy_(torch.tensor([1.0, 0.2, 0.74, -0.3, 0.6]))
    gate.after_step()  # LASSO's proximal step: |w| shrinks by 0.5 x 0.1, then w < 0.5 dies
    assert gate.alive.tolist() == [True, False, True, False, True]
    assert gate.weight.tolist() == pytest.approx([0.95, 0.0, 0.69, 0.0, 0.55])
    with torch.no_grad():
        gate.weight.fill_(2.0)  # an optimiser step pushing every weight up again
    gate.after_step()
    assert gate.weight.tolist() == pytest.approx([1.95, 0.0, 1.95, 0.0, 1.95])
    assert gate(torch.ones(1, 5))[0].tolist() == pytest.approx([1.95, 0.0, 1.95, 0.0, 1.95])
    assert gate.penalty().item() == 0 and gate.lasso_value() == pytest.approx(0.1 * 3 * 1.95)


def test_voxel_gate_in_training_only_loses_voxels():
    data, targets, _ = synthetic_problem({"sub-01": 30})
    model = tiny_model(data)
    gate = VoxelGate(30, threshold=0.5, lasso=1e-2)
    with torch.no_grad():
        gate.weight.copy_(torch.linspace(0.3, 1.2, 30))
    alive = []

    def record(epoch):
        alive.append(gate.alive.clone())
        assert torch.all(gate.weight[~gate.alive] == 0)

    fit(model, data, targets, quick_settings(), CPU, gates={"sub-01": gate}, epoch_end=record,
        param_groups=[{"params": model.parameters()}, {"params": [gate.weight], "lr": 5e-2, "weight_decay": 0.0}])
    assert not alive[0][:6].any() and alive[-1].any()  # the 6 under 0.5 at the start die on the first step
    for before, after in zip(alive, alive[1:]):
        assert not (after & ~before).any()
    w = gate.weight.detach()
    assert gate.lasso_value() == pytest.approx(1e-2 * float(w[gate.alive].abs().sum()), rel=1e-5)


def test_frozen_parameters_do_not_change():
    data, targets, _ = synthetic_problem(SUBJECTS)
    model = tiny_model(data)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("inputs."))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, data, targets, quick_settings(epochs=2, weight_decay=0.1))  # every parameter is in the optimiser
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and len(trainable) < len(before)
    for k, v in model.state_dict().items():
        if k in trainable:
            assert not torch.equal(v, before[k]), k
        else:
            torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("damage", [STATE_NAME, TRAINER_NAME, "history.json", "other model"])
def test_damaged_checkpoint_refuses_to_resume(tmp_path, damage):
    data, targets, _ = synthetic_problem(SUBJECTS)
    ckpt = tmp_path / "ckpt"
    train(tiny_model(data), data, targets, quick_settings(epochs=1), checkpoint=ckpt)
    if damage == "other model":
        data, targets, _ = synthetic_problem({"sub-01": 31, "sub-02": 23})
    else:
        blob = (ckpt / damage).read_bytes()
        (ckpt / damage).write_bytes(blob[:len(blob) // 2])
    with pytest.raises(CorruptFileError, match="cannot resume"):
        train(tiny_model(data), data, targets, quick_settings(epochs=2), checkpoint=ckpt, resume=True)
