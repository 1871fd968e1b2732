import json

import h5py
import nibabel as nib
import numpy as np
from PIL import Image
import pytest

from fmrikit.data.dataset import read_betas, read_info
from fmrikit.data.preprocess import parse_sessions, preprocess_files, preprocess_nsd
from fmrikit.errors import GridMismatchError, InputError
from tests.nsd_fixture import AFFINE, AFFINE_1MM, CONSTANT_VOXEL, SHAPE, SHAPE_1MM, TRIALS, expected


@pytest.mark.parametrize("subject", [1, 2])
@pytest.mark.parametrize("exclude_shared", [False, True])
def test_nsd_matches_independent_numpy(nsd_tree, tmp_path, subject, exclude_shared):
    res = preprocess_nsd(nsd_tree, subject, root=tmp_path / "proj", zscore_exclude_shared=exclude_shared,
                         flatmap=False)
    betas, stim, sess, shared, ijk = expected(nsd_tree, subject, exclude_shared)
    info = read_info(res.betas)
    got = read_betas(res.betas)
    assert got.dtype == np.float32 and got.shape == betas.shape
    np.testing.assert_allclose(got, betas, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(info.stim_id, stim)
    np.testing.assert_array_equal(info.session, sess)
    np.testing.assert_array_equal(info.shared, shared)
    np.testing.assert_array_equal(info.ijk, ijk)
    assert info.stim_id.dtype == np.int64 and info.session.dtype == np.int16 and info.ijk.dtype == np.int32
    np.testing.assert_allclose(info.affine, AFFINE)
    assert info.volume_shape == SHAPE and info.subject == subject
    assert info.stimuli_dataset == "imgBrick" and info.stimuli_path.endswith("nsd_stimuli.hdf5")
    mask = nib.load(res.mask)
    assert mask.shape == SHAPE and int(mask.get_fdata().sum()) == len(ijk)
    side = json.loads(res.sidecar.read_text())
    assert side["parameters"]["subject"] == subject and side["run_id"] and "numpy" in side["versions"]
    assert all("sha256" in i or "sha256_fingerprint" in i for i in side["inputs"])


def test_func1mm_space_reads_the_1mm_grid(nsd_tree, tmp_path):
    res = preprocess_nsd(nsd_tree, 1, root=tmp_path / "proj", space="func1mm", flatmap=False)
    betas, stim, sess, shared, ijk = expected(nsd_tree, 1, space="func1mm")
    info = read_info(res.betas)
    np.testing.assert_allclose(read_betas(res.betas), betas, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(info.ijk, ijk)
    np.testing.assert_array_equal(info.stim_id, stim)
    assert info.volume_shape == SHAPE_1MM and info.space == "func1mm"
    np.testing.assert_allclose(info.affine, AFFINE_1MM)
    assert info.anatomy.endswith("func1mm/T1_to_func1mm.nii.gz") and info.conventions["space"] == "func1mm"
    noise = nib.load(tmp_path / "proj/sub-01/sub-01_desc-preproc_noiseceiling.nii.gz")
    assert noise.shape == SHAPE_1MM and np.isfinite(noise.get_fdata()[tuple(ijk.T)]).all()


def test_conventions_exclude_shared_recorded(nsd_tree, tmp_path):
    res = preprocess_nsd(nsd_tree, 2, root=tmp_path / "proj", zscore_exclude_shared=True, flatmap=False)
    conv = read_info(res.betas).conventions
    assert "non-shared" in conv["normalisation"] and conv == json.loads(res.sidecar.read_text())["conventions"]


def test_constant_voxel_dropped_and_counted(nsd_tree, tmp_path, caplog):
    res = preprocess_nsd(nsd_tree, 1, root=tmp_path / "proj", flatmap=False)
    assert res.n_dropped == 1
    assert CONSTANT_VOXEL not in {tuple(v) for v in read_info(res.betas).ijk}
    assert "dropped 1 constant voxel" in caplog.text


def test_session_subset_and_sidecar_checksum(nsd_tree, tmp_path):
    res = preprocess_nsd(nsd_tree, 1, root=tmp_path / "proj", sessions=[2, 3], flatmap=False)
    info = read_info(res.betas)
    assert set(info.session.tolist()) == {2, 3} and info.n_trials == 2 * TRIALS
    path = nsd_tree / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session02.nii.gz"
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    inputs = json.loads(res.sidecar.read_text())["inputs"]
    assert any(i.get("sha256") == digest for i in inputs)


def test_read_betas_subsets(nsd_tree, tmp_path):
    res = preprocess_nsd(nsd_tree, 2, root=tmp_path / "proj", flatmap=False)
    full = read_betas(res.betas)
    idx = np.array([5, 1, 5, 0])
    np.testing.assert_array_equal(read_betas(res.betas, idx), full[idx])


def test_refuses_overwrite(nsd_tree, tmp_path):
    preprocess_nsd(nsd_tree, 2, root=tmp_path / "proj", flatmap=False)
    with pytest.raises(InputError, match="exists"):
        preprocess_nsd(nsd_tree, 2, root=tmp_path / "proj", flatmap=False)
    preprocess_nsd(nsd_tree, 2, root=tmp_path / "proj", flatmap=False, overwrite=True)


def test_generic_path_one_volume_per_trial(tmp_path):
    """THINGS-like input: one float NIfTI per trial, two sessions, a folder of images."""
    rng = np.random.default_rng(1)
    mask = np.zeros(SHAPE, np.int16)
    mask[1:5, 2:6, 2:7] = 1
    nib.save(nib.Nifti1Image(mask, AFFINE), tmp_path / "mask.nii.gz")
    (tmp_path / "img").mkdir()
    rows, vols = [], []
    for t in range(10):
        vol = rng.normal(1.0, 2.0, SHAPE + (1,)).astype(np.float32)
        name = f"trial{t:02d}.nii.gz"
        nib.save(nib.Nifti1Image(vol, AFFINE), tmp_path / name)
        Image.fromarray(np.full((4, 4, 3), t % 7, np.uint8)).save(tmp_path / "img" / f"im{t % 7}.png")
        rows.append(f"{name}\t0\t{1 + t // 5}\t{t % 7}\t{int(t % 7 < 2)}\tim{t % 7}.png")
        vols.append(vol[..., 0])
    (tmp_path / "trials.tsv").write_text("file\tindex_in_file\tsession\tstimulus_id\tshared\timage_file\n"
                                         + "\n".join(rows) + "\n")
    files = sorted(tmp_path.glob("trial*.nii.gz"))
    res = preprocess_files(files, tmp_path / "trials.tsv", 3, mask=tmp_path / "mask.nii.gz",
                           images=tmp_path / "img", root=tmp_path / "proj", flatmap=False)
    x = np.stack([v[mask > 0] for v in vols])
    want = np.concatenate([(s - s.mean(0)) / s.std(0) for s in (x[:5], x[5:])])
    np.testing.assert_allclose(read_betas(res.betas), want, rtol=1e-4, atol=1e-5)
    info = read_info(res.betas)
    np.testing.assert_array_equal(info.stim_id, np.arange(10) % 7)
    with h5py.File(res.betas) as f:
        assert f["stimuli/file"].asstr()[0] == "im0.png"


def test_parse_sessions():
    assert parse_sessions("1-3,7") == [1, 2, 3, 7]
    assert parse_sessions("2") == [2]
    with pytest.raises(InputError):
        parse_sessions("a-b")
    with pytest.raises(InputError):
        parse_sessions("0-2")


# -- bad input: one clear error, exit 2, nothing left behind ----------------------------------

def _betas_dir(root, subject=1):
    return root / f"nsddata_betas/ppdata/subj{subject:02d}/func1pt8mm/betas_fithrf_GLMdenoise_RR"


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_h5(path):
    data = bytearray(path.read_bytes())
    data[:64] = b"\0" * 64
    path.write_bytes(bytes(data))


def _nan_betas(root):
    p = _betas_dir(root) / "betas_session01.nii.gz"
    img = nib.load(p)
    data = img.get_fdata().astype(np.float32)
    data[3, 3, 4, 2] = np.nan
    nib.save(nib.Nifti1Image(data, AFFINE), p)


def _shift_mask(root):
    p = root / "nsddata/ppdata/subj01/func1pt8mm/roi/nsdgeneral.nii.gz"
    img = nib.load(p)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), AFFINE + np.diag([0, 0, 0.5, 0])), p)


