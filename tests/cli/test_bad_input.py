"""Bad input on every command (issue 15's battery).

Each case runs one command line, as a user would type it, against a small project of its own with tiny trained
models, and checks what the user must get: the promised exit status (2 for bad input, 1 for a run failure such as
memory running out), exactly one red ``error:`` line that names the file or option at fault, no traceback, no new
file anywhere in the project or the case's folder, and every input byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmrikit.cli.main import app
from tests.cli.conftest import World

runner = CliRunner()


# -- what each case may damage: copies in its own folder -------------------------------------------------------

def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _copy(w: World, name: str, to: str | None = None) -> Path:
    target = w.tmp / (to or Path(name).name)
    (shutil.copytree if (w.files / name).is_dir() else shutil.copyfile)(w.files / name, target)
    return target


def _copy_project(w: World) -> Path:
    """A copy of the whole project in the case's folder (paths inside a project are relative to it)."""
    return Path(shutil.copytree(w.root, w.tmp / "proj"))


def _edit_dataset(w: World, edit: Callable[[h5py.File], None]) -> Path:
    root = w.tmp / "proj"
    (root / "sub-01").mkdir(parents=True)
    dataset = root / "sub-01/sub-01_desc-preproc_betas.h5"
    shutil.copyfile(w.root / "sub-01/sub-01_desc-preproc_betas.h5", dataset)
    with h5py.File(dataset, "r+") as f:
        edit(f)
    return root


def _replace_dataset(f: h5py.File, name: str, data) -> None:
    attrs = dict(f[name].attrs)
    del f[name]
    f[name] = data
    f[name].attrs.update(attrs)


def _nifti(w: World, name: str, data: np.ndarray, like: str = "betas.nii.gz") -> Path:
    img = nib.load(w.files / like)
    path = w.tmp / name
    nib.save(nib.Nifti1Image(data, img.affine), path)
    return path


def _trials(w: World, rows: list[str], header: str = "file\tindex_in_file\tsession\tstimulus_id") -> list[str]:
    """A generic-path preprocess of ``betas.nii.gz`` with this trial table (written in the case's folder)."""
    (w.tmp / "trials.tsv").write_text(header + "\n" + "\n".join(rows) + "\n")
    brick = w.tmp / "images.h5"
    with h5py.File(brick, "w") as f:
        f["imgBrick"] = np.zeros((20, 8, 8, 3), np.uint8)
    return ["preprocess", "--betas-file", w["betas.nii.gz"], "--trials", str(w.tmp / "trials.tsv"), "--images",
            str(brick), "--mask", w["mask.nii.gz"], "--subject", "3", "--no-flatmap", "--root", str(w.tmp / "proj")]


GOOD_TRIALS = [f"betas.nii.gz\t{t}\t1\t{t}" for t in range(6)]


def _out_of_memory(*args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


# -- the cases -------------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One bad command line: ``args(world)`` (``setup(world, monkeypatch)`` first), the exit status and the text
    the error line must contain (``token(world)`` when it is a path)."""

    command: str
    name: str
    args: Callable[[World], list[str]]
    token: str | Callable[[World], str]
    code: int = 2
    setup: Callable[[World, pytest.MonkeyPatch], None] | None = None


def R(w: World) -> list[str]:
    return ["--root", str(w.root)]


CASES: list[Case] = []


def case(command: str, name: str, args, token, code: int = 2, setup=None) -> None:
    CASES.append(Case(command, name, args, token, code, setup))


def numbers(command: str, base: Callable[[World], list[str]], values: dict[str, list[str]]) -> None:
    """Cases of out-of-range numbers: ``{option: [bad values]}`` on top of a good command line."""
    for option, bad in values.items():
        for value in bad:
            case(command, f"{option} {value}", lambda w, o=option, v=value: [*base(w), o, v], option)


def outputs(command: str, base: Callable[[World], list[str]], out: str = "--out") -> None:
    """The output-folder cases of a command with ``out``: the project folder, a subject folder, a file, a folder
    under a file, a user's folder or file with --overwrite, an unwritable folder, an existing output."""
    case(command, "out = project folder", lambda w: [*base(w), out, str(w.root), "--overwrite"], "project folder")
    case(command, "out = subject folder", lambda w: [*base(w), out, str(w.root / "sub-01"), "--overwrite"],
         "subject folder")
    case(command, "out = above the project", lambda w: [*base(w), out, str(w.root.parent), "--overwrite"],
         "project folder")
    case(command, "out under a file", lambda w: [*base(w), out, str(w.files / "notes.txt" / "out")], "notes.txt")
    case(command, "out = a user's file", lambda w: [*base(w), out, w["notes.txt"], "--overwrite"], "notes.txt")
    case(command, "out = a user's folder", lambda w: [*base(w), out, w["folder"], "--overwrite"], "folder")
    case(command, "out exists", lambda w: [*base(w), out, w["folder"]], "--overwrite")
    case(command, "out not writable", lambda w: [*base(w), out, str(w.tmp / "locked" / "out")], "not writable",
         setup=_read_only)


def _read_only(w: World, monkeypatch) -> None:
    (w.tmp / "locked").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == w.tmp / "locked" else real(p, mode, **k))


def _busy(output: Callable[[World], Path]) -> Callable:
    """A setup: a live process (the test runner's parent) holds the lock of the output."""
    def setup(w: World, monkeypatch) -> None:
        path = output(w)
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / f".{path.name}.lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                                                    "started": "earlier"}))
    return setup


def devices(command: str, base: Callable[[World], list[str]]) -> None:
    case(command, "--device cuda", lambda w: [*base(w), "--device", "cuda"], "CUDA is not available")
    case(command, "--device tpu", lambda w: [*base(w), "--device", "tpu"], "--device")


# simulate
SIM = lambda w: ["simulate", "--out", str(w.tmp / "sim")]  # noqa: E731
numbers("simulate", SIM, {"--subjects": ["0"], "--trials-per-session": ["2"], "--runs": ["0"], "--shared": ["0"],
                          "--image-size": ["8", "-1"], "--noise": ["nan", "-1", "inf"]})
