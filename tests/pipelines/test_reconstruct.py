"""Reconstruction inputs: a raw betas NIfTI is masked and scaled exactly as preprocess does per session."""

import h5py
import nibabel as nib
import numpy as np
import pytest

from fmrikit.data.dataset import read_betas, read_info
from fmrikit.errors import DataValueError, GridMismatchError, InputError
from fmrikit.pipelines.reconstruct import _session_stimuli, dataset_inputs, read_nifti_inputs, sample_seed


@pytest.fixture(scope="module")
def dataset(sim_world, tmp_path_factory):
    from fmrikit.data.preprocess import preprocess_nsd

    return preprocess_nsd(sim_world, 1, root=tmp_path_factory.mktemp("recon"), flatmap=False).betas


def _session_file(sim_world, session):
    return sim_world / f"nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session{session:02d}.nii.gz"


def test_raw_session_file_gives_the_preprocessed_betas(sim_world, dataset):
    info = read_info(dataset)
    cols = np.arange(0, info.n_voxels, 7)
    path = _session_file(sim_world, 2)
    x, record = read_nifti_inputs(path, info.ijk[cols], info.affine, info.volume_shape)
    assert record["input_scale"] == "raw" and record["integer_betas"] and record["sha256"]
    raw = np.asarray(nib.load(path).dataobj)  # (X, Y, Z, T) int16
    by_hand = np.stack([raw[i, j, k] for i, j, k in info.ijk[cols]], 1) / 300.0
    by_hand = (by_hand - by_hand.mean(0)) / by_hand.std(0)
    assert np.allclose(x, by_hand, atol=1e-5)
    rows = np.nonzero(info.session == 2)[0]
    with h5py.File(dataset) as f:
        order = f["trials/index_in_session"][:][rows]
    assert np.allclose(x[order], read_betas(dataset, rows)[:, cols], atol=1e-4)  # preprocess, independently
    assert np.array_equal(_session_stimuli(path, dataset, len(x))[order], info.stim_id[rows])


def test_a_single_volume_needs_zscored_values(sim_world, dataset, tmp_path):
    info = read_info(dataset)
    img = nib.load(_session_file(sim_world, 1))
    one = tmp_path / "one.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., 3], img.affine), one)
    with pytest.raises(DataValueError, match="one volume cannot be z-scored"):
        read_nifti_inputs(one, info.ijk, info.affine, info.volume_shape)
    z = tmp_path / "z.nii.gz"
    values = np.random.default_rng(0).normal(size=img.shape[:3]).astype(np.float32)
    nib.save(nib.Nifti1Image(values, img.affine), z)
    x, record = read_nifti_inputs(z, info.ijk, info.affine, info.volume_shape)
    assert record["input_scale"] == "zscored" and np.array_equal(x[0], values[tuple(info.ijk.T)])
    with pytest.raises(InputError, match="input-scale"):
        read_nifti_inputs(z, info.ijk, info.affine, info.volume_shape, "percent")


def test_grid_mismatch_is_refused(sim_world, dataset, tmp_path):
    info = read_info(dataset)
    img = nib.load(_session_file(sim_world, 1))
    moved = tmp_path / "moved.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ np.diag([1.0, 1.0, 1.5, 1.0])), moved)
    with pytest.raises(GridMismatchError):
        read_nifti_inputs(moved, info.ijk, info.affine, info.volume_shape)


def test_dataset_trials_and_shared_averages(dataset):
    info = read_info(dataset)
    cols = np.arange(5, info.n_voxels, 11)
    x, stim, names, _ = dataset_inputs(dataset, info.ijk[cols], "3-5,0")
    assert np.array_equal(stim, info.stim_id[[0, 3, 4, 5]]) and names[1] == f"trial-0003_stim-{stim[1]}"
    assert np.allclose(x, read_betas(dataset)[[0, 3, 4, 5]][:, cols])
    x, stim, names, _ = dataset_inputs(dataset, info.ijk[cols], "shared")
    all_betas = read_betas(dataset)
    for k, s in enumerate(stim):
        assert np.allclose(x[k], all_betas[(info.stim_id == s) & info.shared][:, cols].mean(0), atol=1e-5)
    with pytest.raises(InputError, match="out of range"):
        dataset_inputs(dataset, info.ijk[cols], f"{info.n_trials}")


def test_sample_seeds_depend_on_seed_row_and_sample_only():
    seeds = {sample_seed(s, r, k) for s in (0, 1) for r in range(20) for k in range(3)}
    assert len(seeds) == 120 and sample_seed(0, 4, 1) == sample_seed(0, 4, 1)


def test_training_trials_and_sessions_are_warned_about(dataset):
    from pathlib import Path

    from fmrikit.diffusion import Route
    from fmrikit.pipelines.reconstruct import training_overlap

    info = read_info(dataset)

    def route(sessions):
        return Route(ijk=info.ijk, affine=info.affine, volume_shape=info.volume_shape, dataset=dataset,
                     model_path=Path("sub-01_desc-gcn_latentmapper"), record={}, inputs=[], predict=None,
                     generate=None, train_sessions=sessions)

    session2 = Path("betas_session02.nii.gz")
    assert "session 2" in training_overlap(route([1, 2]), session2, None)
    assert training_overlap(route([1]), session2, None) is None
    assert training_overlap(route(None), session2, None) is None  # a model that saw none of this subject
    trained = np.nonzero((info.session == 1) & ~info.shared)[0][:3]
    test = np.nonzero(info.shared)[0][:2]
    rows = ",".join(str(r) for r in np.concatenate([trained, test]))
    line = training_overlap(route([1]), None, rows)
    assert line.startswith(f"3 of the 5 trials (e.g. trial {trained.min()})")
    assert training_overlap(route([1]), None, ",".join(map(str, test))) is None
    assert training_overlap(route([1, 2]), None, "shared") is None
