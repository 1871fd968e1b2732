"""Surface datasets from NSD's fsaverage betas and the Algonauts 2023 layout, against the format itself."""

import json

import h5py
import nibabel as nib
import numpy as np
import pytest

from fmrikit.data.dataset import read_info, require_grid, voxel_columns
from fmrikit.data.surface import preprocess_algonauts, preprocess_nsd_surface, surface_atlas_labels
from fmrikit.errors import DataValueError, GridMismatchError, InputError, MissingInputError
from tests import surface_fixture as fx


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return fx.write_tree(tmp_path_factory.mktemp("surface") / "nsd")


@pytest.fixture(scope="module")
def dataset(tree, tmp_path_factory):
    root = tmp_path_factory.mktemp("surface_project")
    return preprocess_nsd_surface(tree, 1, root=root), root


def test_betas_match_an_independent_reading_of_the_mgh_files(tree, dataset):
    result, root = dataset
    betas, stim, session, shared, hemi, vertex = fx.expected(tree, 1)
    with h5py.File(result.betas) as f:
        np.testing.assert_allclose(f["betas"][:], betas, atol=2e-6)
        np.testing.assert_array_equal(f["trials/stim_id"][:], stim)
        np.testing.assert_array_equal(f["trials/session"][:], session)
        np.testing.assert_array_equal(f["trials/shared"][:], shared)
        np.testing.assert_array_equal(f["vertices/hemi"][:], hemi)
        np.testing.assert_array_equal(f["vertices/index"][:], vertex)
        assert "voxels/ijk" not in f and f.attrs["mesh"] == "fsaverage" and f.attrs["n_vertices"] == fx.N_VERTICES
        nc = np.concatenate([np.asarray(nib.load(tree / f"nsddata_betas/ppdata/subj01/fsaverage/{fx.BETAS}/"
                                                 f"{h}.ncsnr.mgh").dataobj).ravel()[vertex[hemi == k]]
                             for k, h in enumerate(("lh", "rh"))])
        np.testing.assert_allclose(f["vertices/ncsnr"][:], nc)
    info = read_info(result.betas)
    assert info.is_surface and info.affine is None and info.n_mesh_vertices == fx.N_VERTICES
    np.testing.assert_array_equal(info.hemi, hemi)
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["n_vertices"] == len(hemi) and "/ 300" in sidecar["scaling"]
    assert len(sidecar["inputs"]) == 1 + 2 + 2 * fx.SUBJECTS[1]  # design, 2 label files, every session file


def test_mask_and_map_are_gifti_per_hemisphere_with_pictures(dataset):
    result, root = dataset
    sub = root / "sub-01"
    with h5py.File(result.betas) as f:
        hemi, vertex = f["vertices/hemi"][:], f["vertices/index"][:]
    for k, h in enumerate("LR"):
        mask = nib.load(sub / f"sub-01_hemi-{h}_desc-preproc_mask.label.gii")
        assert mask.meta["AnatomicalStructurePrimary"] == ("CortexLeft" if h == "L" else "CortexRight")
        assert np.array_equal(np.nonzero(mask.darrays[0].data)[0], vertex[hemi == k])
        nc = nib.load(sub / f"sub-01_hemi-{h}_desc-preproc_noiseceiling.func.gii").darrays[0].data
        assert np.isfinite(nc).sum() == (hemi == k).sum() and (nc[np.isfinite(nc)] <= 100).all()
    assert result.mask.name == "sub-01_hemi-L_desc-preproc_mask.label.gii"
    assert result.picture.stat().st_size > 0 and (sub / "sub-01_desc-preproc_noiseceiling_inflated.png").is_file()


def test_roi_labels_of_the_fsaverage_atlas(tree, dataset):
    result, _ = dataset
    info = read_info(result.betas)
    labels = surface_atlas_labels(info, "prf-visualrois")
    for k, h in enumerate(("lh", "rh")):
        _, prf = fx.visual_labels(h)
        np.testing.assert_array_equal(labels[info.hemi == k], prf[info.vertex[info.hemi == k]])
    left = surface_atlas_labels(info, "lh.prf-visualrois")
    assert (left[info.hemi == 1] == -1).all() and (left[info.hemi == 0] == labels[info.hemi == 0]).all()
    with pytest.raises(InputError, match="needs a volume dataset"):
        require_grid(info, "an ROI volume")
    from fmrikit.data.rois import roi_columns

    v1 = roi_columns(info, "prf-visualrois", labels=[1])
    assert len(v1) == (labels == 1).sum() > 0


def test_volume_models_and_surface_datasets_do_not_mix(dataset):
    info = read_info(dataset[0].betas)
    assert (voxel_columns(info, info.ijk[[5, 2]], mesh="fsaverage") == [5, 2]).all()
    with pytest.raises(GridMismatchError, match="different spaces"):
        voxel_columns(info, np.array([[1, 2, 0]]), mesh="")


