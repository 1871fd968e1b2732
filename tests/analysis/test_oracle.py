"""Oracle results on the tiny simulated world, checked against the ground truth read independently."""

import h5py
import nibabel as nib
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from fmrikit.cli.oracle import main
from fmrikit.analysis.oracle import cluster_scores, fraction_of_oracle, informative_mask, oracle_clusters, oracle_encoding
from fmrikit.data.dataset import read_info
from fmrikit.errors import MissingInputError
from fmrikit.project import preproc_betas_path


def _truth(sim_world, subject):
    with h5py.File(sim_world / "simulation_truth.h5") as f:
        g = f[f"subj{subject:02d}"]
        return g["voxels/ijk"][:], g["responses/noise_free"][:], g["voxel_class"][:]


def test_encoding_oracle_is_the_noise_free_response(project, sim_world, tmp_path):
    path = oracle_encoding(1, tmp_path / "oracle", root=project, seed=3)
    info = read_info(preproc_betas_path(project, 1))
    with h5py.File(path) as f:
        pred, stim, ijk = f["pred"][:], f["stim_id"][:], f["voxels/ijk"][:]
    np.testing.assert_array_equal(stim, np.unique(info.stim_id[info.shared]))
    np.testing.assert_array_equal(ijk, info.ijk)
    truth_ijk, free, _ = _truth(sim_world, 1)
    column = {tuple(v): j for j, v in enumerate(truth_ijk)}
    signal = np.array([tuple(v) in column for v in ijk])
    assert 0.5 < signal.mean() < 1
    cols = [column[tuple(v)] for v in ijk[signal]]
    np.testing.assert_array_equal(pred[:, signal], free[np.ix_(stim, cols)])
    noise = pred[:, ~signal]  # chance: independent values
    assert abs(noise.mean()) < 0.2 and 0.8 < noise.std() < 1.2

    from fmrikit.analysis.evaluate import evaluate_encoding

    record = evaluate_encoding(path, 1, tmp_path / "eval", root=project, flatmap=False)
    assert record["metrics"]["median_r"]["value"] > 0.2


def test_cluster_oracle_recovers_the_true_classes(project, sim_world, tmp_path):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # k-means threads only contend on small problems
        labels = oracle_clusters([1, 2], 8, tmp_path / "clusters", root=project, max_images=40, seed=0)
    for subject in (1, 2):
        info = read_info(preproc_betas_path(project, subject))
        vol = np.asarray(nib.load(tmp_path / f"clusters/sub-0{subject}_desc-clusters_dseg.nii.gz").dataobj)
        np.testing.assert_array_equal(vol[tuple(info.ijk.T)], labels[subject])
        assert vol.sum() == labels[subject].sum() and labels[subject].min() >= 1 and labels[subject].max() == 8
        true = _truth(sim_world, subject)[2][tuple(info.ijk.T)]
        assert ((labels[subject] == 8) == (true == 0)).all()  # the oracle knows which voxels carry signal
        inside = true > 0
        assert adjusted_rand_score(true[inside], labels[subject][inside]) > 0.2
    assert (tmp_path / "clusters/oracle.json").is_file()


def test_mask_and_command_line(project, sim_world, tmp_path, capsys):
    assert informative_mask(sim_world, 2) == sim_world / "truth/subj02/informative_mask.nii.gz"
    with pytest.raises(MissingInputError):
        informative_mask(tmp_path, 1)
    assert main(["mask", "--nsd-root", str(sim_world), "--subject", "1"]) == 0
    assert capsys.readouterr().out.strip().endswith("truth/subj01/informative_mask.nii.gz")
    assert main(["encoding", "--subject", "1", "--root", str(project), "--out", str(tmp_path / "e")]) == 0
    assert (tmp_path / "e/sub-01_pred.h5").is_file()
    assert main(["encoding", "--subject", "3", "--root", str(project), "--out", str(tmp_path / "f")]) == 2


def test_fraction_of_oracle_scores_only_voxels_with_signal():
    r = np.array([0.4, 0.1, 0.3, np.nan, 0.2, 0.9])
    oracle = np.array([0.8, 0.5, 0.3, 0.5, -0.1, 0.9])
    nc = np.array([50.0, 20.0, 6.0, 50.0, 50.0, 4.0])
    # kept: 0.5, 0.2, 1.0 (NaN r, a negative oracle r and NC <= 5 % are dropped)
    found = fraction_of_oracle(r, oracle, nc)
    assert found["n_voxels"] == 3 and found["median"] == pytest.approx(0.5)
    assert found["p75"] == pytest.approx(np.percentile([0.5, 0.2, 1.0], 75))


def test_cluster_scores_by_hand():
    # subject 1: classes 2, 2, 3, 3, 1 (1 = early); subject 2: classes 3, 2, 2
    labels = [np.array([5, 5, 7, 5, 0]), np.array([7, 5, 5])]
    classes = [np.array([2, 2, 3, 3, 1]), np.array([3, 2, 2])]
    found = cluster_scores(labels, classes, [2, 3], early=[classes[0] == 1, classes[1] == 1],
                           early_truth=[np.array([4]), np.array([], int)])
    cat_labels, cat_classes = [5, 5, 7, 5, 7, 5, 5], [2, 2, 3, 3, 3, 2, 2]
    assert found["ari_category"] == pytest.approx(adjusted_rand_score(cat_classes, cat_labels))
    assert found["purity"] == pytest.approx(6 / 7)  # label 5: four 2s and one 3; label 7: two 3s
    # class 2 -> 5 in both; class 3 -> tie 7/5 in subject 1 (bincount argmax takes 5), 7 in subject 2
    assert found["agreement"] == pytest.approx(0.5) and found["n_category"] == 7