def _reshape_mask(root):
    p = root / "nsddata/ppdata/subj01/func1pt8mm/roi/nsdgeneral.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((7, 8, 10), np.int16), AFFINE), p)


def _drop_trial(root):
    p = _betas_dir(root) / "betas_session02.nii.gz"
    img = nib.load(p)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., :-1], AFFINE), p)


def _shrink_images(root):
    p = root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
    with h5py.File(p, "r+") as f:
        keep = f["imgBrick"][:3]
        del f["imgBrick"]
        f["imgBrick"] = keep


BAD_INPUTS = {
    "missing subject": (lambda root: None, ["--subject", "5"], "subj05"),
    "missing session": (lambda root: None, ["--sessions", "1-4"], "session04"),
    "truncated nii.gz": (lambda root: _truncate(_betas_dir(root) / "betas_session02.nii.gz"), [], "betas_session02"),
    "corrupt hdf5": (lambda root: _corrupt_h5(_betas_dir(root, 2) / "betas_session01.hdf5"), ["--subject", "2"],
                     "betas_session01.hdf5"),
    "mask affine mismatch": (_shift_mask, [], "affine"),
    "mask shape mismatch": (_reshape_mask, [], "shape"),
    "NaN in betas": (_nan_betas, [], "NaN"),
    "trial count vs design": (_drop_trial, [], "trial count"),
    "images missing": (_shrink_images, [], "images missing"),
    "missing ROI": (lambda root: None, ["--roi", "floc-faces"], "floc-faces"),
    "missing design": (lambda root: (root / "nsddata/experiments/nsd/nsd_expdesign.mat").unlink(), [],
                       "nsd_expdesign.mat"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_one_line_exit_2_no_partial_output(nsd_tree, tmp_path, case):
    from typer.testing import CliRunner

    from fmrikit.cli.main import app

    damage, extra, needle = BAD_INPUTS[case]
    damage(nsd_tree)
    proj = tmp_path / "proj"
    args = ["preprocess", "--nsd-root", str(nsd_tree), "--root", str(proj), "--no-flatmap"]
    if "--subject" not in extra:
        args += ["--subject", "1"]
    result = CliRunner().invoke(app, args + extra)
    assert result.exit_code == 2, result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert needle in lines[0], lines[0]
    leftovers = [p for p in proj.rglob("*") if p.is_file()] if proj.exists() else []
    assert leftovers == []


def test_wrong_pycortex_grid_fails_before_work(nsd_tree, tmp_path):
    with pytest.raises(GridMismatchError, match="pycortex"):
        preprocess_nsd(nsd_tree, 2, root=tmp_path / "proj", pycortex_subject="S1", pycortex_xfm="fullhead")
    assert not (tmp_path / "proj").exists() or not any(p.is_file() for p in (tmp_path / "proj").rglob("*"))