case("simulate", "--sessions 0", lambda w: [*SIM(w), "--sessions", "0"], "--sessions")
case("simulate", "--sessions abc", lambda w: [*SIM(w), "--sessions", "abc"], "--sessions")
case("simulate", "--format tiff", lambda w: [*SIM(w), "--format", "tiff"], "tiff")
outputs("simulate", lambda w: ["simulate"])

# preprocess (an NSD tree, and the generic path)
PRE = lambda w: ["preprocess", "--nsd-root", str(w.nsd), "--no-flatmap", "--root", str(w.tmp / "proj")]  # noqa
case("preprocess", "--subject 0", lambda w: [*PRE(w), "--subject", "0"], "--subject")
case("preprocess", "--subject 9", lambda w: [*PRE(w), "--subject", "9"], "subj09")
case("preprocess", "--sessions 0", lambda w: [*PRE(w), "--sessions", "0"], "--sessions")
case("preprocess", "--sessions 1-9", lambda w: [*PRE(w), "--sessions", "1-9"], "session03")
case("preprocess", "another run on the subject", lambda w: [*PRE(w), "--subject", "1"], "another fmrikit run",
     setup=_busy(lambda w: w.tmp / "proj/sub-01/sub-01_desc-preproc_betas.h5"))
case("preprocess", "--labels abc", lambda w: [*PRE(w), "--labels", "abc"], "--labels")
case("preprocess", "--roi missing", lambda w: [*PRE(w), "--roi", "nope"], "nope")
case("preprocess", "--nsd-root missing", lambda w: ["preprocess", "--nsd-root", str(w.tmp / "none"), *R(w)], "none")
case("preprocess", "--root a file", lambda w: [*PRE(w)[:-2], "--root", w["notes.txt"]], "notes.txt")
case("preprocess", "--root under a file", lambda w: [*PRE(w)[:-2], "--root", str(w.files / "notes.txt/p")],
     "notes.txt")
case("preprocess", "root not writable", lambda w: [*PRE(w)[:-2], "--root", str(w.tmp / "locked" / "p")],
     "not writable", setup=_read_only)
case("preprocess", "outputs exist", lambda w: ["preprocess", "--nsd-root", str(w.nsd), "--no-flatmap", *R(w)],
     "--overwrite")
case("preprocess", "a user's file in the way", lambda w: [*PRE(w), "--overwrite"], "sub-01_desc-preproc_betas.h5",
     setup=lambda w, mp: ((w.tmp / "proj/sub-01").mkdir(parents=True),
                          (w.tmp / "proj/sub-01/sub-01_desc-preproc_betas.h5").write_text("mine")))
case("preprocess", "mask = its own output", lambda w: [
    "preprocess", "--nsd-root", str(w.nsd), "--no-flatmap", *R(w), "--subject", "1", "--overwrite", "--name", "mine",
    "--roi", str(w.root / "sub-01/sub-01_roi-mine_desc-preproc_mask.nii.gz")], "replace an input",
    setup=lambda w, mp: shutil.copyfile(w.root / "sub-01/sub-01_desc-preproc_mask.nii.gz",
                                        w.root / "sub-01/sub-01_roi-mine_desc-preproc_mask.nii.gz"))
for label, rows, token in [
        ("non-integer column", ["betas.nii.gz\tone\t1\t0"], "index_in_file"),
        ("fractional stimulus id", ["betas.nii.gz\t0\t1\t0.5"], "stimulus_id"),
        ("negative stimulus id", ["betas.nii.gz\t0\t1\t-3", *GOOD_TRIALS[1:]], "stimulus_id"),
        ("session 0", ["betas.nii.gz\t0\t0\t0", *GOOD_TRIALS[1:]], "session"),
        ("duplicate trial rows", [*GOOD_TRIALS, GOOD_TRIALS[2]], "twice"),
        ("volume past the end", ["betas.nii.gz\t40\t1\t0", *GOOD_TRIALS[1:]], "index_in_file"),
        ("unknown betas file", ["other.nii.gz\t0\t1\t0"], "other.nii.gz")]:
    case("preprocess", f"trials: {label}", lambda w, r=rows: _trials(w, r), token)
case("preprocess", "trials: shared not 0/1", lambda w: _trials(
    w, [f"{r}\t{2 if i == 0 else 0}" for i, r in enumerate(GOOD_TRIALS)],
    "file\tindex_in_file\tsession\tstimulus_id\tshared"), "shared")
case("preprocess", "trials: missing columns", lambda w: _trials(w, ["betas.nii.gz\t0"], "file\tindex_in_file"),
     "trials.tsv")
for value in ("0", "-300", "nan", "inf", "abc"):
    case("preprocess", f"--input-scale {value}", lambda w, v=value: [*_trials(w, GOOD_TRIALS), "--input-scale", v],
         "--input-scale")
case("preprocess", "complex betas", lambda w: [
    *_trials(w, GOOD_TRIALS)[:2], str(w.tmp / "betas.nii.gz"), *_trials(w, GOOD_TRIALS)[3:]], "betas.nii.gz",
    setup=lambda w, mp: _nifti(w, "betas.nii.gz", np.asarray(nib.load(w.files / "betas.nii.gz").dataobj)
                               .astype(np.complex64)))
case("preprocess", "truncated betas", lambda w: [
    *_trials(w, GOOD_TRIALS)[:2], str(w.tmp / "betas.nii.gz"), *_trials(w, GOOD_TRIALS)[3:]], "betas.nii.gz",
    setup=lambda w, mp: _truncate(_copy(w, "betas.nii.gz")))
case("preprocess", "mask on another grid", lambda w: [*_trials(w, GOOD_TRIALS)[:-2], "--mask",
                                                      w["mask_other_grid.nii.gz"], "--no-flatmap"],
     "grid")


