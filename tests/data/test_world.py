"""Proof that the simulated world is right, computed independently (numpy, scipy, scikit-learn) from the
NSD files it writes: pixels are linearly decodable from early visual cortex, reliability looks like NSD's,
category regions of two subjects overlap, noise has the configured smoothness, pRFs grow with eccentricity."""

import h5py
import nibabel as nib
import numpy as np
import pytest
import scipy.io
import scipy.sparse
from scipy import ndimage, stats
from scipy.special import ndtr
from typer.testing import CliRunner

from fmrikit.data.simulate import simulate
from fmrikit.data.world.config import SimulationConfig

CONFIG = dict(n_subjects=2, sessions=[3], trials_per_session=200, runs_per_session=4, n_shared=40, image_size=32,
              formats=["hdf5"], seed=5)
#: A small world with less smooth noise, written with the library; the CLI writes its noise-free twin.
SMALL = dict(n_subjects=2, sessions=[1, 2], trials_per_session=60, runs_per_session=3, n_shared=4, image_size=16,
             formats=["hdf5"], seed=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("world") / "nsd", SimulationConfig(**CONFIG))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("small") / "nsd", SimulationConfig(**SMALL, noise_fwhm=1.0))


def _design(root):
    d = scipy.io.loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    return d["masterordering"].ravel().astype(int), d["subjectim"].astype(int), d["sharedix"].ravel().astype(int)


def _betas(root, subject, ijk):
    """z-scored betas (per session) of the voxels ``ijk`` from the HDF5 session files, and each trial's 73k id."""
    folder = root / f"nsddata_betas/ppdata/subj{subject:02d}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    sessions = []
    for path in sorted(folder.glob("betas_session*.hdf5")):
        with h5py.File(path) as f:
            tzyx = f["betas"][:]
        x = tzyx[:, ijk[:, 2], ijk[:, 1], ijk[:, 0]].astype(np.float32) / 300
        sessions.append((x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1))
    x = np.concatenate(sessions)
    master, subjectim, _ = _design(root)
    return x, subjectim[subject - 1, master[:len(x)] - 1]


def _average(x, ids):
    """Betas averaged over each image's trials: (images, (n_images, n_voxels))."""
    images, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    mean = scipy.sparse.csr_matrix((1 / counts[inverse], (inverse, np.arange(len(ids)))))
    return images, mean @ x


def _roi(root, subject, name):
    return np.asarray(nib.load(root / f"nsddata/ppdata/subj{subject:02d}/func1pt8mm/roi/{name}.nii.gz").dataobj)


def _two_way(truth, pred):
    """Two-way identification as the field computes it (ties fail), chance 0.5."""
    n = len(truth)
    r = np.corrcoef(truth, pred)[:n, n:]
    return np.mean([(r[:, j] < r[j, j]).sum() / (n - 1) for j in range(n)])


