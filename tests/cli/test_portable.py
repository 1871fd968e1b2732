"""A model's record names its dataset and base model relative to the project folder, so a project moved, copied or
used from another folder reads its own files; a file that changed or went missing is named in one line."""

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from fmrikit.cli.main import app

runner = CliRunner()


def test_a_copied_project_reads_its_own_files_from_any_folder(world, tmp_path, monkeypatch):
    first = Path(shutil.copytree(world.root, tmp_path / "first/proj"))
    copy = Path(shutil.copytree(first, tmp_path / "copy/proj"))
    shutil.rmtree(first)  # a record that named the first project's files would fail now
    monkeypatch.chdir(tmp_path / "copy")
    monkeypatch.setenv("FMRIKIT_ROOT", "proj")  # relative, as in the quickstart
    result = runner.invoke(app, ["reconstruct", "--trials", "shared", "--subject", "1", "--out", "rec"])
    assert result.exit_code == 0, result.output
    sidecar = json.loads((tmp_path / "copy/rec/reconstruct.json").read_text())
    assert sidecar["inputs"][0]["path"] == "sub-01/sub-01_desc-preproc_betas.h5" and sidecar["stim_id"]
    assert (Path("rec") / sidecar["project_root"] / sidecar["inputs"][0]["path"]).resolve() == \
        (copy / "sub-01/sub-01_desc-preproc_betas.h5").resolve()

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # another folder: the model still finds its dataset
    model = copy / "sub-01/sub-01_desc-cnn_latentmapper"
    result = runner.invoke(app, ["reconstruct", "--trials", "0-2", "--subject", "1", "--model", str(model),
                                 "--root", str(copy), "--out", "rec"])
    assert result.exit_code == 0, result.output

    dataset = copy / "sub-01/sub-01_desc-preproc_betas.h5"
    shutil.copyfile(copy / "sub-02/sub-02_desc-preproc_betas.h5", dataset)  # another file where the record points
    result = runner.invoke(app, ["reconstruct", "--trials", "shared", "--subject", "1", "--root", str(copy),
                                 "--out", "rec2"])
    assert result.exit_code == 2 and "changed since the model was made" in result.output, result.output
    assert str(dataset) in result.output and len(result.output.strip().splitlines()) == 1
    dataset.unlink()
    result = runner.invoke(app, ["reconstruct", "--trials", "shared", "--subject", "1", "--root", str(copy),
                                 "--out", "rec2"])
    assert result.exit_code == 2 and "not where the model's record says" in result.output, result.output
    assert not Path("rec2").exists()
