import dataclasses

import h5py
import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from fmrikit.data.dataset import read_info, read_stimuli
from fmrikit.data.preprocess import preprocess_files, preprocess_nsd
from fmrikit.errors import DataValueError, MissingInputError

GRID = (5, 6, 7)


@pytest.fixture(scope="module")
def brick_info(sim_world, tmp_path_factory):
    res = preprocess_nsd(sim_world, 2, root=tmp_path_factory.mktemp("proj"), flatmap=False)
    return read_info(res.betas)


def folder_dataset(tmp_path, sizes=((10, 12),) * 3):
    """A THINGS-like dataset: one float NIfTI volume per trial, stimuli in a folder of PNG files."""
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(np.ones(GRID, np.int16), np.eye(4)), tmp_path / "mask.nii.gz")
    (tmp_path / "img").mkdir()
    images = {}
    for i, (h, w) in enumerate(sizes):
        images[i] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(images[i]).save(tmp_path / "img" / f"pic{i}.png")
    rows = []
    for t in range(4):
        nib.save(nib.Nifti1Image(rng.normal(size=GRID + (1,)).astype(np.float32), np.eye(4)), tmp_path / f"t{t}.nii.gz")
        stim = [2, 0, 1, 2][t]
        rows.append(f"t{t}.nii.gz\t0\t1\t{stim + 10}\t0\tpic{stim}.png")
    (tmp_path / "trials.tsv").write_text("file\tindex_in_file\tsession\tstimulus_id\tshared\timage_file\n"
                                         + "\n".join(rows) + "\n")
    res = preprocess_files(sorted(tmp_path.glob("t*.nii.gz")), tmp_path / "trials.tsv", 1,
                           mask=tmp_path / "mask.nii.gz", images=tmp_path / "img", root=tmp_path / "proj",
                           flatmap=False)
    return read_info(res.betas), {i + 10: im for i, im in images.items()}


def test_brick_rows_in_order_with_repeats(brick_info):
    assert brick_info.stimuli_dataset == "imgBrick"
    ids = np.array([brick_info.stim_id[3], brick_info.stim_id[0], brick_info.stim_id[3], 0])
    got = read_stimuli(brick_info, ids)
    with h5py.File(brick_info.stimuli_path) as f:
        want = np.stack([f["imgBrick"][i] for i in ids])
    assert got.dtype == np.uint8 and got.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(got, want)
    assert read_stimuli(brick_info, np.array([], dtype=np.int64)).shape == (0, 32, 32, 3)


def test_brick_errors(brick_info, tmp_path):
    with h5py.File(brick_info.stimuli_path) as f:
        n = f["imgBrick"].shape[0]
    with pytest.raises(MissingInputError, match=f"ids 0 to {n - 1}"):
        read_stimuli(brick_info, np.array([0, n]))
    gone = dataclasses.replace(brick_info, stimuli_path=str(tmp_path / "nsd_stimuli.hdf5"))
    with pytest.raises(MissingInputError, match="nsd_stimuli.hdf5"):
        read_stimuli(gone, np.array([0]))
    with pytest.raises(DataValueError):
        read_stimuli(brick_info, np.array([0.5]))


def test_folder_source(tmp_path):
    info, images = folder_dataset(tmp_path)
    assert info.stimuli_dataset == ""
    got = read_stimuli(info, np.array([12, 10, 12, 11]))
    np.testing.assert_array_equal(got, np.stack([images[12], images[10], images[12], images[11]]))
    with pytest.raises(MissingInputError, match="id 3"):
        read_stimuli(info, np.array([10, 3]))
    (tmp_path / "img" / "pic1.png").unlink()
    with pytest.raises(MissingInputError, match="pic1.png"):
        read_stimuli(info, np.array([11]))
    with pytest.raises(MissingInputError, match="img"):
        read_stimuli(dataclasses.replace(info, stimuli_path=str(tmp_path / "img-gone")), np.array([10]))


def test_folder_images_of_different_sizes(tmp_path):
    info, _ = folder_dataset(tmp_path, sizes=((10, 12), (10, 12), (8, 12)))
    assert read_stimuli(info, np.array([10, 11])).shape == (2, 10, 12, 3)
    with pytest.raises(DataValueError, match="differ in size"):
        read_stimuli(info, np.array([10, 12]))