def test_roi_selection_and_refusals(tree, tmp_path):
    lh_only = preprocess_nsd_surface(tree, 2, root=tmp_path, roi="lh.prf-visualrois", labels=[1, 2], flatmap=False)
    info = read_info(lh_only.betas)
    _, prf = fx.visual_labels("lh")
    assert (info.hemi == 0).all() and np.array_equal(info.vertex, np.nonzero(np.isin(prf, [1, 2]))[0])
    assert lh_only.betas.name == "sub-02_roi-lhprfvisualroisl1l2_desc-preproc_betas.h5"
    with pytest.raises(MissingInputError, match="fsaverage ROI file not found"):
        preprocess_nsd_surface(tree, 2, root=tmp_path, roi="floc-faces")
    with pytest.raises(InputError, match="NIfTI ROI needs a volume"):
        preprocess_nsd_surface(tree, 2, root=tmp_path, roi="mask.nii.gz")
    with pytest.raises(MissingInputError, match="session file not found"):
        preprocess_nsd_surface(tree, 2, root=tmp_path, sessions=[3], overwrite=True)


def test_float_betas_are_taken_as_stored_and_vertex_counts_checked(tree, tmp_path):
    bdir = tree / f"nsddata_betas/ppdata/subj02/fsaverage/{fx.BETAS}"
    copy = tmp_path / "nsd"
    import shutil

    shutil.copytree(tree, copy)
    cdir = copy / bdir.relative_to(tree)
    for h in ("lh", "rh"):
        img = nib.load(bdir / f"{h}.betas_session01.mgh")
        nib.save(nib.MGHImage((np.asarray(img.dataobj) / 300).astype(np.float32), np.eye(4)),
                 cdir / f"{h}.betas_session01.mgh")
    a = preprocess_nsd_surface(tree, 2, root=tmp_path / "a", sessions=[1], flatmap=False)
    b = preprocess_nsd_surface(copy, 2, root=tmp_path / "b", sessions=[1], flatmap=False)
    with h5py.File(a.betas) as fa, h5py.File(b.betas) as fb:
        np.testing.assert_allclose(fa["betas"][:], fb["betas"][:], atol=1e-4)
    img = nib.load(cdir / "rh.betas_session02.mgh")
    nib.save(nib.MGHImage(np.array(img.dataobj[:642]), np.eye(4)), cdir / "rh.betas_session02.mgh")
    with pytest.raises(DataValueError, match="differ in shape"):
        preprocess_nsd_surface(copy, 2, root=tmp_path / "c")


def test_algonauts_layout_is_copied_unchanged(tmp_path):
    folder = fx.write_algonauts(tmp_path / "alg")
    result = preprocess_algonauts(folder, 1, root=tmp_path / "proj", flatmap=False)
    info = read_info(result.betas)
    masks = {h: np.load(folder / f"subj01/roi_masks/{h}.all-vertices_fsaverage_space.npy") for h in ("lh", "rh")}
    assert np.array_equal(info.vertex[info.hemi == 1], np.nonzero(masks["rh"])[0])
    train = np.concatenate([np.load(folder / f"subj01/training_split/training_fmri/{h}_training_fmri.npy")
                            for h in ("lh", "rh")], axis=1)
    test = np.concatenate([np.load(folder / f"subj01/test_split/test_fmri/{h}_test_fmri.npy") for h in ("lh", "rh")],
                          axis=1)
    with h5py.File(result.betas) as f:
        np.testing.assert_array_equal(f["betas"][:], np.concatenate([train, test]))
    names = sorted(p.name for p in (folder / "subj01/training_split/training_images").glob("*.png"))
    assert info.stim_id[0] == int(names[0].split("nsd-")[1][:5]) and info.shared.sum() == len(test)
    assert (info.session == 1).all()
    from fmrikit.data.dataset import read_stimuli
    from PIL import Image

    np.testing.assert_array_equal(read_stimuli(info, info.stim_id[:1])[0],
                                  np.asarray(Image.open(folder / "subj01/training_split/training_images" / names[0])))
    sidecar = json.loads(result.sidecar.read_text())
    assert "already z-scored" in sidecar["scaling"] and "averaged over repeats" in sidecar["scaling"]
    v1 = preprocess_algonauts(folder, 1, root=tmp_path / "proj", roi="prf-visualrois", labels=[1], flatmap=False)
    labels = surface_atlas_labels(read_info(v1.betas), "prf-visualrois")
    assert (labels == 1).all()
    with pytest.raises(InputError, match="did you mean 'prf-visualrois'"):
        preprocess_algonauts(folder, 1, root=tmp_path / "proj", roi="prf-visualroi")


def test_surface_masks_and_volume_datasets_refuse_each_other(dataset, tmp_path):
    from fmrikit.data.dataset import DatasetInfo
    from fmrikit.data.surface import surface_mask_columns
    from fmrikit.methods.mindeye.adapt import mask_columns

    result, root = dataset
    info = read_info(result.betas)
    mask = root / "sub-01/sub-01_hemi-R_desc-preproc_mask.label.gii"
    np.testing.assert_array_equal(mask_columns(mask, info), np.arange(info.n_voxels))  # both hemispheres read
    volume = DatasetInfo(path=tmp_path / "v.h5", subject=1, stim_id=np.zeros(0), session=np.zeros(0),
                         shared=np.zeros(0, bool), ijk=np.zeros((3, 3), int), affine=np.eye(4), volume_shape=(7, 8, 9),
                         stimuli_path="", stimuli_dataset="", pycortex_subject="", pycortex_xfm="", ncsnr=None)
    with pytest.raises(InputError, match="a surface mask needs a surface dataset"):
        mask_columns(mask, volume)
    with pytest.raises(InputError, match="NIfTI mask needs a volume dataset"):
        surface_mask_columns(tmp_path / "m.nii.gz", info)