def _image_folder(w: World, damage: str) -> list[str]:
    folder = w.tmp / "img"
    folder.mkdir(exist_ok=True)
    for t in range(6):
        Image.fromarray(np.full((8, 8, 3), t, np.uint8)).save(folder / f"im{t}.png")
    if damage == "empty":
        (folder / "im2.png").write_bytes(b"")
    else:
        _truncate(folder / "im2.png")
    args = _trials(w, [f"{r}\tim{t}.png" for t, r in enumerate(GOOD_TRIALS)],
                   "file\tindex_in_file\tsession\tstimulus_id\timage_file")
    args[args.index("--images") + 1] = str(folder)
    return args


case("preprocess", "empty PNG in the image folder", lambda w: _image_folder(w, "empty"), "im2.png")
case("preprocess", "truncated PNG in the image folder", lambda w: _image_folder(w, "truncated"), "im2.png")


def _text_brick(w: World) -> list[str]:
    args = _trials(w, GOOD_TRIALS)
    with h5py.File(w.tmp / "images.h5", "w") as f:
        f["imgBrick"] = np.array(["a", "b"], dtype=h5py.string_dtype())
    return args


case("preprocess", "text image brick", _text_brick, "images.h5")

# pretrain decoder
DEC = lambda w: ["pretrain", "decoder", "--subjects", "1,2", *R(w), "--out", str(w.tmp / "dec")]  # noqa: E731
numbers("pretrain decoder", DEC, {"--batch-size": ["0", "1"], "--epochs": ["-1", "0"],
                                  "--lr": ["nan", "inf", "0", "-1"], "--hidden": ["0"], "--blocks": ["0"],
                                  "--weight-decay": ["-1", "nan"], "--temperature": ["0", "nan"],
                                  "--mse-weight": ["-1", "nan"]})
devices("pretrain decoder", DEC)
outputs("pretrain decoder", lambda w: ["pretrain", "decoder", "--subjects", "1,2", *R(w)])
case("pretrain decoder", "--subjects 0", lambda w: [*DEC(w)[:3], "0", *DEC(w)[4:]], "--subject")
case("pretrain decoder", "--subjects abc", lambda w: [*DEC(w)[:3], "a,b", *DEC(w)[4:]], "--subjects")
case("pretrain decoder", "no dataset", lambda w: [*DEC(w)[:3], "1,7", *DEC(w)[4:]], "sub-07")
case("pretrain decoder", "--features nope", lambda w: [*DEC(w), "--features", "nope"], "nope")
case("pretrain decoder", "--resume a finished model", lambda w: ["pretrain", "decoder", "--subjects", "1,2", *R(w),
                                                                 "--resume"], "finished")
case("pretrain decoder", "--overwrite another kind", lambda w: [*DEC(w)[:-2], "--out", str(w.root / "models/encoder"),
                                                                "--overwrite"], "pretrain encoder")
case("pretrain decoder", "out = a dataset", lambda w: [
    *DEC(w)[:-2], "--out", str(w.root / "sub-01/sub-01_desc-preproc_betas.h5"), "--overwrite"], "replace an input")
case("pretrain decoder", "NaN betas", lambda w: ["pretrain", "decoder", "--subjects", "1", "--root",
                                                 str(w.tmp / "proj")], "NaN",
     setup=lambda w, mp: _edit_dataset(w, lambda f: f["betas"].__setitem__((0, 0), np.nan)))
case("pretrain decoder", "Inf betas", lambda w: ["pretrain", "decoder", "--subjects", "1", "--root",
                                                 str(w.tmp / "proj")], "NaN or Inf",
     setup=lambda w, mp: _edit_dataset(w, lambda f: f["betas"].__setitem__((3, 1), np.inf)))
case("pretrain decoder", "voxel count vs voxels/ijk", lambda w: ["pretrain", "decoder", "--subjects", "1", "--root",
                                                                 str(w.tmp / "proj")], "voxels/ijk",
     setup=lambda w, mp: _edit_dataset(w, lambda f: _replace_dataset(f, "voxels/ijk", f["voxels/ijk"][:-3])))
case("pretrain decoder", "text stimulus ids", lambda w: ["pretrain", "decoder", "--subjects", "1", "--root",
                                                         str(w.tmp / "proj")], "trials/stim_id",
     setup=lambda w, mp: _edit_dataset(w, lambda f: _replace_dataset(
         f, "trials/stim_id", np.array([str(v) for v in f["trials/stim_id"][:]], dtype=h5py.string_dtype()))))
case("pretrain decoder", "complex betas", lambda w: ["pretrain", "decoder", "--subjects", "1", "--root",
                                                     str(w.tmp / "proj")], "complex",
     setup=lambda w, mp: _edit_dataset(w, lambda f: _replace_dataset(f, "betas", f["betas"][:].astype(np.complex64))))
case("pretrain decoder", "negative stimulus ids", lambda w: ["pretrain", "decoder", "--subjects", "1", "--root",
                                                             str(w.tmp / "proj")], "negative stimulus ids",
     setup=lambda w, mp: _edit_dataset(w, lambda f: f["trials/stim_id"].__setitem__(0, -1)))
case("pretrain decoder", "not a dataset", lambda w: ["pretrain", "decoder", "--subjects", "1", "--root",
                                                     str(w.tmp / "proj")], "sub-01_desc-preproc_betas.h5",
     setup=lambda w, mp: _edit_dataset(w, lambda f: f.__delitem__("betas")))
case("pretrain decoder", "another run on the output", DEC, "another fmrikit run", setup=_busy(lambda w: w.tmp / "dec"))
case("pretrain decoder", "out of memory", lambda w: DEC(w), "--batch-size", code=1,
     setup=lambda w, mp: mp.setattr("fmrikit.methods.mindeye.loop.optimizer_step", _out_of_memory))

# pretrain encoder
ENC = lambda w: ["pretrain", "encoder", "--subjects", "1", *R(w), "--out", str(w.tmp / "enc")]  # noqa: E731
numbers("pretrain encoder", ENC, {"--channels": ["0"], "--embed-dim": ["0"], "--voxels-per-image": ["1"],
                                  "--batch-size": ["0"], "--lr": ["nan", "0"], "--cosine-weight": ["-1", "nan"],
                                  "--epochs": ["0"], "--n-train": ["0", "1"]})
