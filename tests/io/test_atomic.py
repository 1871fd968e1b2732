"""Safe outputs: markers, what --overwrite may replace, where an output may go, locks, stale staging, run scopes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmrikit.errors import InputError, OutputBusyError, OutputExistsError, RunInterrupted
from fmrikit.io.atomic import (claim_outputs, lock_path, output_kind, remove_stale_staging, run_scope, staged_dir,
                               staged_outputs)


def _write_folder(path: Path, kind: str = "pretrain decoder", overwrite: bool = False) -> None:
    with staged_dir(path, overwrite=overwrite, kind=kind) as stage:
        (stage / "model.bin").write_bytes(b"weights")


def test_outputs_are_marked_with_their_kind_and_a_hand_edit_unmarks_a_file(tmp_path):
    _write_folder(tmp_path / "model")
    with staged_outputs(tmp_path, ["a.json", "b"], kind="roi-train") as tmp:
        tmp["a.json"].write_text("{}")
        tmp["b"].mkdir()
    assert json.loads((tmp_path / "model/.fmrikit").read_text()) == {"kind": "pretrain decoder"}
    kinds = [output_kind(tmp_path / n) for n in ("model", "a.json", "b")]
    assert kinds == ["pretrain decoder", "roi-train", "roi-train"]
    (tmp_path / "a.json").write_text('{"edited": 1}')
    assert output_kind(tmp_path / "a.json") is None and output_kind(tmp_path / "none") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.json.fmrikit", "a.json", "b", "model"]


def test_overwrite_replaces_only_fmrikit_outputs_of_the_same_kind(tmp_path):
    _write_folder(tmp_path / "model")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        _write_folder(tmp_path / "model")
    with pytest.raises(OutputExistsError, match="another kind"):
        _write_folder(tmp_path / "model", kind="pretrain encoder", overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/thesis.tex").write_text("years of work")
    with pytest.raises(OutputExistsError, match="did not write it"):
        _write_folder(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine/thesis.tex").read_text() == "years of work"
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="did not write it"):
        with staged_outputs(tmp_path, ["notes.txt"], overwrite=True, kind="evaluate mask") as tmp:
            tmp["notes.txt"].write_text("theirs")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    _write_folder(tmp_path / "model", overwrite=True)  # its own output: replaced
    (tmp_path / "empty").mkdir()
    _write_folder(tmp_path / "empty", overwrite=True)  # nothing to lose
    assert (tmp_path / "empty/model.bin").is_file()


@pytest.mark.parametrize("out, inputs, message", [
    ("data", ["data"], "replace an input"),
    ("data", ["data/betas.nii.gz"], "holds an input"),
    ("data/out", ["data"], "inside an input folder"),
    ("proj", [], "project folder"),
    ("proj/sub-03", [], "subject folder"),
    ("proj/sub-01", [], "subject folder"),
])
def test_an_output_is_never_an_input_an_ancestor_of_one_the_project_or_a_subject_folder(tmp_path, out, inputs,
                                                                                        message):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/betas.nii.gz").write_bytes(b"x")
    (tmp_path / "proj/sub-01").mkdir(parents=True)
    before = sorted(tmp_path.rglob("*"))
    with run_scope(), pytest.raises(InputError, match=message):
        claim_outputs([tmp_path / out], kind="encode", overwrite=True, inputs=[tmp_path / i for i in inputs],
                      root=tmp_path / "proj")
    assert sorted(tmp_path.rglob("*")) == before


def test_a_file_in_the_way_or_a_read_only_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="a file is in the way"):
        claim_outputs([tmp_path / "f/a/b"], kind="encode", overwrite=False, root=tmp_path / "proj")
    (tmp_path / "ro").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m, **k: False if Path(p) == tmp_path / "ro" else real(p, m, **k))
    with pytest.raises(InputError, match="not writable") as err:
        claim_outputs([tmp_path / "ro/out"], kind="encode", overwrite=False, root=tmp_path / "proj")
    assert str(tmp_path / "ro") in str(err.value)


def test_resume_refuses_a_finished_output(tmp_path):
    _write_folder(tmp_path / "model")
    with pytest.raises(InputError, match="finished"):
        claim_outputs([tmp_path / "model"], kind="pretrain decoder", overwrite=True, resume=True,
                      root=tmp_path / "proj")


def _holder(path: Path) -> subprocess.Popen:
    """Another process that holds the lock of ``path`` until its stdin closes."""
    code = ("import sys; from fmrikit.io.atomic import acquire_lock; acquire_lock(sys.argv[1]); print('held', "
            "flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_the_same_output_stops_at_once_and_the_lock_goes_with_its_run(tmp_path):
    out = tmp_path / "model"
    holder = _holder(out)
    try:
        start = time.perf_counter()
        with run_scope(), pytest.raises(OutputBusyError, match=f"pid {holder.pid}"):
            claim_outputs([out], kind="pretrain decoder", overwrite=False, root=tmp_path / "proj")
        assert time.perf_counter() - start < 5
    finally:
        holder.stdin.close()
        holder.wait()
    assert lock_path(out).is_file()  # the holder was not a command: its lock stays, and is now stale
    with run_scope():
        claim_outputs([out], kind="pretrain decoder", overwrite=False, root=tmp_path / "proj")
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert not lock_path(out).exists()


def test_stale_staging_of_the_same_output_is_removed_and_no_other(tmp_path):
    for name in (".staging-model.abc123", ".staging-model.x_9", ".staging-model-2.abc", ".staging-.model.checkpoint.q"):
        (tmp_path / name).mkdir()
    removed = remove_stale_staging(tmp_path / "model")
    assert sorted(p.name for p in removed) == [".staging-model.abc123", ".staging-model.x_9"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging-.model.checkpoint.q", ".staging-model-2.abc"]


def test_ctrl_c_in_a_run_releases_its_locks_and_removes_the_folders_it_made(tmp_path):
    with pytest.raises(RunInterrupted, match="nothing was written"):
        with run_scope():
            claim_outputs([tmp_path / "a/b/model"], kind="encode", overwrite=False, root=tmp_path / "proj")
            assert lock_path(tmp_path / "a/b/model").is_file()
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_leaves_no_staging_and_no_created_folder(tmp_path):
    with pytest.raises(ValueError):
        with staged_outputs(tmp_path / "x/y", ["a.h5"], kind="preprocess") as tmp:
            tmp["a.h5"].write_bytes(b"half")
            raise ValueError
    assert list(tmp_path.iterdir()) == []
