"""Two gloo processes on CPU under ``torch.distributed.run`` (DistributedDataParallel)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

# Trains on the synthetic problem inside distributed("cpu") and saves each rank's final weights.
SCRIPT = '''
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from fmrikit.training.adapt import set_trainable
from fmrikit.training.distributed import distributed
from fmrikit.training.loop import fit
from tests.training.conftest import quick_settings, synthetic_problem, tiny_model

mode, out = sys.argv[1], Path(sys.argv[2])


class Interrupt(Exception):
    pass


def stop_after_one(epoch):
    if epoch == 1:
        raise Interrupt


def run(ctx, model, data, targets, **kw):
    params = [p for p in model.parameters() if p.requires_grad]
    fit(model, data, targets, quick_settings(epochs=3), ctx, param_groups=[{"params": params}], **kw)


def save(model, name):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / name)


with distributed("cpu") as ctx:
    if mode == "new-subject":  # roi-train / adapt-subject: sub-01's input layer takes no part
        data, targets, _ = synthetic_problem({"sub-01": 30, "sub-02": 23})
        model = tiny_model(data)
        set_trainable(model, "sub-02", train_shared=False)
        run(ctx, model, data[1:], {"sub-02": targets["sub-02"]})
        save(model, f"new{ctx.rank}.safetensors")
        sys.exit(0)
    data, targets, _ = synthetic_problem({"sub-01": 30, "sub-02": 23}, n_train=50)
    model = tiny_model(data)
    save(model, f"initial{ctx.rank}.safetensors")
    run(ctx, model, data, targets, checkpoint=out / "whole")
    save(model, f"whole{ctx.rank}.safetensors")
    try:
        run(ctx, tiny_model(data), data, targets, checkpoint=out / "cut", epoch_end=stop_after_one)
    except Interrupt:
        pass
    model = tiny_model(data, seed=99)
    run(ctx, model, data, targets, checkpoint=out / "cut", resume=True)
    save(model, f"resumed{ctx.rank}.safetensors")
'''


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def load(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "ddp_fit.py"
    path.write_text(SCRIPT)
    return path


def test_ranks_end_identical_and_resume_is_exact(script, tmp_path):
    res = torchrun([str(script), "fit", str(tmp_path)], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    initial, whole = load(tmp_path / "initial0.safetensors"), load(tmp_path / "whole0.safetensors")
    assert_same(whole, load(tmp_path / "whole1.safetensors"))
    assert not torch.equal(whole["inputs.sub-01.linear.weight"], initial["inputs.sub-01.linear.weight"])
    assert not torch.equal(whole["backbone.0.body.0.weight"], initial["backbone.0.body.0.weight"])
    resumed = load(tmp_path / "resumed0.safetensors")
    assert_same(resumed, load(tmp_path / "resumed1.safetensors"))
    assert_same(resumed, whole)


def test_a_new_subject_on_a_multi_subject_decoder(script, tmp_path):
    # DDP without find_unused_parameters: a trainable parameter outside the forward would stop the second step
    res = torchrun([str(script), "new-subject", str(tmp_path)], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert_same(load(tmp_path / "new0.safetensors"), load(tmp_path / "new1.safetensors"))


def test_pretrain_cli_under_torchrun(project, tmp_path):
    res = torchrun(["-m", "fmrikit.cli.main", "pretrain", "--subjects", "1,2", "--root", str(project),
                    "--epochs", "2", "--hidden", "16", "--blocks", "1", "--batch-size", "8", "--device", "cpu",
                    "--out", str(tmp_path / "decoder")], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "decoder/model.safetensors").is_file()
    assert not (tmp_path / ".decoder.checkpoint").exists()
    side = json.loads((tmp_path / "decoder/run.json").read_text())
    params = side["parameters"]
    assert params["world_size"] == 2 and params["subjects"] == ["sub-01", "sub-02"]
    assert params["model"]["hidden"] == 16 and params["model"]["n_blocks"] == 1
    assert params["training"]["epochs"] == 2 and params["training"]["batch_size"] == 8
    assert side["final_epoch"]["epoch"] == 2
    log = (tmp_path / "decoder/training_log.tsv").read_text().splitlines()
    assert len(log) == 3 and log[0].startswith("epoch\t")


def test_encoder_pretrain_cli_under_torchrun(project, tmp_path):
    res = torchrun(["-m", "fmrikit.cli.main", "pretrain", "--model", "encoder", "--subjects", "1,2", "--root",
                    str(project), "--epochs", "2", "--channels", "4", "--embed-dim", "8", "--batch-size", "8",
                    "--voxels-per-image", "40", "--device", "cpu", "--out", str(tmp_path / "encoder")], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    side = json.loads((tmp_path / "encoder/run.json").read_text())
    assert side["parameters"]["world_size"] == 2 and side["parameters"]["subjects"] == ["sub-01", "sub-02"]
    assert side["final_epoch"]["epoch"] == 2 and set(side["encoding"]) == {"sub-01", "sub-02"}
    assert not (tmp_path / ".encoder.checkpoint").exists()
