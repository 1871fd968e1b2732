"""The generic training plan: exact parameters, AdamW state, and what a step keeps, against hand counts."""

import pytest
import torch
from torch import nn

from fmrikit.engine.memory import GIB, plan_rows, training_plan
from fmrikit.errors import InputError


def _mlp():
    return {"net": nn.Sequential(nn.Linear(100, 200), nn.ReLU(), nn.Linear(200, 10)), "frozen": nn.Linear(10, 10)}


def _step(models, batch):
    x = torch.empty(batch, 100, device="meta")
    return models["frozen"](models["net"](x)).pow(2).mean()


def test_parameters_and_static_memory_are_counted_exactly():
    plan = training_plan("mlp", _mlp, _step, trainable={"net"}, batch_size=8, precision="fp32")
    n_net, n_frozen = 100 * 200 + 200 + 200 * 10 + 10, 10 * 10 + 10
    assert plan["parameters"] == {"total": n_net + n_frozen, "trainable": n_net}
    assert plan["training"]["static_bytes"] == 16 * n_net + 4 * n_frozen


def test_activations_scale_with_the_batch_and_bf16_halves_the_matmul_inputs():
    fp32 = training_plan("mlp", _mlp, _step, trainable={"net"}, batch_size=4, precision="fp32")["training"]
    # float32, batch 1, what autograd keeps: the first layer's input (100, for its weight gradient), the ReLU's
    # output (200, also the second layer's input: one storage), the input of the square (10). The frozen layer
    # keeps nothing: its weight gets no gradient, and the gradient to its input needs only the weight.
    assert fp32["activation_bytes_per_sample"] == 4 * (100 + 200 + 10)
    n_net = 100 * 200 + 200 + 200 * 10 + 10
    step = fp32["static_bytes"] + 4 * (fp32["activation_bytes_per_sample"] + fp32["backward_transient_bytes_per_sample"])
    assert fp32["total_bytes"] == max(step, fp32["static_bytes"] + 4 * n_net)  # AdamW's sqrt(v) temporary
    bf16 = training_plan("mlp", _mlp, _step, trainable={"net"}, batch_size=4)["training"]
    assert bf16["activation_bytes_per_sample"] < fp32["activation_bytes_per_sample"]


def test_verdicts_and_rows():
    plan = training_plan("mlp", _mlp, _step, trainable={"net"}, batch_size=1)
    assert all(g["training"] == "fits" and g["max_training_batch"] > 1000 for g in plan["gpus"])
    rows = plan_rows(plan)
    assert ("training", "TOTAL at batch 1", f"{plan['training']['total_bytes'] / GIB:.2f} GiB") in rows
    with pytest.raises(InputError, match="precision"):
        training_plan("mlp", _mlp, _step, trainable={"net"}, batch_size=1, precision="fp8")
