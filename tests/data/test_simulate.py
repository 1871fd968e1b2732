"""The simulated world: NSD's formats exactly, and responses that follow the ground truth."""

import json

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.io

from fmrikit.data.simulate import simulate
from fmrikit.data.world.config import SimulationConfig
from fmrikit.errors import InputError


@pytest.fixture(scope="module")
def design(sim_world):
    d = scipy.io.loadmat(sim_world / "nsddata/experiments/nsd/nsd_expdesign.mat")
    return {k: d[k].astype(np.int64) for k in ("masterordering", "subjectim", "sharedix", "stimpattern")}


def test_design_file(sim_world, design):
    master, subjectim = design["masterordering"], design["subjectim"]
    assert master.shape == (1, 2 * 60) and subjectim.shape == (2, 40)
    assert master.min() == 1 and master.max() == 40  # 1-based into the subject's list
    np.testing.assert_array_equal(subjectim[0, :8], subjectim[1, :8])  # shared images first
    assert set(subjectim[0, 8:]).isdisjoint(subjectim[1, 8:])
    np.testing.assert_array_equal(np.sort(subjectim[0, :8]), design["sharedix"].ravel())
    assert design["stimpattern"].shape[:2] == (2, 3) and (design["stimpattern"].sum((1, 2)) == 60).all()