devices("pretrain encoder", ENC)
case("pretrain encoder", "--preset huge", lambda w: [*ENC(w), "--preset", "huge"], "huge")
case("pretrain encoder", "--grid 0", lambda w: [*ENC(w), "--grid", "0"], "--grid")
case("pretrain encoder", "--grid with dinov2", lambda w: [*ENC(w), "--features", "dinov2", "--image-model",
                                                          str(w.tmp / "none"), "--grid", "14"], "grid")
outputs("pretrain encoder", lambda w: ["pretrain", "encoder", "--subjects", "1", *R(w)])
case("pretrain encoder", "--sessions 0", lambda w: [*ENC(w), "--sessions", "0"], "--sessions")
case("pretrain encoder", "--sessions 5", lambda w: [*ENC(w), "--sessions", "5"], "sessions")
case("pretrain encoder", "--n-train too many", lambda w: [*ENC(w), "--n-train", "100000"], "--n-train")
case("pretrain encoder", "--resume a finished model", lambda w: [*ENC(w)[:-2], "--resume"], "finished")
case("pretrain encoder", "--overwrite another kind", lambda w: [*ENC(w)[:-2], "--out", str(w.root / "models/decoder"),
                                                                "--overwrite"], "pretrain decoder")

# pretrain ridge
RID = lambda w: ["pretrain", "ridge", "--subjects", "1", *R(w), "--out", str(w.tmp / "ridge")]  # noqa: E731
numbers("pretrain ridge", RID, {"--n-train": ["0", "1"]})
case("pretrain ridge", "--subjects 0", lambda w: [*RID(w)[:3], "0", *RID(w)[4:]], "--subject")
case("pretrain ridge", "no dataset", lambda w: [*RID(w)[:3], "7", *RID(w)[4:]], "sub-07")
case("pretrain ridge", "--features nope", lambda w: [*RID(w), "--features", "nope"], "nope")
case("pretrain ridge", "out/sub-01 = a subject folder", lambda w: [*RID(w)[:-2], "--out", str(w.root), "--overwrite"],
     "subject folder")

# pretrain autoencoder
AE = lambda w: ["pretrain", "autoencoder", "--subjects", "1,2", *R(w), "--out", str(w.tmp / "ae")]  # noqa: E731
numbers("pretrain autoencoder", AE, {"--image-size": ["-1", "0", "30"], "--epochs": ["0"], "--lr": ["nan", "0"],
                                     "--batch-size": ["0"]})
devices("pretrain autoencoder", AE)
outputs("pretrain autoencoder", lambda w: ["pretrain", "autoencoder", "--subjects", "1,2", *R(w)])
case("pretrain autoencoder", "--resume a finished model", lambda w: [*AE(w)[:-2], "--resume"], "finished")
case("pretrain autoencoder", "out of memory", AE, "batch of 32", code=1,
     setup=lambda w, mp: mp.setattr("fmrikit.engine.supervised.optimizer_step", _out_of_memory))

# pretrain latent-mapper
LAT = lambda w: ["pretrain", "latent-mapper", "--subject", "1", "--mapper", "cnn", *R(w),  # noqa: E731
                 "--out", str(w.tmp / "mapper")]
numbers("pretrain latent-mapper", LAT, {"--patience": ["-1"], "--lr": ["nan", "0"], "--epochs": ["0"],
                                        "--batch-size": ["0"], "--image-size": ["4"], "--subject": ["0"]})
devices("pretrain latent-mapper", LAT)
outputs("pretrain latent-mapper", lambda w: ["pretrain", "latent-mapper", "--subject", "1", *R(w)])
case("pretrain latent-mapper", "--mapper nope", lambda w: [*LAT(w)[:4], "--mapper", "gcm", *LAT(w)[6:]], "gcm")
case("pretrain latent-mapper", "--image-labels abc", lambda w: [*LAT(w), "--image-labels", "abc"], "labels")
case("pretrain latent-mapper", "--autoencoder missing", lambda w: [*LAT(w), "--autoencoder", str(w.tmp / "none")],
     "none")
case("pretrain latent-mapper", "--resume a finished model", lambda w: [
    *LAT(w)[:-2], "--out", str(w.root / "sub-01/sub-01_desc-cnn_latentmapper"), "--resume"], "finished")

# pretrain prior
PRI = lambda w: ["pretrain", "prior", "--subject", "1", *R(w), "--out", str(w.tmp / "prior")]  # noqa: E731
numbers("pretrain prior", PRI, {"--patience": ["-1"], "--lr": ["nan"], "--epochs": ["0"], "--batch-size": ["0"],
                                "--subject": ["0"]})
devices("pretrain prior", PRI)
outputs("pretrain prior", lambda w: ["pretrain", "prior", "--subject", "1", *R(w)])
case("pretrain prior", "--backbone missing", lambda w: [*PRI(w), "--backbone", str(w.tmp / "none")], "none")
case("pretrain prior", "--backbone not a subject model", lambda w: [*PRI(w), "--backbone",
                                                                    str(w.root / "models/decoder")], "SubjectDecoder")
case("pretrain prior", "truncated base model", lambda w: ["pretrain", "prior", "--subject", "1", "--root",
                                                          str(w.tmp / "proj")], "base decoder changed",
     setup=lambda w, mp: _truncate(_copy_project(w) / "models/decoder/model.safetensors"))


def _replace_base(w: World, mp) -> None:
    from safetensors.torch import load_file, save_file

    path = _copy_project(w) / "models/decoder/model.safetensors"
    save_file({k: v + 1 if v.is_floating_point() else v for k, v in load_file(path).items()}, path)


case("pretrain prior", "replaced base model", lambda w: ["pretrain", "prior", "--subject", "1", "--root",
                                                         str(w.tmp / "proj")], "base decoder changed",
     setup=_replace_base)

