"""NeuroPictor flatmaps: the sparse operator against pycortex and Pillow, the cache, the store."""

import dataclasses
import os
import pickle
import shutil

import h5py
import numpy as np
import pytest
from PIL import Image

from fmrikit.data.dataset import read_betas, read_info
from fmrikit.data.flatmaps.store import FlatmapStore
from fmrikit.data.flatmaps.operator import crop_operator, flatmap_mapping, resize_weights
from fmrikit.data.flatmaps.cache import flatmap_dataset, read_flatmap_info, read_flatmaps, split_rows, test_flatmaps
from fmrikit.project import flatmap_path
from fmrikit.errors import DataValueError, InputError, MissingInputError
from fmrikit.project import preproc_betas_path
from fmrikit.io.pycortex import FLATMAP_HEIGHT, import_cortex, quiet_pycortex

F16 = dict(rtol=2e-3, atol=2e-3)  # float16 storage: 11-bit mantissa


@pytest.fixture(scope="module")
def root(project):
    """The shared project (nsdgeneral datasets of simulated subjects 1, NIfTI source, and 2, HDF5 source)."""
    return project


@pytest.fixture(scope="module")
def info(root):
    return read_info(preproc_betas_path(root, 1))


@pytest.fixture(scope="module")
def mappings(info):
    return {size: flatmap_mapping(info, size) for size in (64, 48)}


def _pillow_resize(image: np.ndarray, size: int) -> np.ndarray:
    """An independent resampler: Pillow's float ('F') BILINEAR resize."""
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))


def _pycortex_crop(info, values: np.ndarray, bbox) -> np.ndarray:
    """pycortex's own flatmap of one trial (NaN off the dataset's voxels), cropped to ``bbox``."""
    cortex = import_cortex()
    vol = np.full(info.volume_shape, np.nan)
    vol[tuple(info.ijk.T)] = values
    with quiet_pycortex():
        img, _ = cortex.quickflat.make_flatmap_image(
            cortex.Volume(np.ascontiguousarray(np.swapaxes(vol, 0, 2)), "S1", "fullhead"), height=FLATMAP_HEIGHT)
    assert img.shape[0] == FLATMAP_HEIGHT
    r0, r1, c0, c1 = bbox
    return img, img[r0:r1, c0:c1]


def test_operator_matches_pycortex_and_pillow(info, mappings):
    betas = read_betas(info.path, np.array([0, 7, 33]))
    subject, xfm, crop, (h, w), bbox = crop_operator(info, None, None, 0)
    assert (subject, xfm) == ("S1", "fullhead") and bbox == mappings[64].bbox
    for x in betas:
        full, ref = _pycortex_crop(info, x, bbox)
        # un-resized stage: pycortex's nanmean image exactly (float64 both sides)
        np.testing.assert_allclose((crop @ x).reshape(h, w), np.nan_to_num(ref), atol=1e-9)
        # the box holds nearly every covered pixel (only pycortex's stray border pixels fall outside) and is small
        assert np.isfinite(ref).sum() >= 0.99 * np.isfinite(full).sum()
        assert h * w < 0.5 * full.size
        # resized: Pillow on the NaN->0 crop, masked; both float32, so 1e-5 of the range
        for size, m in mappings.items():
            want = _pillow_resize(np.nan_to_num(ref), size) * m.mask
            got = m.to_flatmaps(x[None])[0]
            assert got.shape == (size, size) and got.dtype == np.float32
            np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("n_in,n_out", [(7, 48), (50, 48), (300, 64), (372, 48), (64, 64)])
def test_resize_weights_match_pillow(n_in, n_out):
    rng = np.random.default_rng(n_in)
    image = rng.normal(size=(n_in, 5)).astype(np.float32)
    want = np.asarray(Image.fromarray(image, mode="F").resize((5, n_out), Image.BILINEAR))
    w = resize_weights(n_in, n_out)
    np.testing.assert_allclose(w.sum(1), 1)
    np.testing.assert_allclose(w @ image, want, atol=1e-5)


