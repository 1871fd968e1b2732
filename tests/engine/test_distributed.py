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

from fmrikit.methods.mindeye.adapt import set_trainable
from fmrikit.engine.distributed import distributed
from fmrikit.methods.mindeye.loop import fit
from tests.decoding_problem import quick_settings, synthetic_problem, tiny_model

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


# fit_supervised on a float64 linear toy: under DDP each rank sees half of every batch, DDP averages the gradients.
SUPERVISED_SCRIPT = '''
import sys
from pathlib import Path

from fmrikit.engine.distributed import distributed
from tests.engine.test_distributed import toy_fit

with distributed("cpu") as ctx:
    toy_fit(Path(sys.argv[1]), f"ddp{ctx.rank}", ctx, checkpoint="ck-ddp")
'''


def toy_fit(out: Path, name: str, ctx=None, *, checkpoint: str | None = None, batch_size: int = 8,
            half: bool = False) -> None:
    """Two epochs of one step each (16 rows) on a float64 linear model; writes weights, history and rows seen.

    The validation loss falls by one each epoch on rank 0 and is one higher on rank 1. ``half``: the
    single-process loss sees only every other row of each batch (rank 0's share, without DDP)."""
    import json

    from safetensors.torch import save_file

    from fmrikit.engine.supervised import fit_supervised
    from fmrikit.engine.settings import SupervisedSettings

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    y = x @ torch.randn(5, 3, generator=gen, dtype=torch.float64) + torch.randn(16, 3, generator=gen,
                                                                               dtype=torch.float64)
    torch.manual_seed(1)
    model = torch.nn.Linear(5, 3).double()
    seen, calls = [], []

    def batch_loss(rows, net):
        rows = rows[::2] if half else rows
        seen.append(rows.tolist())
        idx = torch.from_numpy(rows)
        loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx])
        return loss, {"mse": loss.item()}

    rank = 0 if ctx is None else ctx.rank

    def val_loss():
        calls.append(1)
        return float(rank - len(calls))

    settings = SupervisedSettings(epochs=2, batch_size=batch_size, lr=0.05, patience=None)
    result = fit_supervised(model, batch_loss, 16, settings, device=torch.device("cpu"), val_loss=val_loss,
                            checkpoint=out / (checkpoint or f"ck-{name}"), ctx=ctx)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"{name}.safetensors")
    (out / f"{name}.json").write_text(json.dumps({"history": result.history, "seen": seen}))


def test_fit_supervised_ddp_step_is_the_full_batch_step(tmp_path):
    script = tmp_path / "ddp_supervised.py"
    script.write_text(SUPERVISED_SCRIPT)
    res = torchrun([str(script), str(tmp_path)], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    toy_fit(tmp_path, "full", batch_size=16)  # one process, each step on the union of the ranks' rows
    toy_fit(tmp_path, "half", batch_size=16, half=True)  # rank 0's rows alone
    runs = {k: json.loads((tmp_path / f"{k}.json").read_text()) for k in ("ddp0", "ddp1", "full")}
    for epoch in range(2):  # the ranks split every batch: disjoint halves of the single process's batch
        a, b = set(runs["ddp0"]["seen"][epoch]), set(runs["ddp1"]["seen"][epoch])
        assert len(a) == len(b) == 8 and not a & b and a | b == set(runs["full"]["seen"][epoch])
    ddp0, ddp1, full = (load(tmp_path / f"{k}.safetensors") for k in ("ddp0", "ddp1", "full"))
    assert_same(ddp0, ddp1)
    for k in full:
        torch.testing.assert_close(ddp0[k], full[k], rtol=1e-10, atol=1e-12, msg=k)
    half = load(tmp_path / "half.safetensors")
    assert not torch.allclose(half["weight"], full["weight"], rtol=1e-6, atol=1e-8)  # the test can tell
    for d, f in zip(runs["ddp0"]["history"], runs["full"]["history"]):  # logged: the mean over the ranks
        assert d["loss"] == pytest.approx(f["loss"], rel=1e-12) and d["mse"] == pytest.approx(f["mse"], rel=1e-12)
    assert runs["ddp0"]["history"] == runs["ddp1"]["history"]
    assert [r["val_loss"] for r in runs["ddp1"]["history"]] == [-1.0, -2.0]  # rank 0's, so one stopping decision
    assert sorted(p.name for p in tmp_path.glob("ck-ddp*")) == ["ck-ddp"]


def _copy_project(project: Path, dest: Path) -> Path:
    """The project's preprocessed datasets without flatmap caches or models (rank 0 builds the caches)."""
    import shutil

    return Path(shutil.copytree(project, dest, ignore=lambda d, names: [n for n in names if "flatmap" in n
                                                                           or n == "models"]))


def test_flatmap_ae_pretrain_cli_under_torchrun(project, tmp_path):
    root = _copy_project(project, tmp_path / "project")
    res = torchrun(["-m", "fmrikit.cli.main", "pretrain", "--model", "flatmap-ae", "--subjects", "1,2", "--preset",
                    "small", "--flatmap-size", "64", "--width", "32", "--depth", "2", "--heads", "2", "--epochs", "1",
                    "--device", "cpu", "--root", str(root), "--out", str(tmp_path / "models/fae")], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["fae"]  # no checkpoint left behind
    side = json.loads((tmp_path / "models/fae/run.json").read_text())
    assert side["parameters"]["world_size"] == 2 and side["parameters"]["training"]["epochs"] == 1
    assert len(list(root.glob("sub-0*/*flatmap-64.h5"))) == 2
    from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAutoencoder

    assert FlatmapAutoencoder.from_pretrained(tmp_path / "models/fae").config["width"] == 32


def test_neuropictor_pretrain_cli_under_torchrun(project, tmp_path):
    from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAutoencoder
    from fmrikit.methods.neuropictor.train import load_neuropictor
    from tests.tiny_diffusion import save_tiny_sd21

    root = _copy_project(project, tmp_path / "project")
    save_tiny_sd21(tmp_path / "sd21")
    torch.manual_seed(0)
    FlatmapAutoencoder(image_size=64, patch_size=16, width=32, depth=2, heads=2).save_pretrained(tmp_path / "ae")
    res = torchrun(["-m", "fmrikit.cli.main", "pretrain", "--model", "neuropictor", "--subjects", "1,2", "--pipeline",
                    str(tmp_path / "sd21"), "--flatmap-ae", str(tmp_path / "ae"), "--epochs", "1", "--batch-size", "8",
                    "--device", "cpu", "--root", str(root), "--out", str(tmp_path / "models/np")], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["np"]
    conditioner, controlnet, record = load_neuropictor(tmp_path / "models/np")
    assert record["subjects"] == [1, 2]
    side = json.loads((tmp_path / "models/np/run.json").read_text())
    assert side["parameters"]["world_size"] == 2 and side["parameters"]["training"]["batch_size"] == 8
    assert set(side["scores"]) == {"sub-01", "sub-02"}