# pretrain flatmap-ae and neuropictor
FAE = lambda w: ["pretrain", "flatmap-ae", "--subjects", "1,2", *R(w), "--out", str(w.tmp / "fae")]  # noqa: E731
numbers("pretrain flatmap-ae", FAE, {"--epochs": ["0"], "--lr": ["nan"], "--patience": ["-1"], "--width": ["0"],
                                     "--batch-size": ["0"]})
case("pretrain flatmap-ae", "--preset huge", lambda w: [*FAE(w), "--preset", "huge"], "huge")
case("pretrain flatmap-ae", "--patch-size 7", lambda w: [*FAE(w), "--patch-size", "7"], "patch size")
case("pretrain flatmap-ae", "--subjects 1,1", lambda w: [*FAE(w)[:3], "1,1", *FAE(w)[4:]], "distinct")
devices("pretrain flatmap-ae", FAE)
outputs("pretrain flatmap-ae", lambda w: ["pretrain", "flatmap-ae", "--subjects", "1,2", *R(w)])
NP = lambda w: ["pretrain", "neuropictor", "--subjects", "1", *R(w), "--pipeline", w["pipeline"],  # noqa: E731
                "--out", str(w.tmp / "np")]
case("pretrain neuropictor", "no --pipeline", lambda w: ["pretrain", "neuropictor", "--subjects", "1", *R(w)],
     "--pipeline")
numbers("pretrain neuropictor", NP, {"--uncond-prob": ["1", "-0.1"], "--semantic-weight": ["-1", "nan"],
                                     "--lr": ["nan"], "--epochs": ["0"]})
case("pretrain neuropictor", "--flatmap-ae missing", lambda w: [*NP(w), "--flatmap-ae", str(w.tmp / "none")], "none")
devices("pretrain neuropictor", NP)
outputs("pretrain neuropictor", lambda w: NP(w)[:-2])

# roi-train
ROI = lambda w: ["roi-train", "--subject", "1", "--coarse-roi", "nsdgeneral", *R(w), "--desc", "t1"]  # noqa: E731
numbers("roi-train", ROI, {"--threshold": ["-1", "nan"], "--lasso": ["-1"], "--mask-lr": ["0", "nan"],
                           "--stage1-lr": ["0"], "--lowpass-sigma": ["0"], "--stage1-epochs": ["0"],
                           "--lr": ["nan"], "--batch-size": ["1"], "--subject": ["0"], "--budget": ["0"]})
case("roi-train", "--budget above the voxels", lambda w: [*ROI(w), "--budget", "100000"], "--budget")
case("roi-train", "--warmup-epochs >= --stage1-epochs", lambda w: [*ROI(w), "--warmup-epochs", "20"],
     "--warmup-epochs")
case("roi-train", "--desc a-b", lambda w: [*ROI(w), "--desc", "a-b"], "--desc")
case("roi-train", "no coarse dataset", lambda w: [*ROI(w)[:3], "--coarse-roi", "brainmask", *ROI(w)[5:]],
     "brainmask")
case("roi-train", "--backbone missing", lambda w: [*ROI(w), "--backbone", str(w.tmp / "none")], "none")
devices("roi-train", ROI)

# adapt-subject
ADA = lambda w: ["adapt-subject", "decoder", "--subject", "1", *R(w), "--desc", "a1"]  # noqa: E731
numbers("adapt-subject decoder", ADA, {"--batch-size": ["1"], "--lr": ["nan", "0"], "--epochs": ["0"],
                                       "--subject": ["0"]})
devices("adapt-subject decoder", ADA)
case("adapt-subject decoder", "--resume a finished model", lambda w: [*ADA(w)[:-2], "--resume"], "finished")
case("adapt-subject decoder", "outputs exist", lambda w: ADA(w)[:-2], "--overwrite")
case("adapt-subject decoder", "mask = its own output", lambda w: [
    *ADA(w)[:-2], "--overwrite", "--mask", str(w.root / "sub-01/sub-01_desc-adapt_log.tsv")], "replace an input")
case("adapt-subject decoder", "--mask truncated", lambda w: [*ADA(w), "--mask", str(w.tmp / "mask.nii.gz")],
     "mask.nii.gz", setup=lambda w, mp: _truncate(_copy(w, "mask.nii.gz")))
case("adapt-subject decoder", "--mask on another grid", lambda w: [*ADA(w), "--mask", w["mask_other_grid.nii.gz"]],
     "mask_other_grid.nii.gz")
case("adapt-subject decoder", "--backbone an encoder", lambda w: [*ADA(w), "--backbone",
                                                                  str(w.root / "models/encoder")], "UniversalEncoder")
case("adapt-subject decoder", "--desc a_b", lambda w: [*ADA(w)[:-2], "--desc", "a_b"], "--desc")
case("adapt-subject decoder", "--sessions 5", lambda w: [*ADA(w), "--sessions", "5"], "sessions")
ADE = lambda w: ["adapt-subject", "encoder", "--subject", "2", *R(w), "--desc", "e1"]  # noqa: E731
numbers("adapt-subject encoder", ADE, {"--n-train": ["1"], "--lr": ["nan"], "--voxels-per-image": ["1"],
                                       "--channels": ["0"]})
case("adapt-subject encoder", "--channels with a pretrained base", lambda w: [*ADE(w), "--channels", "3"],
     "pretrained encoder")
case("adapt-subject encoder", "--backbone missing", lambda w: [*ADE(w), "--backbone", str(w.tmp / "none")], "none")
devices("adapt-subject encoder", ADE)
ADN = lambda w: ["adapt-subject", "neuropictor", "--subject", "1", *R(w)]  # noqa: E731
numbers("adapt-subject neuropictor", ADN, {"--uncond-prob": ["1"], "--lr": ["nan"], "--semantic-weight": ["-1"]})
case("adapt-subject neuropictor", "--desc a-b", lambda w: [*ADN(w), "--desc", "a-b"], "--desc")
case("adapt-subject encoder", "--desc a-b", lambda w: [*ADE(w)[:-2], "--desc", "a-b"], "--desc")
case("adapt-subject neuropictor", "--backbone missing", lambda w: [*ADN(w), "--backbone", str(w.tmp / "none")],
     "none")