def test_pixels_decodable_from_early_visual_betas(world):
    """A plain ridge from V1-hV4 betas to 32 x 32 RGB pixels identifies held-out images far above chance."""
    from sklearn.linear_model import RidgeCV

    ijk = np.argwhere((_roi(world, 1, "prf-visualrois") >= 1) & (_roi(world, 1, "prf-visualrois") <= 7))
    images, avg = _average(*_betas(world, 1, ijk))
    with h5py.File(world / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5") as f:
        pixels = f["imgBrick"][:][images - 1].reshape(len(images), -1) / 255.0
    test = np.isin(images, _design(world)[2])
    model = RidgeCV(alphas=np.logspace(1, 5, 9)).fit(avg[~test], pixels[~test])
    assert _two_way(pixels[test], model.predict(avg[test])) > 0.8
    shuffled = RidgeCV(alphas=np.logspace(1, 5, 9)).fit(avg[~test], np.random.default_rng(0).permutation(pixels[~test]))
    assert _two_way(pixels[test], shuffled.predict(avg[test])) < 0.65


def test_ncsnr_in_nsdgeneral_like_nsd(world):
    """Most nsdgeneral voxels are reliable; 3-trial noise ceilings run from near 0 to about 70 %."""
    for subject in (1, 2):
        folder = world / f"nsddata_betas/ppdata/subj{subject:02d}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
        ncsnr = nib.load(folder / "ncsnr.nii.gz").get_fdata()[_roi(world, subject, "nsdgeneral") > 0]
        nc = 100 * ncsnr ** 2 / (ncsnr ** 2 + 1 / 3)
        assert 20 < np.median(nc) < 60
        assert 0.55 < (nc >= 10).mean() < 0.95
        assert np.percentile(nc, 5) < 5
        assert 55 < np.percentile(nc, 99.5) < 85


def test_category_voxels_overlap_across_subjects(world):
    """Face-, scene- and animal-selective voxels (t > 5, preferred category vs the rest) of two subjects overlap
    on the shared anatomy (nsdgeneral, drawn on the template)."""
    brain = np.argwhere(_roi(world, 1, "nsdgeneral") > 0)
    with h5py.File(world / "simulation_truth.h5") as f:
        category = f["images/category"][:]
        names = list(f.attrs["categories"])
    selective = {}
    for subject in (1, 2):
        images, avg = _average(*_betas(world, subject, brain))
        cat = category[images - 1]
        for name in ("face", "scene", "animal"):
            c = names.index(name)
            selective[subject, name] = stats.ttest_ind(avg[cat == c], avg[cat != c]).statistic > 5
    for name in ("face", "scene", "animal"):
        a, b = selective[1, name], selective[2, name]
        assert a.sum() > 50 and b.sum() > 50
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.3


@pytest.mark.parametrize("name, fwhm", [("world", 2.0), ("small", 1.0)])
def test_noise_smoothness_is_the_configured_one(request, name, fwhm):
    """Residuals around each image's mean: the adjacent-voxel correlation rho gives FWHM = sqrt(-2 ln 2 / ln rho)."""
    root = request.getfixturevalue(name)
    mask = np.asarray(nib.load(root / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz").dataobj) > 0
    mask[:, :, :12] = mask[:, :, 18:] = False  # six slices are plenty
    ijk = np.argwhere(mask)
    x, ids = _betas(root, 1, ijk)
    images, means = _average(x, ids)
    inverse, counts = np.searchsorted(images, ids), np.unique(ids, return_counts=True)[1]
    residual = (x - means[inverse])[counts[inverse] >= 2]
    residual -= residual.mean(1, keepdims=True)  # the global per-trial component
    index = np.full(mask.shape, -1)
    index[tuple(ijk.T)] = np.arange(len(ijk))
    for axis in (0, 1):
        step = np.eye(3, dtype=int)[axis]
        inside = np.all(ijk + step < mask.shape, axis=1)
        j = np.full(len(ijk), -1)
        j[inside] = index[tuple((ijk[inside] + step).T)]
        a, b = residual[:, j >= 0], residual[:, j[j >= 0]]
        rho = np.median(((a - a.mean(0)) * (b - b.mean(0))).mean(0) / (a.std(0) * b.std(0)))
        assert np.sqrt(-2 * np.log(2) / np.log(rho)) == pytest.approx(fwhm, abs=0.2)


def test_prf_size_grows_with_eccentricity(world):
    """A grid-search pRF fit (Gaussian pooling of contrast energy, square-root compression) of the noise-free
    responses gives sizes that grow with eccentricity in every early area, and along the hierarchy."""
    with h5py.File(world / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5") as f:
        lum = f["imgBrick"][:].astype(np.float64) @ [0.299, 0.587, 0.114] / 255
    with h5py.File(world / "simulation_truth.h5") as f:
        responses, ijk = f["subj01/responses/noise_free"][:], f["subj01/voxels/ijk"][:]
    label = _roi(world, 1, "prf-visualrois")[tuple(ijk.T)]
    n, size, grid = len(lum), lum.shape[1], 32
    band = lum - ndimage.gaussian_filter(lum, (0, size / 40, size / 40))
    energy = ndimage.gaussian_filter(band ** 2, (0, size / 64, size / 64))
    energy = energy.reshape(n, grid, size // grid, grid, size // grid).mean((2, 4)).reshape(n, -1)
    edges = np.linspace(-4.2, 4.2, grid + 1)  # the image spans 8.4 deg
    x, y, s = (v.ravel() for v in np.meshgrid(np.arange(-3.5, 3.6, 0.5), np.arange(-3.5, 3.6, 0.5),
                                              [0.25, 0.4, 0.6, 0.9, 1.3, 1.8, 2.5], indexing="ij"))
    wx = np.diff(ndtr((edges - x[:, None]) / s[:, None]), axis=1)
    wy = np.diff(ndtr((edges - y[:, None]) / s[:, None]), axis=1)[:, ::-1]  # image rows run downwards
    pred = np.sqrt(energy @ (wy[:, :, None] * wx[:, None, :]).reshape(len(x), -1).T)
    early = label > 0
    corr = stats.zscore(pred).T @ stats.zscore(responses[:, early]) / n
    best, fit = corr.argmax(0), corr.max(0)
    ecc, sigma, area = np.hypot(x[best], y[best]), s[best], (label[early] + 1) // 2  # 1 V1, 2 V2, 3 V3, 4 hV4
    central = []
    for a in (1, 2, 3, 4):
        sel = (area == a) & (fit > 0.3) & (ecc < 3.5)
        assert sel.sum() > 30
        assert stats.spearmanr(ecc[sel], sigma[sel]).statistic > 0.25
        central.append(np.median(sigma[sel & (ecc > 1) & (ecc < 3)]))
    assert central[0] < central[2] < central[3]


def test_noise_free_tree_is_the_same_world(small, tmp_path):
    """``fmrikit simulate --noise-free`` writes the same design, stimuli and ROIs, with betas that are the
    noise-free responses plus each voxel's constant mean response, and nothing else."""
    from fmrikit.cli.main import app

    args = ["simulate", "--out", str(tmp_path / "free"), "--subjects", "2", "--sessions", "1,2", "--trials-per-session",
            "60", "--runs", "3", "--shared", "4", "--image-size", "16", "--format", "hdf5", "--seed", "1",
            "--noise-free"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    free = tmp_path / "free"
    for name in ("masterordering", "subjectim", "sharedix", "stimpattern"):
        np.testing.assert_array_equal(scipy.io.loadmat(small / "nsddata/experiments/nsd/nsd_expdesign.mat")[name],
                                      scipy.io.loadmat(free / "nsddata/experiments/nsd/nsd_expdesign.mat")[name])
    for rel, dataset in (("nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "imgBrick"),
                         ("simulation_truth.h5", "subj01/responses/noise_free")):
        with h5py.File(small / rel) as a, h5py.File(free / rel) as b:
            np.testing.assert_array_equal(a[dataset][:], b[dataset][:])
    for roi in ("nsdgeneral", "floc-faces", "prf-visualrois"):
        np.testing.assert_array_equal(_roi(small, 2, roi), _roi(free, 2, roi))
    with h5py.File(free / "simulation_truth.h5") as f:
        responses, ijk = f["subj02/responses/noise_free"][:], f["subj02/voxels/ijk"][:]
    folder = free / "nsddata_betas/ppdata/subj02/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    master, subjectim, _ = _design(free)
    brain = np.asarray(nib.load(free / "nsddata/ppdata/subj02/func1pt8mm/brainmask.nii.gz").dataobj) > 0
    outside = brain.copy()
    outside[tuple(ijk.T)] = False
    for session in (1, 2):
        with h5py.File(folder / f"betas_session{session:02d}.hdf5") as f:
            tzyx = f["betas"][:]
        ids = subjectim[1, master[60 * (session - 1):60 * session] - 1]
        offset = tzyx[:, ijk[:, 2], ijk[:, 1], ijk[:, 0]] / 300 - responses[ids - 1]
        assert np.abs(offset - offset.mean(0)).max() <= 1 / 300  # int16 rounding
        assert (tzyx.std(0)[np.transpose(outside, (2, 1, 0))] == 0).all()  # no noise anywhere

    # preprocessing keeps the nsdgeneral voxels that carry signal (all but the few whose response is below
    # the int16 resolution in so few trials); the others are constant
    from fmrikit.data.dataset import read_info
    from fmrikit.data.preprocess import preprocess_nsd

    kept = {tuple(v) for v in read_info(preprocess_nsd(free, 2, root=tmp_path / "p", flatmap=False).betas).ijk}
    general = _roi(free, 2, "nsdgeneral") > 0
    signal = np.zeros_like(general)
    signal[tuple(ijk.T)] = True
    expected = {tuple(v) for v in np.argwhere(general & signal)}
    assert kept <= expected and len(expected - kept) <= 0.01 * len(expected)


def test_shared_images_seen_three_times_by_every_subject(small):
    """Subjects with fewer sessions still see each shared image three times (they are the test set)."""
    import pandas as pd

    master, subjectim, shared = _design(small)
    for subject, n_sess in ((1, 1), (2, 2)):
        shown = subjectim[subject - 1, master[:60 * n_sess] - 1]
        assert all((shown == i).sum() == 3 for i in shared)
    info = pd.read_csv(small / "nsddata/experiments/nsd/nsd_stim_info_merged.csv", index_col=0)
    assert (info.loc[shared - 1, "subject1_rep2"] > 0).all()


def test_truth_reader(world, tmp_path):
    from fmrikit.data.world.truth import read_noise_free, read_truth
    from fmrikit.errors import DataValueError, MissingInputError

    truth = read_truth(world, 2)
    with h5py.File(world / "simulation_truth.h5") as f:
        g = f["subj02"]
        assert {tuple(v) for v in truth.ijk} == {tuple(v) for v in np.argwhere(g["informative_mask"][:])}
        np.testing.assert_allclose(truth.ncsnr, g["ncsnr"][:][tuple(truth.ijk.T)], rtol=1e-5)
        free = g["responses/noise_free"][:]
    early = np.isin(np.array(truth.areas)[truth.area], ["V1", "V2", "V3", "hV4", "V3AB"])
    assert early.any() and (~early).any()
    assert np.isfinite(truth.prf[early]).all() and np.isnan(truth.prf[~early]).all()
    assert np.isnan(truth.semantic[early]).all() and np.isfinite(truth.semantic[~early]).all()
    assert truth.semantic.shape[1] == len(truth.description_names)
    np.testing.assert_allclose(truth.prf_size[early], truth.prf[early, 2] / np.sqrt(truth.prf[early, 3]))
    # responses of chosen voxels and images, in the order asked, zero where a voxel has no signal
    outside = np.array([[0, 0, 0]])
    picked, has = read_noise_free(world, 2, np.array([5, 1, 5]), np.vstack([truth.ijk[[7, 3]], outside]))
    np.testing.assert_array_equal(has, [True, True, False])
    np.testing.assert_array_equal(picked[:, :2], free[[5, 1, 5]][:, [7, 3]])
    assert (picked[:, 2] == 0).all()
    with pytest.raises(MissingInputError, match="subject"):
        read_truth(world, 3)
    with pytest.raises(MissingInputError, match="ground truth"):
        read_truth(tmp_path, 1)
    with h5py.File(tmp_path / "simulation_truth.h5", "w") as f:
        f.attrs["world_version"] = 1
    with pytest.raises(DataValueError, match="version"):
        read_truth(tmp_path, 1)
