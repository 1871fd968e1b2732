"""Real signals on ``fmrikit pretrain``: Ctrl-C keeps the last epoch's checkpoint, says how to resume in one line
and exits 130; SIGKILL in the middle of writing a checkpoint leaves a lock and a staging folder that the resumed run
removes, and the resumed run ends with the weights of a straight run, bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from fmrikit.cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]

#: Runs the command line given after the hook's settings, calling ``os.kill(pid, SIGNAL)`` at the ``AT``-th call of
#: ``HOOK`` (``module:attribute``).
SCRIPT = """
import importlib, os, signal, sys
module_name, name = os.environ["HOOK"].split(":")
module = importlib.import_module(module_name)
real, calls = getattr(module, name), []
def hook(*args, **kwargs):
    calls.append(1)
    if len(calls) == int(os.environ["AT"]):
        os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
    return real(*args, **kwargs)
setattr(module, name, hook)
from fmrikit.cli.main import main
sys.argv = ["fmrikit", *sys.argv[1:]]
main()
"""


def _decoder(project: Path, out: Path) -> list[str]:
    return ["pretrain", "decoder", "--subjects", "1,2", "--root", str(project), "--hidden", "16", "--blocks", "1",
            "--epochs", "2", "--batch-size", "8", "--device", "cpu", "--out", str(out)]


def _killed(args: list[str], hook: str, at: int, signal: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOOK=hook, AT=str(at), SIGNAL=signal, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1",
               HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def straight(project, tmp_path_factory, one_thread):
    """The decoder trained straight through its two epochs, and its optimiser steps per epoch."""
    from fmrikit.methods.mindeye import loop

    out = tmp_path_factory.mktemp("straight") / "decoder"
    real, calls = loop.optimizer_step, []
    loop.optimizer_step = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        result = runner.invoke(app, _decoder(project, out))
    finally:
        loop.optimizer_step = real
    assert result.exit_code == 0, result.output
    return load_file(out / "model.safetensors"), len(calls) // 2


def _resume_matches(project: Path, out: Path, weights: dict) -> None:
    result = runner.invoke(app, [*_decoder(project, out), "--resume"])
    assert result.exit_code == 0, result.output
    resumed = load_file(out / "model.safetensors")
    assert resumed.keys() == weights.keys() and all(torch.equal(resumed[k], weights[k]) for k in weights)
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # checkpoint, lock and staging gone


def test_ctrl_c_keeps_the_checkpoint_says_how_to_resume_and_exits_130(project, straight, tmp_path):
    weights, per_epoch = straight
    out = tmp_path / "decoder"
    killed = _killed(_decoder(project, out), "fmrikit.methods.mindeye.loop:optimizer_step", per_epoch + 2, "SIGINT")
    assert killed.returncode == 130, killed.stderr
    lines = [line for line in (killed.stdout + killed.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "--resume" in lines[0], lines
    assert "Traceback" not in killed.stderr
    checkpoint = tmp_path / ".decoder.checkpoint"
    assert str(checkpoint) in lines[0] and (checkpoint / "trainer.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".decoder.checkpoint"]  # no output, lock or staging
    history = (checkpoint / "history.json").read_text()
    assert '"epoch": 1' in history and '"epoch": 2' not in history
    _resume_matches(project, out, weights)


def test_sigkill_while_checkpointing_then_resume_is_bit_identical(project, straight, tmp_path):
    weights, _ = straight
    out = tmp_path / "decoder"
    killed = _killed(_decoder(project, out), "safetensors.torch:save_file", 2, "SIGKILL")  # epoch 2
    assert killed.returncode == -9
    left = sorted(p.name for p in tmp_path.iterdir())
    assert ".decoder.lock" in left and any(n.startswith(".staging-.decoder.checkpoint.") for n in left), left
    _resume_matches(project, out, weights)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".staging-", ".decoder.lock"))]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """A tiny Stable Diffusion 2.1-shaped pipeline and flatmap autoencoder for NeuroPictor."""
    from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapAutoencoder
    from tests.tiny_diffusion import save_tiny_sd21

    folder = tmp_path_factory.mktemp("parts")
    torch.manual_seed(0)
    FlatmapAutoencoder(image_size=64, patch_size=16, width=32, depth=1, heads=2).save_pretrained(folder / "fae")
    save_tiny_sd21(folder / "sd21")
    return folder


SUPERVISED = "fmrikit.engine.supervised:optimizer_step"
#: Each trainable model's command line (two epochs, tiny), where its optimiser steps, and its weights files.
MODELS = {
    "encoder": (lambda w, p: ["pretrain", "encoder", "--subjects", "1", "--channels", "4", "--embed-dim", "4",
                              "--batch-size", "8", "--voxels-per-image", "20"],
                "fmrikit.methods.encoder.fit:optimizer_step", ["model.safetensors"]),
    "autoencoder": (lambda w, p: ["pretrain", "autoencoder", "--subjects", "1,2", "--image-size", "32",
                                  "--batch-size", "32"], SUPERVISED, ["diffusion_pytorch_model.safetensors"]),
    "latent-mapper": (lambda w, p: ["pretrain", "latent-mapper", "--subject", "1", "--mapper", "gcn",
                                    "--batch-size", "32", "--patience", "9"], SUPERVISED,
                      ["image/model.safetensors"]),
    "prior": (lambda w, p: ["pretrain", "prior", "--subject", "1", "--batch-size", "16", "--backbone",
                            str(w.root / "sub-01/sub-01_desc-adapt_decoder")], SUPERVISED,
              ["diffusion_pytorch_model.safetensors"]),
    "flatmap-ae": (lambda w, p: ["pretrain", "flatmap-ae", "--subjects", "1,2", "--flatmap-size", "64", "--width",
                                 "32", "--depth", "1", "--heads", "2", "--batch-size", "32"], SUPERVISED,
                   ["model.safetensors"]),
    "neuropictor": (lambda w, p: ["pretrain", "neuropictor", "--subjects", "2", "--pipeline", str(p / "sd21"),
                                  "--flatmap-ae", str(p / "fae"), "--batch-size", "32"], SUPERVISED,
                    ["model.safetensors", "controlnet/diffusion_pytorch_model.safetensors"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_sigkill_mid_epoch_then_resume_is_bit_identical_for_every_model(world, parts, name, tmp_path, monkeypatch,
                                                                      one_thread):
    import importlib

    base, hook, files = MODELS[name]

    def args(out: Path) -> list[str]:
        return [*base(world, parts), "--epochs", "2", "--device", "cpu", "--root", str(world.root), "--out", str(out)]

    module_name, attribute = hook.split(":")
    module = importlib.import_module(module_name)
    real, calls = getattr(module, attribute), []
    monkeypatch.setattr(module, attribute, lambda *a, **k: calls.append(1) or real(*a, **k))
    result = runner.invoke(app, args(tmp_path / "straight"))
    assert result.exit_code == 0, result.output
    monkeypatch.undo()
    killed = _killed(args(tmp_path / "cut"), hook, len(calls) // 2 + 2, "SIGKILL")  # epoch 2, second step
    assert killed.returncode == -9, killed.stderr
    assert (tmp_path / ".cut.checkpoint").is_dir() and (tmp_path / ".cut.lock").is_file()
    result = runner.invoke(app, [*args(tmp_path / "cut"), "--resume"])
    assert result.exit_code == 0, result.output
    for name in files:
        straight, resumed = load_file(tmp_path / "straight" / name), load_file(tmp_path / "cut" / name)
        assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