devices("adapt-subject neuropictor", ADN)

# encode and cluster-embeddings
ENCODE = lambda w: ["encode", w["images"], "--subject", "1", *R(w), "--out", str(w.tmp / "pred")]  # noqa: E731
numbers("encode", ENCODE, {"--batch-size": ["0"], "--max-flatmaps": ["-1"], "--subject": ["0"]})
devices("encode", ENCODE)
outputs("encode", lambda w: ["encode", w["images"], "--subject", "1", *R(w)])
case("encode", "out = the images", lambda w: [*ENCODE(w)[:-2], "--out", w["images"], "--overwrite"],
     "replace an input")
case("encode", "out inside the images", lambda w: [*ENCODE(w)[:-2], "--out", str(w.files / "images/pred")],
     "inside an input folder")
case("encode", "empty PNG", lambda w: ["encode", str(w.tmp / "images"), *ENCODE(w)[2:]], "trial-1_stim-1.png",
     setup=lambda w, mp: (_copy(w, "images"), (w.tmp / "images/trial-1_stim-1.png").write_bytes(b"")))
case("encode", "truncated PNG", lambda w: ["encode", str(w.tmp / "images"), *ENCODE(w)[2:]], "trial-2_stim-2.png",
     setup=lambda w, mp: (_copy(w, "images"), _truncate(w.tmp / "images/trial-2_stim-2.png")))
case("encode", "no images, no --shared", lambda w: ["encode", "--subject", "1", *R(w)], "--shared")
case("encode", "images missing", lambda w: ["encode", str(w.tmp / "none"), *ENCODE(w)[2:]], "none")
case("encode", "--model a decoder", lambda w: [*ENCODE(w), "--model", str(w.root / "models/decoder")], "model")
CLU = lambda w: ["cluster-embeddings", "--k", "2", *R(w), "--out", str(w.tmp / "clusters")]  # noqa: E731
numbers("cluster-embeddings", CLU, {"--k": ["1"], "--top": ["0"], "--max-images": ["0"], "--batch-size": ["0"]})
case("cluster-embeddings", "--k above the voxels", lambda w: [*CLU(w), "--k", "100000"], "k")
case("cluster-embeddings", "--method nope", lambda w: [*CLU(w), "--method", "kmean"], "kmean")
case("cluster-embeddings", "--space nope", lambda w: [*CLU(w), "--space", "weights"], "weights")
case("cluster-embeddings", "--subjects 9", lambda w: [*CLU(w), "--subjects", "9"], "sub-09")
case("cluster-embeddings", "truncated PNG", lambda w: [*CLU(w), "--images", str(w.tmp / "images")],
     "trial-0_stim-0.png", setup=lambda w, mp: (_copy(w, "images"), _truncate(w.tmp / "images/trial-0_stim-0.png")))
case("cluster-embeddings", "--model missing", lambda w: [*CLU(w), "--model", str(w.tmp / "none")], "none")
devices("cluster-embeddings", CLU)
outputs("cluster-embeddings", lambda w: ["cluster-embeddings", "--k", "2", *R(w)])

# reconstruct (the latent route on the embedded autoencoder)
REC = lambda w: ["reconstruct", w["betas.nii.gz"], "--subject", "1", *R(w), "--out", str(w.tmp / "rec")]  # noqa
numbers("reconstruct", REC, {"--strength": ["2", "0", "nan"], "--max-sheet": ["-1"], "--batch-size": ["0"],
                             "--steps": ["0"], "--samples": ["0"], "--noise-level": ["-1"], "--subject": ["0"],
                             "--guidance-scale": ["-1", "nan"], "--prior-guidance": ["-1"]})
devices("reconstruct", REC)
outputs("reconstruct", lambda w: ["reconstruct", w["betas.nii.gz"], "--subject", "1", *R(w)])
case("reconstruct", "out holds the betas", lambda w: [*REC(w)[:-2], "--out", str(w.files), "--overwrite"],
     "holds an input")
case("reconstruct", "--input-scale 0", lambda w: [*REC(w), "--input-scale", "0"], "--input-scale")
case("reconstruct", "--method nope", lambda w: [*REC(w), "--method", "unclp"], "unclp")
case("reconstruct", "--trials and betas", lambda w: [*REC(w), "--trials", "shared"], "--trials")
case("reconstruct", "neither", lambda w: ["reconstruct", "--subject", "1", *R(w)], "--trials")
case("reconstruct", "--trials out of range", lambda w: ["reconstruct", "--trials", "99999", *REC(w)[2:]], "--trials")
case("reconstruct", "--trials abc", lambda w: ["reconstruct", "--trials", "a-b", *REC(w)[2:]], "--trials")
case("reconstruct", "--prior on latent", lambda w: [*REC(w), "--prior", w["folder"]], "--prior")
case("reconstruct", "--control-scale on latent", lambda w: [*REC(w), "--control-scale", "1"], "--control-scale")
case("reconstruct", "--high-level-from -1", lambda w: [*REC(w), "--high-level-from", "-1"], "--high-level-from")
case("reconstruct", "--samples 2 on the autoencoder", lambda w: [*REC(w), "--samples", "2"], "--samples")
case("reconstruct", "--model missing", lambda w: [*REC(w), "--model", str(w.tmp / "none")], "none")
case("reconstruct", "truncated betas", lambda w: ["reconstruct", str(w.tmp / "betas.nii.gz"), *REC(w)[2:]],
     "betas.nii.gz", setup=lambda w, mp: _truncate(_copy(w, "betas.nii.gz")))
case("reconstruct", "complex betas", lambda w: ["reconstruct", str(w.tmp / "c.nii.gz"), *REC(w)[2:]], "c.nii.gz",
     setup=lambda w, mp: _nifti(w, "c.nii.gz", np.asarray(nib.load(w.files / "betas.nii.gz").dataobj)
                                .astype(np.complex64)))