def test_betas_files(sim_world):
    truth = h5py.File(sim_world / "simulation_truth.h5")
    b1 = sim_world / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    b2 = sim_world / "nsddata_betas/ppdata/subj02/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    assert sorted(p.name for p in b1.glob("betas_*")) == ["betas_session01.nii.gz", "betas_session02.nii.gz"]
    assert sorted(p.name for p in b2.glob("betas_*")) == ["betas_session01.hdf5"]
    img = nib.load(b1 / "betas_session01.nii.gz")
    assert img.get_data_dtype() == np.int16 and img.shape == (100, 100, 31, 60)
    brain = nib.load(sim_world / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz").get_fdata() > 0
    data = np.asarray(img.dataobj)
    assert (data[~brain] == 0).all() and (data[brain] != 0).mean() > 0.95
    with h5py.File(b2 / "betas_session01.hdf5") as f:
        assert f["betas"].dtype == np.int16 and f["betas"].shape == (60, 31, 100, 100)
        tzyx = f["betas"][:]
    assert (np.transpose(tzyx, (3, 2, 1, 0))[~brain] == 0).all()
    assert truth["subj02"].attrs["format"] == "hdf5"


def test_behaviour_stim_info_and_captions(sim_world, design):
    master, subjectim = design["masterordering"].ravel(), design["subjectim"]
    resp = pd.read_csv(sim_world / "nsddata/ppdata/subj01/behav/responses.tsv", sep="\t")
    assert len(resp) == 120 and list(resp["SESSION"].unique()) == [1, 2]
    np.testing.assert_array_equal(resp["73KID"], subjectim[0, master[:120] - 1])
    np.testing.assert_array_equal(resp["10KID"], master[:120])
    info = pd.read_csv(sim_world / "nsddata/experiments/nsd/nsd_stim_info_merged.csv", index_col=0)
    with h5py.File(sim_world / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5") as f:
        brick = f["imgBrick"]
        assert brick.dtype == np.uint8 and brick.shape == (len(info), 32, 32, 3)
    assert (info["nsdId"] == np.arange(len(info))).all()
    assert info["shared1000"].sum() == 8
    for subject, n_trials in ((1, 120), (2, 60)):
        for r in range(3):
            col = info[f"subject{subject}_rep{r}"]
            shown = col > 0
            assert (col[shown] <= n_trials).all()
            # 1-based global trial number -> the image the design puts there
            ids = subjectim[subject - 1, master[col[shown].to_numpy() - 1] - 1]
            np.testing.assert_array_equal(ids, info.index[shown] + 1)
    caps = {}
    for split in ("train2017", "val2017"):
        doc = json.loads((sim_world / f"nsddata_stimuli/stimuli/nsd/annotations/captions_{split}.json").read_text())
        caps.update({a["image_id"]: a["caption"] for a in doc["annotations"]})
    assert all(isinstance(caps[c], str) and caps[c] for c in info["cocoId"])


def test_roi_files(sim_world):
    roi_dir = sim_world / "nsddata/ppdata/subj01/func1pt8mm/roi"
    whole = np.asarray(nib.load(roi_dir / "nsdgeneral.nii.gz").dataobj)
    lh = np.asarray(nib.load(roi_dir / "lh.nsdgeneral.nii.gz").dataobj)
    rh = np.asarray(nib.load(roi_dir / "rh.nsdgeneral.nii.gz").dataobj)
    assert set(np.unique(whole)) == {-1, 0, 1}
    np.testing.assert_array_equal(np.maximum(lh, rh), whole)
    assert ((lh == 1) & (rh == 1)).sum() == 0 and (lh == 1).sum() > 100 and (rh == 1).sum() > 100
    prf = np.asarray(nib.load(roi_dir / "prf-visualrois.nii.gz").dataobj)
    assert set(np.unique(prf)) == set(range(-1, 8))
    ctab = (sim_world / "nsddata/freesurfer/subj01/label/prf-visualrois.mgz.ctab").read_text().splitlines()
    assert ctab[0] == "0 Unknown" and ctab[1] == "1 V1v" and ctab[7] == "7 hV4"


def test_roi_mostly_driven_and_layout_shared_up_to_a_warp(sim_world):
    """nsdgeneral is drawn on the template: it holds mostly driven voxels and most of them (a fringe of weak
    ones lies outside, as with a hand-drawn region); the subjects' layouts differ by a warp, not a reshuffle."""
    with h5py.File(sim_world / "simulation_truth.h5") as truth:
        classes = {}
        for subject in (1, 2):
            inf = truth[f"subj{subject:02d}/informative_mask"][:]
            cls = truth[f"subj{subject:02d}/voxel_class"][:]
            roi_dir = sim_world / f"nsddata/ppdata/subj{subject:02d}/func1pt8mm/roi"
            roi = nib.load(roi_dir / "nsdgeneral.nii.gz").get_fdata() > 0
            assert inf[roi].mean() > 0.85  # nsdgeneral is mostly visually driven
            assert 0.7 < roi[inf].mean() < 0.98  # it covers most, not all, driven voxels
            assert all((cls == c).sum() >= 20 for c in range(1, 8))  # early, every category, other visual
            classes[subject] = cls
        a, b = classes[1], classes[2]
        for c in (2, 4, 6):  # face, scene, animal regions: shifted by millimetres, overlapping
            dice = 2 * ((a == c) & (b == c)).sum() / ((a == c).sum() + (b == c).sum())
            assert 0.3 < dice < 0.95
        assert ((a >= 2) != (b >= 2)).sum() > 50


def test_responses_follow_ground_truth(sim_world):
    """Trial-averaged raw betas (read with nibabel) correlate with the noise-free responses."""
    b = sim_world / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    design = scipy.io.loadmat(sim_world / "nsddata/experiments/nsd/nsd_expdesign.mat")
    master, subjectim = design["masterordering"].ravel().astype(int), design["subjectim"].astype(int)
    with h5py.File(sim_world / "simulation_truth.h5") as truth:
        g = truth["subj01"]
        ijk, free = g["voxels/ijk"][:], g["responses/noise_free"][:]
        strong = g["ncsnr"][:][tuple(ijk.T)] > 0.3
        noise_ijk = np.argwhere((g["voxel_class"][:] == 0) & (np.asarray(
            nib.load(sim_world / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz").dataobj) > 0))[:500]
    sessions = []
    for s in (1, 2):
        data = nib.load(b / f"betas_session{s:02d}.nii.gz").get_fdata() / 300
        x = np.concatenate([data[tuple(ijk.T)], data[tuple(noise_ijk.T)]]).T
        sessions.append((x - x.mean(0)) / x.std(0))
    x = np.concatenate(sessions)
    stim = subjectim[0, master[:120] - 1] - 1  # 0-based 73k id of each trial: the row of noise_free
    images = np.unique(stim)
    avg = np.stack([x[stim == i].mean(0) for i in images])
    n_inf = len(ijk)
    r_inf = np.array([np.corrcoef(avg[:, j], free[images, j])[0, 1] for j in range(n_inf)])
    r_noise = [np.corrcoef(avg[:, n_inf + j], free[images, j % n_inf])[0, 1] for j in range(len(noise_ijk))]
    assert np.median(r_inf[strong]) > 0.5 and np.median(r_inf) > 0.3
    assert abs(np.median(r_noise)) < 0.1


def test_ncsnr_separates_informative_voxels(sim_world):
    b = sim_world / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    ncsnr = nib.load(b / "ncsnr.nii.gz").get_fdata()
    with h5py.File(sim_world / "simulation_truth.h5") as truth:
        inf = truth["subj01/informative_mask"][:]
        true = truth["subj01/ncsnr"][:]
        nc = truth["subj01/noise_ceiling"][:]
    brain = nib.load(sim_world / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz").get_fdata() > 0
    assert np.median(ncsnr[inf]) > 3 * np.median(ncsnr[brain & ~inf])
    assert np.corrcoef(ncsnr[inf], true[inf])[0, 1] > 0.3
    np.testing.assert_allclose(nc[inf], 100 * true[inf] ** 2 / (true[inf] ** 2 + 1 / 3), rtol=1e-5)
    assert (true[brain & ~inf] == 0).all() and (true[inf] > 0).all()


def test_deterministic_and_validated(tmp_path):
    cfg = SimulationConfig(n_subjects=1, sessions=[1], trials_per_session=30, n_shared=3, image_size=16, seed=7)
    a, b = simulate(tmp_path / "a", cfg), simulate(tmp_path / "b", cfg)
    for rel in ("nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.nii.gz",
                "nsddata/experiments/nsd/nsd_stim_info_merged.csv"):
        np.testing.assert_array_equal(np.asarray(nib.load(a / rel).dataobj) if rel.endswith("gz") else
                                      pd.read_csv(a / rel).to_numpy(), np.asarray(nib.load(b / rel).dataobj)
                                      if rel.endswith("gz") else pd.read_csv(b / rel).to_numpy())
    marker = json.loads((a / "fmrikit_simulation.json").read_text())
    assert marker["world_version"] == 2 and marker["noise_free"] is False
    with pytest.raises(InputError, match="exists"):
        simulate(tmp_path / "a", cfg)
    with pytest.raises(InputError, match="shared"):
        simulate(tmp_path / "c", SimulationConfig(n_subjects=1, sessions=[1], trials_per_session=30, n_shared=10))
    with pytest.raises(InputError, match="sessions every subject has"):  # 3 x 12 shared trials > 30 trials
        simulate(tmp_path / "c", SimulationConfig(n_subjects=2, sessions=[1, 4], trials_per_session=30, n_shared=12))
    with pytest.raises(InputError, match="smoothness"):
        simulate(tmp_path / "c", SimulationConfig(n_subjects=1, sessions=[2], trials_per_session=30, n_shared=3,
                                                  noise_fwhm=3.0))
    assert not (tmp_path / "c").exists()

