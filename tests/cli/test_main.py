import json

import h5py
import nibabel as nib
import numpy as np
from PIL import Image
from typer.testing import CliRunner

from fmrikit import __version__
from fmrikit.cli.main import app

runner = CliRunner()


def test_version_and_help():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("sys-info", "simulate", "preprocess"):
        assert cmd in res.output


def test_sys_info_json():
    res = runner.invoke(app, ["sys-info", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["fmrikit"] == __version__ and info["torch_device"].startswith(("cpu", "cuda"))
    assert "S1" in info["pycortex_subjects"] and "hf_cache" in info


def test_sys_info_warns_about_a_filestore_outside_the_environment(monkeypatch, tmp_path):
    from fmrikit import sysinfo

    assert sysinfo.filestore_warning(f"{tmp_path}/env/share/pycortex/db", f"{tmp_path}/env", "cfg") is None
    line = sysinfo.filestore_warning(f"{tmp_path}/other/db", f"{tmp_path}/env", "~/.config/pycortex/options.cfg")
    assert "outside the active environment" in line and "options.cfg" in line
    monkeypatch.setattr(sysinfo.sys, "prefix", str(tmp_path / "env"))  # pycortex's store is in the real env
    res = runner.invoke(app, ["sys-info", "--json"])
    assert res.exit_code == 0
    assert "outside the active environment" in json.loads(res.stdout)["pycortex_filestore_warning"]
    assert res.stderr.startswith("warning: pycortex's filestore")


def test_import_is_light():
    import subprocess
    import sys

    code = "import fmrikit, sys; print(sorted(m for m in ('torch', 'diffusers', 'cortex', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_preprocess_simulated_world_end_to_end(sim_world, tmp_path, monkeypatch):
    monkeypatch.setenv("FMRIKIT_ROOT", str(tmp_path / "proj"))
    res = runner.invoke(app, ["preprocess", "--nsd-root", str(sim_world), "--subject", "1"])
    assert res.exit_code == 0, res.output
    sub = tmp_path / "proj/sub-01"
    with h5py.File(sub / "sub-01_desc-preproc_betas.h5") as f:
        assert f["betas"].shape == (120, len(f["voxels/ijk"])) and f["betas"].dtype == np.float32
        assert f.attrs["pycortex_subject"] == "S1" and f.attrs["pycortex_xfm"] == "fullhead"
        ijk = f["voxels/ijk"][:]
        betas = f["betas"][:]
        session = f["trials/session"][:]
    for s in (1, 2):  # z-scored per session
        np.testing.assert_allclose(betas[session == s].mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(betas[session == s].std(0), 1, atol=1e-3)
    roi = nib.load(sim_world / "nsddata/ppdata/subj01/func1pt8mm/roi/nsdgeneral.nii.gz").get_fdata() > 0
    assert len(ijk) == roi.sum()
    png = np.asarray(Image.open(sub / "sub-01_desc-preproc_noiseceiling.png").convert("RGB"))
    assert png.shape[0] > 200 and png.std() > 10
    nc = nib.load(sub / "sub-01_desc-preproc_noiseceiling.nii.gz").get_fdata()
    assert np.isfinite(nc[roi]).all() and np.isnan(nc[~roi]).all()
    assert (tmp_path / "proj/dataset_description.json").exists()
    side = json.loads((sub / "sub-01_desc-preproc_betas.json").read_text())
    assert side["n_trials"] == 120 and side["n_voxels"] == len(ijk) and side["argv"]

    # the coarse region gets its own dataset name; HDF5 subject with one session
    res = runner.invoke(app, ["preprocess", "--nsd-root", str(sim_world), "--subject", "2", "--roi", "brainmask",
                              "--no-flatmap"])
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "proj/sub-02/sub-02_roi-brainmask_desc-preproc_betas.h5") as f:
        assert f["betas"].shape[0] == 60 and set(f["trials/session"][:]) == {1}


def test_preprocess_needs_a_source(tmp_path):
    res = runner.invoke(app, ["preprocess", "--root", str(tmp_path)])
    assert res.exit_code == 2 and "error" in res.output


def test_debug_shows_traceback(tmp_path):
    res = runner.invoke(app, ["--debug", "preprocess", "--nsd-root", str(tmp_path), "--root", str(tmp_path)])
    assert res.exit_code != 0 and res.exception is not None and "not an NSD tree" in str(res.exception)


def test_compare_spelling_is_rewritten():
    from fmrikit.cli.main import _rewrite_compare

    assert _rewrite_compare(["-v", "evaluate", "--compare", "a.json", "b.json"]) == \
        ["-v", "evaluate", "compare", "a.json", "b.json"]
    assert _rewrite_compare(["evaluate", "mask", "--mask", "m"]) == ["evaluate", "mask", "--mask", "m"]


def _option_names(text: str) -> set[str]:
    import re

    return set(re.findall(r"--[a-z][a-z0-9-]*", text))


def test_each_model_lists_only_its_own_options_with_its_own_defaults():
    encoder = runner.invoke(app, ["pretrain", "encoder", "--help"])
    assert encoder.exit_code == 0, encoder.output
    assert not {"--hidden", "--blocks", "--mse-weight", "--temperature", "--mapper"} & \
        _option_names(encoder.output)
    assert runner.invoke(app, ["pretrain", "--model", "encoder", "--help"]).output == encoder.output
    flatmap = " ".join(runner.invoke(app, ["pretrain", "flatmap-ae", "--help"]).output.split())
    assert "[default: the preset's]" in flatmap and "[default: small]" in flatmap
    assert "--model" not in runner.invoke(app, ["roi-train", "--help"]).output
    adapt = runner.invoke(app, ["adapt-subject", "--help"]).output
    assert all(model in adapt for model in ("decoder", "encoder", "neuropictor"))
    assert "``" not in runner.invoke(app, ["evaluate", "compare", "--help"]).output


def test_usage_errors_are_one_red_line_with_exit_2():
    for args, text in [(["pretrain", "--model", "vae", "--subjects", "1"], "No such command 'vae'"),
                       (["pretrain", "--subjects", "1", "--epochs", "0"], "--epochs"),
                       (["pretrain", "encoder", "--subjects", "1", "--hidden", "8"], "--hidden")]:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert res.output.startswith("error:") and text in res.output and len(res.output.strip().splitlines()) == 1


def test_a_run_failure_exits_1_and_bad_input_exits_2(monkeypatch):
    from fmrikit.errors import DataValueError, RunError
    from fmrikit.methods.mindeye import pretrain as module

    for error, code in [(RunError("pretrain epoch 3: loss became nan"), 1), (DataValueError("bad betas"), 2)]:
        def fail(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(module, "pretrain_decoder", fail)
        res = runner.invoke(app, ["pretrain", "--subjects", "1"])
        assert res.exit_code == code and res.output.startswith("error:") and "Traceback" not in res.output