case("reconstruct", "NaN betas", lambda w: ["reconstruct", str(w.tmp / "n.nii.gz"), *REC(w)[2:]], "NaN",
     setup=lambda w, mp: _nifti(w, "n.nii.gz", np.full(nib.load(w.files / "betas.nii.gz").shape, np.nan,
                                                       np.float32)))
case("reconstruct", "betas on another grid", lambda w: ["reconstruct", w["mask_other_grid.nii.gz"], *REC(w)[2:]],
     "mask_other_grid.nii.gz")
case("reconstruct", "out of memory", REC, "batch of 8", code=1,
     setup=lambda w, mp: mp.setattr("fmrikit.pipelines.reconstruct._write_images", _out_of_memory))

# evaluate
EVR = lambda w: ["evaluate", "recon", "--pred", w["images"], "--truth", w["truth"], *R(w),  # noqa: E731
                 "--out", str(w.tmp / "ev")]
numbers("evaluate recon", EVR, {"--batch-size": ["0"]})
devices("evaluate recon", EVR)
outputs("evaluate recon", lambda w: ["evaluate", "recon", "--pred", w["images"], "--truth", w["truth"], *R(w)])
case("evaluate recon", "out = the --pred folder", lambda w: [*EVR(w)[:-2], "--out", w["images"], "--overwrite"],
     "replace an input")
case("evaluate recon", "out = the --pred folder, no --overwrite", lambda w: [*EVR(w)[:-2], "--out", w["images"]],
     "replace an input")
case("evaluate recon", "--preset nope", lambda w: [*EVR(w), "--preset", "mindeye"], "mindeye")
case("evaluate recon", "empty PNG", lambda w: ["evaluate", "recon", "--pred", str(w.tmp / "images"), *EVR(w)[4:]],
     "trial-1_stim-1.png", setup=lambda w, mp: (_copy(w, "images"), (w.tmp / "images/trial-1_stim-1.png")
                                                .write_bytes(b"")))
case("evaluate recon", "truncated PNG", lambda w: ["evaluate", "recon", "--pred", str(w.tmp / "images"),
                                                   *EVR(w)[4:]], "trial-2_stim-2.png",
     setup=lambda w, mp: (_copy(w, "images"), _truncate(w.tmp / "images/trial-2_stim-2.png")))
case("evaluate recon", "--pred missing", lambda w: ["evaluate", "recon", "--pred", str(w.tmp / "none"),
                                                    *EVR(w)[4:]], "none")


def _text_truth(w: World, mp) -> None:
    with h5py.File(w.tmp / "truth.h5", "w") as f:
        f["imgBrick"] = np.array(["a", "b", "c"], dtype=h5py.string_dtype())


case("evaluate recon", "text truth brick", lambda w: [*EVR(w)[:4], "--truth", str(w.tmp / "truth.h5"), *EVR(w)[6:]],
     "truth.h5", setup=_text_truth)
EVT = lambda w: ["evaluate", "retrieval", "--brain", w["brain.h5"], "--image", w["image.h5"], *R(w),  # noqa: E731
                 "--out", str(w.tmp / "ev")]
numbers("evaluate retrieval", EVT, {"--candidates": ["1"], "--draws": ["0"]})
outputs("evaluate retrieval", lambda w: EVT(w)[:-2])


def _embeddings(w: World, values, stim=np.arange(8)) -> list[str]:
    with h5py.File(w.tmp / "e.h5", "w") as f:
        f["embeddings"] = values
        if stim is not None:
            f["stim_id"] = stim
    return [*EVT(w)[:3], str(w.tmp / "e.h5"), *EVT(w)[4:]]


case("evaluate retrieval", "text embeddings", lambda w: _embeddings(w, np.array(["x"] * 8, dtype=h5py.string_dtype())),
     "e.h5")
case("evaluate retrieval", "complex embeddings", lambda w: _embeddings(w, np.ones((8, 5), np.complex64)), "e.h5")
case("evaluate retrieval", "NaN embeddings", lambda w: _embeddings(w, np.full((8, 5), np.nan)), "NaN")
case("evaluate retrieval", "text stim ids", lambda w: _embeddings(w, np.ones((8, 5)), np.array(
    [str(i) for i in range(8)], dtype=h5py.string_dtype())), "stim_id")
case("evaluate retrieval", "repeated stim ids", lambda w: _embeddings(w, np.ones((8, 5)), np.zeros(8, int)),
     "repeated")
case("evaluate retrieval", "stim ids of another length", lambda w: _embeddings(w, np.ones((8, 5)), np.arange(5)),
     "stim_id")
case("evaluate retrieval", "--brain missing", lambda w: [*EVT(w)[:3], str(w.tmp / "none.h5"), *EVT(w)[4:]],
     "none.h5")
EVE = lambda w: ["evaluate", "encoding", "--pred", w["pred.h5"], "--subject", "1", *R(w),  # noqa: E731
                 "--out", str(w.tmp / "ev"), "--no-flatmap"]
numbers("evaluate encoding", EVE, {"--subject": ["0"]})
outputs("evaluate encoding", lambda w: EVE(w)[:-3])
case("evaluate encoding", "no dataset", lambda w: [*EVE(w)[:5], "9", *EVE(w)[6:]], "sub-09")


def _pred(w: World, edit) -> list[str]:
    shutil.copyfile(w.files / "pred.h5", w.tmp / "p.h5")
    with h5py.File(w.tmp / "p.h5", "r+") as f:
        edit(f)
    return [*EVE(w)[:3], str(w.tmp / "p.h5"), *EVE(w)[4:]]


case("evaluate encoding", "text predictions", lambda w: _pred(w, lambda f: _replace_dataset(
    f, "pred", np.array(["x"] * 3, dtype=h5py.string_dtype()))), "p.h5")
case("evaluate encoding", "NaN predictions", lambda w: _pred(w, lambda f: f["pred"].__setitem__((0, 0), np.nan)),
     "NaN")
case("evaluate encoding", "voxel count vs voxels/ijk", lambda w: _pred(w, lambda f: _replace_dataset(
    f, "voxels/ijk", f["voxels/ijk"][:-2])), "p.h5")