def test_mask_is_resized_coverage_and_zero_outside(info, mappings):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, info.n_voxels)).astype(np.float32) + 3
    full, ref = _pycortex_crop(info, np.ones(info.n_voxels), mappings[64].bbox)
    for size, m in mappings.items():
        coverage = _pillow_resize(np.isfinite(ref).astype(np.float32), size)
        assert np.array_equal(m.mask, coverage >= 0.5)
        images = m.to_flatmaps(x)
        assert (images[:, ~m.mask] == 0).all()
        assert (images[:, m.mask] > 0).all()  # positive data: every masked pixel samples some voxel
        assert m.matrix.shape == (size * size, info.n_voxels) and m.matrix.dtype == np.float32
        assert (m.matrix.getnnz(1)[~m.mask.ravel()] == 0).all()


def test_round_trip_recovers_smooth_pattern(info, mappings):
    # one voxel that no flatmap pixel samples: a corner of the grid, far from cortex
    info2 = dataclasses.replace(info, ijk=np.concatenate([info.ijk, [[0, 0, 0]]]))
    m = flatmap_mapping(info2, 64)
    ijk = info2.ijk.astype(float)
    pattern = np.stack([ijk @ [1.0, -2.0, 3.0], ijk @ [0.5, 0.0, -1.0]]).astype(np.float32)
    back = m.to_voxels(m.to_flatmaps(pattern))
    assert back.shape == pattern.shape and back.dtype == np.float32
    covered = m.matrix.getnnz(0) > 0
    assert np.array_equal(np.isfinite(back), np.broadcast_to(covered, back.shape))
    assert not covered[-1] and covered.mean() > 0.99
    for a, b in zip(pattern, back):
        assert np.corrcoef(a[covered], b[covered])[0, 1] > 0.95
    # the transpose is column-normalised: a constant image gives the constant back
    np.testing.assert_allclose(m.to_voxels(np.full((1, 64, 64), 2.5))[0, covered], 2.5, rtol=1e-5)


def test_margin_widens_the_box(info, mappings):
    r0, r1, c0, c1 = mappings[48].bbox
    m = flatmap_mapping(info, 48, margin=6)
    assert m.bbox == (max(r0 - 6, 0), min(r1 + 6, FLATMAP_HEIGHT), c0 - 6, c1 + 6)
    assert m.mask.sum() < mappings[48].mask.sum()
    with pytest.raises(InputError, match="margin"):
        flatmap_mapping(info, 48, margin=-1)
    with pytest.raises(InputError, match="size"):
        flatmap_mapping(info, 0)


def test_wrong_shapes_raise(mappings):
    m = mappings[64]
    with pytest.raises(DataValueError, match="do not match"):
        m.to_flatmaps(np.zeros((2, m.n_voxels + 1)))
    with pytest.raises(DataValueError, match="do not match"):
        m.to_voxels(np.zeros((2, 48, 48)))
    with pytest.raises(DataValueError, match="NaN"):
        m.to_flatmaps(np.full((1, m.n_voxels), np.nan))


