"""pretrain --model encoder -> adapt-subject --model encoder -> encode -> cluster-embeddings from the CLI."""

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from fmrikit.cli.main import app

runner = CliRunner()
TINY = ["--channels", "4", "--embed-dim", "8", "--batch-size", "16", "--voxels-per-image", "50", "--epochs", "2",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def project(sim_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("encode") / "proj"
    for subject in ("1", "2"):
        res = runner.invoke(app, ["preprocess", "--nsd-root", str(sim_world), "--root", str(root), "--no-flatmap",
                                  "--subject", subject])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["pretrain", "--model", "encoder", "--subjects", "1", "--root", str(root), *TINY])
    assert res.exit_code == 0, res.output
    assert "retrieval among" in res.output
    return root


def test_adapt_encode_and_cluster_a_new_subject(project):
    res = runner.invoke(app, ["adapt-subject", "--model", "encoder", "--subject", "2", "--n-train", "10",
                              "--root", str(project), *TINY[4:]])
    assert res.exit_code == 0, res.output
    adapted = project / "sub-02/sub-02_desc-adapt_encoder"
    assert json.loads((adapted / "config.json").read_text())["subjects"]["sub-02"]["n_train_images"] == 10
    res = runner.invoke(app, ["encode", "--shared", "--subject", "2", "--root", str(project), "--max-flatmaps", "0"])
    assert res.exit_code == 0, res.output  # found the adapted encoder by itself
    pred = project / "sub-02/sub-02_encode-shared/sub-02_pred.h5"
    res = runner.invoke(app, ["evaluate", "encoding", "--pred", str(pred), "--subject", "2", "--root", str(project),
                              "--out", str(project / "eval"), "--no-flatmap"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["cluster-embeddings", "--k", "3", "--model", str(adapted), "--root", str(project),
                              "--max-images", "10", "--top", "2"])
    assert res.exit_code == 0, res.output
    out = project / "clusters/kmeans-k3"
    assert (out / "sub-01_desc-clusters.png").stat().st_size > 0 and (out / "sub-02_desc-clusters.png").is_file()
    with h5py.File(out / "clusters.h5") as f:
        assert sorted(f) == ["image_name", "response", "stim_id", "sub-01", "sub-02"]
        assert np.isin(f["sub-02/labels"][:], [1, 2, 3]).all()


@pytest.mark.parametrize("args", [
    ["pretrain", "--model", "vae", "--subjects", "1"],
    ["pretrain", "--subjects", "1", "--n-train", "5"],
    ["adapt-subject", "--model", "encoder", "--subject", "2", "--unfreeze-backbone"],
    ["adapt-subject", "--model", "encoder", "--subject", "2", "--features", "effnet-lite0"],
    ["adapt-subject", "--model", "encoder", "--subject", "2", "--n-train", "100000"],
    ["encode", "--subject", "1"],
    ["encode", "--subject", "9", "--shared"],
    ["cluster-embeddings", "--k", "1"],
])
def test_bad_requests_exit_2_with_one_line(project, args):
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    res = runner.invoke(app, [*args, "--root", str(project)])
    assert res.exit_code == 2, res.output
    assert res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) <= 3
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