case("evaluate encoding", "text stim ids", lambda w: _pred(w, lambda f: _replace_dataset(
    f, "stim_id", np.array([str(v) for v in f["stim_id"][:]], dtype=h5py.string_dtype()))), "stim_id")
case("evaluate encoding", "no stim_id", lambda w: _pred(w, lambda f: f.__delitem__("stim_id")), "stim_id")
EVM = lambda w: ["evaluate", "mask", "--mask", w["mask.nii.gz"], "--reference", w["mask.nii.gz"], *R(w),  # noqa
                 "--out", str(w.tmp / "ev")]
outputs("evaluate mask", lambda w: EVM(w)[:-2])
case("evaluate mask", "truncated mask", lambda w: [*EVM(w)[:3], str(w.tmp / "mask.nii.gz"), *EVM(w)[4:]],
     "mask.nii.gz", setup=lambda w, mp: _truncate(_copy(w, "mask.nii.gz")))
case("evaluate mask", "two grids", lambda w: [*EVM(w)[:5], w["mask_other_grid.nii.gz"], *EVM(w)[6:]],
     "mask_other_grid.nii.gz")
case("evaluate mask", "a 4D mask", lambda w: [*EVM(w)[:3], w["betas.nii.gz"], *EVM(w)[4:]], "betas.nii.gz")
case("evaluate mask", "mask = its own output", lambda w: [*EVM(w)[:3], str(w.tmp / "ev/results.json"),
                                                          *EVM(w)[4:], "--overwrite"], "holds an input",
     setup=lambda w, mp: ((w.tmp / "ev").mkdir(), (w.tmp / "ev/results.json").write_text("{}")))
EVL = lambda w: ["evaluate", "labels", "--labels", w["mask.nii.gz"], "--reference", w["mask.nii.gz"], *R(w),  # noqa
                 "--out", str(w.tmp / "ev")]
outputs("evaluate labels", lambda w: EVL(w)[:-2])
case("evaluate labels", "two grids", lambda w: [*EVL(w)[:5], w["mask_other_grid.nii.gz"], *EVL(w)[6:]],
     "mask_other_grid.nii.gz")
case("evaluate labels", "--within on a third grid", lambda w: [*EVL(w), "--within", w["mask_other_grid.nii.gz"]],
     "mask_other_grid.nii.gz")
case("evaluate labels", "truncated labels", lambda w: [*EVL(w)[:3], str(w.tmp / "mask.nii.gz"), *EVL(w)[4:]],
     "mask.nii.gz", setup=lambda w, mp: _truncate(_copy(w, "mask.nii.gz")))
for label, text in [("a JSON list", "[1, 2]"), ("another JSON", '{"schema": "other"}'), ("not JSON", "{"),
                    ("no metrics", json.dumps({"schema": "fmrikit.evaluate/1", "kind": "x", "n": 1})),
                    ("binary", None)]:
    case("evaluate compare", label, lambda w: ["evaluate", "compare", str(w.tmp / "r.json")], "r.json",
         setup=lambda w, mp, t=text: (w.tmp / "r.json").write_text(t) if t is not None else
         (w.tmp / "r.json").write_bytes(b"\xff\xfe\x00"))
case("evaluate compare", "missing file", lambda w: ["evaluate", "compare", str(w.tmp / "none.json")], "none.json")

# sys-info
case("sys-info", "--plan nope", lambda w: ["sys-info", "--plan", "neuropicter"], "neuropicter")
case("sys-info", "--batch-size 0", lambda w: ["sys-info", "--plan", "neuropictor", "--batch-size", "0"],
     "--batch-size")
case("sys-info", "--batch-size without --plan", lambda w: ["sys-info", "--batch-size", "4"], "--batch-size")


# -- the check -----------------------------------------------------------------------------------------------------

_HASHES: dict[tuple, str] = {}


def tree_state(*folders: Path) -> dict[str, str]:
    """Every file under the folders (hidden ones too) with its SHA-256 (recomputed only when its stat changes)."""
    state = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if p.is_file() and not p.is_symlink():
                st = p.stat()
                key = (str(p), st.st_size, st.st_mtime_ns, st.st_ino)
                if key not in _HASHES:
                    _HASHES[key] = hashlib.sha256(p.read_bytes()).hexdigest()
                state[str(p)] = _HASHES[key]
            elif p.is_dir():
                state[str(p) + "/"] = "folder"
    return state


@pytest.mark.parametrize("bad", CASES, ids=[f"{c.command}: {c.name}" for c in CASES])
def test_bad_input(bad: Case, world: World, tmp_path, monkeypatch):
    w = World(root=world.root, nsd=world.nsd, files=world.files, tmp=tmp_path)
    monkeypatch.setenv("FMRIKIT_ROOT", str(w.root))  # the project of commands without --root (simulate)
    if bad.setup is not None:
        bad.setup(w, monkeypatch)
    args = bad.args(w)
    trees = [w.root, w.files, w.tmp] + ([w.nsd] if "--nsd-root" in args else [])
    before = tree_state(*trees)
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    token = bad.token(w) if callable(bad.token) else bad.token
    assert result.exit_code == bad.code, result.output
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert token in lines[0], lines[0]
    assert tree_state(*trees) == before, "files were written, removed or changed"


def test_the_battery_covers_every_command():
    """Every command and model subcommand is tried; the count per command is printed for the closing note."""
    from fmrikit.cli import adapt, evaluate, pretrain

    tried = Counter(c.command for c in CASES)
    commands = {f"pretrain {c.name}" for c in pretrain.app.registered_commands}
    commands |= {f"adapt-subject {c.name}" for c in adapt.app.registered_commands}
    commands |= {f"evaluate {c.name}" for c in evaluate.app.registered_commands}
    commands |= {"simulate", "preprocess", "roi-train", "encode", "cluster-embeddings", "reconstruct", "sys-info"}
    assert commands <= set(tried), sorted(commands - set(tried))
    print("\n".join(f"{name}: {n}" for name, n in sorted(tried.items())))