def _stamp(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def test_cache_built_once_and_read_in_any_order(root, info, mappings):
    path = flatmap_dataset(1, root=root, size=64)
    assert path == flatmap_path(root, 1, size=64) and path.name == "sub-01_desc-preproc_flatmap-64.h5"
    assert path.with_suffix(".json").is_file()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part") or p.name.startswith(".staging-")]
    stamp = _stamp(path)
    assert flatmap_dataset(1, root=root, size=64) == path and _stamp(path) == stamp  # not rewritten

    fi = read_flatmap_info(path)
    assert fi.size == 64 and fi.subject == 1 and fi.n_trials == info.n_trials
    np.testing.assert_array_equal(fi.stim_id, info.stim_id)
    np.testing.assert_array_equal(fi.shared, info.shared)
    m = fi.mapping
    assert (m.bbox, m.size, m.height, m.pycortex_subject) == (mappings[64].bbox, 64, FLATMAP_HEIGHT, "S1")
    assert (m.matrix != mappings[64].matrix).nnz == 0 and np.array_equal(m.mask, mappings[64].mask)
    with h5py.File(path) as f:
        assert f["flatmaps"].dtype == np.float16 and f["flatmaps"].chunks == (1, 64, 64)
        assert f.attrs["pycortex_xfm"] == "fullhead" and f.attrs["size"] == 64

    rows = np.random.default_rng(1).permutation(info.n_trials)[:25]
    rows[3] = rows[10]  # a repeat
    want = mappings[64].to_flatmaps(read_betas(info.path, rows))
    got = read_flatmaps(path, rows)
    assert got.dtype == np.float32 and got.shape == (25, 64, 64)
    np.testing.assert_allclose(got, want, **F16)
    np.testing.assert_allclose(read_flatmaps(path, np.arange(5, 9)), read_flatmaps(path, np.array([5, 6, 7, 8])))
    with pytest.raises(DataValueError, match="out of range"):
        read_flatmaps(path, np.array([info.n_trials]))

    other = flatmap_dataset(1, root=root, size=48)  # another size: another cache
    assert other != path and read_flatmap_info(other).size == 48 and _stamp(path) == stamp


def test_cache_rebuilt_when_source_changes(root, tmp_path):
    (tmp_path / "sub-01").mkdir()
    for p in preproc_betas_path(root, 1).parent.glob("sub-01_desc-preproc_betas.*"):
        shutil.copy(p, tmp_path / "sub-01" / p.name)
    path = flatmap_dataset(1, root=tmp_path, size=48)
    stamp, before = _stamp(path), read_flatmaps(path, np.array([0, 1]))
    with h5py.File(preproc_betas_path(tmp_path, 1), "r+") as f:
        f["betas"][0] = -f["betas"][0]
    assert flatmap_dataset(1, root=tmp_path, size=48) == path
    assert _stamp(path) != stamp
    after = read_flatmaps(path, np.array([0, 1]))
    np.testing.assert_allclose(after[0], -before[0], **F16)
    np.testing.assert_array_equal(after[1], before[1])
    stamp = _stamp(path)
    flatmap_dataset(1, root=tmp_path, size=48, overwrite=True)
    assert _stamp(path) != stamp


def test_store_reads_two_subjects(root):
    paths = [flatmap_dataset(s, root=root, size=64) for s in (1, 2)]
    infos = [read_flatmap_info(p) for p in paths]
    rows = [split_rows(infos[0], [1])[0], split_rows(infos[1])[0]]
    assert not infos[0].shared[rows[0]].any() and (infos[0].session[rows[0]] == 1).all()
    with FlatmapStore(paths, rows) as store:
        assert len(store) == len(rows[0]) + len(rows[1]) and store.size == 64
        index = np.random.default_rng(2).permutation(len(store))[:30]
        index = np.concatenate([index, [0, len(store) - 1]])
        which = store.subject_of(index)
        np.testing.assert_array_equal(which, (index >= len(rows[0])).astype(int))
        local = np.where(which == 0, index, index - len(rows[0]))
        images = store.read(index)
        for s in (0, 1):
            sel = which == s
            trial = rows[s][local[sel]]
            np.testing.assert_array_equal(images[sel], read_flatmaps(paths[s], trial))
            np.testing.assert_array_equal(store.stim_id(index)[sel], infos[s].stim_id[trial])
        clone = pickle.loads(pickle.dumps(store))  # DataLoader workers: reopens its files
        np.testing.assert_array_equal(clone.read(index[:4]), images[:4])
        clone.close()


def test_store_averages_the_repeats_of_each_image(root):
    paths = [flatmap_dataset(s, root=root, size=64) for s in (1, 2)]
    infos = [read_flatmap_info(p) for p in paths]
    rows = [split_rows(i)[0] for i in infos]
    with FlatmapStore(paths, rows, average_repeats=True) as store:
        ids = [np.unique(infos[s].stim_id[rows[s]]) for s in (0, 1)]
        assert len(store) == len(ids[0]) + len(ids[1])
        assert np.bincount([len(np.nonzero(infos[0].stim_id[rows[0]] == i)[0]) for i in ids[0]]).argmax() > 1
        index = np.array([len(store) - 1, 0, 3, len(ids[0]) + 2, 3])
        np.testing.assert_array_equal(store.stim_id(index), [ids[1][-1], ids[0][0], ids[0][3], ids[1][2],
                                                             ids[0][3]])
        got = store.read(index)
        for k, (s, i) in enumerate([(1, -1), (0, 0), (0, 3), (1, 2), (0, 3)]):
            trials = rows[s][infos[s].stim_id[rows[s]] == ids[s][i]]
            np.testing.assert_allclose(got[k], read_flatmaps(paths[s], trials).mean(0), rtol=1e-6, atol=1e-6)


def test_split_rows_and_test_flatmaps(root):
    path = flatmap_dataset(1, root=root, size=64)
    fi = read_flatmap_info(path)
    train, shared = split_rows(fi, None)
    assert set(train) | set(shared) == set(range(fi.n_trials)) and not set(train) & set(shared)
    with pytest.raises(MissingInputError, match="sessions"):
        split_rows(fi, [1, 9])
    ids, images = test_flatmaps(path)
    stim = fi.stim_id[shared]
    np.testing.assert_array_equal(ids, np.unique(stim))
    all_shared = read_flatmaps(path, shared)
    for k in (0, len(ids) - 1):
        np.testing.assert_allclose(images[k], all_shared[stim == ids[k]].mean(0), rtol=1e-5, atol=1e-6)
    assert (stim[:, None] == ids).sum(0).max() > 1  # some images were repeated


def test_missing_inputs(root, tmp_path, info):
    with pytest.raises(MissingInputError, match="fmrikit preprocess --subject 3"):
        flatmap_dataset(3, root=root, size=48)
    (tmp_path / "sub-01").mkdir()
    copy = preproc_betas_path(tmp_path, 1)
    shutil.copy(preproc_betas_path(root, 1), copy)
    with h5py.File(copy, "r+") as f:
        f.attrs["pycortex_subject"], f.attrs["pycortex_xfm"] = "", ""
    with pytest.raises(MissingInputError, match="pycortex") as err:
        flatmap_dataset(1, root=tmp_path, size=48)
    assert "--pycortex-subject" in str(err.value)
    assert [p.name for p in (tmp_path / "sub-01").iterdir()] == [copy.name]  # nothing written
    # passing them works, and the cache then serves calls that do not pass them
    path = flatmap_dataset(1, root=tmp_path, size=48, pycortex_subject="S1", pycortex_xfm="fullhead")
    assert read_flatmap_info(path).mapping.pycortex_xfm == "fullhead"
    stamp = _stamp(path)
    assert flatmap_dataset(1, root=tmp_path, size=48) == path and _stamp(path) == stamp


def test_alignment_of_a_subject_with_itself_is_perfect_and_two_subjects_share_their_areas(root, mappings, sim_world):
    from fmrikit.data.flatmaps.alignment import flatmap_alignment
    from fmrikit.data.world.truth import read_noise_free

    infos = [read_info(preproc_betas_path(root, s)) for s in (1, 2)]
    maps = [mappings[64], flatmap_mapping(infos[1], 64)]
    stim = np.unique(infos[0].stim_id[infos[0].shared])
    with pytest.raises(InputError, match="two or more"):
        flatmap_alignment(sim_world, [1], maps[:1], stim)
    res = flatmap_alignment(sim_world, [1, 2], maps, stim, max_shift=1)
    pair = res["sub-01~sub-02"]
    assert set(pair["response_r_by_shift"]) == {f"{dy},{dx}" for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert pair["area_agreement"] > 0.6 and pair["area_agreement"] > 2 * pair["area_agreement_chance"]
    assert pair["best_shift"] == [0, 0] and pair["response_r"] > 0.5 and pair["prf_distance_deg"] < 1.0
    assert res["mean"]["area_agreement"] == pair["area_agreement"] and res["n_images"] == len(stim)
    # the same-pixel correlation by hand: numpy on the two subjects' noise-free maps
    flats = []
    for s, m in zip((1, 2), maps):
        resp, _ = read_noise_free(sim_world, s, stim, m.ijk)
        flats.append(np.asarray(m.matrix @ resp.T).T.reshape(len(stim), 64, 64))
    pixels = np.argwhere(maps[0].mask & maps[1].mask)
    r = [np.corrcoef(flats[0][:, y, x], flats[1][:, y, x])[0, 1] for y, x in pixels[::37]]
    assert np.nanmedian(r) == pytest.approx(pair["response_r"], abs=0.1)
    self_pair = flatmap_alignment(sim_world, [1, 1], [maps[0], maps[0]], stim, max_shift=1)["sub-01~sub-01"]
    assert self_pair["area_agreement"] == 1.0 and self_pair["prf_distance_deg"] == 0.0
    assert self_pair["response_r"] == pytest.approx(1.0) and self_pair["best_shift"] == [0, 0]
