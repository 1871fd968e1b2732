import os

import h5py
import numpy as np
import pytest

from fmrikit.data.dataset import DatasetInfo, read_stimuli
from fmrikit.errors import CorruptFileError, InputError, MissingInputError
from fmrikit.features.cache import cache_path, dataset_features
from fmrikit.features.gabor import GaborExtractor


class Counting(GaborExtractor):
    """A small Gabor extractor that records how many images it featurised."""

    def __init__(self, **kwargs):
        super().__init__(scales=(0, 1), side=32, grid=2, pooled_grid=1, **kwargs)
        self.seen = []

    def pooled(self, images, batch_size=32, device="auto"):
        self.seen.append(len(images))
        return super().pooled(images, batch_size, device)

    def patches(self, images, batch_size=32, device="auto"):
        self.seen.append(len(images))
        return super().patches(images, batch_size, device)


def brick_dataset(tmp_path, n=12) -> DatasetInfo:
    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "stimuli.hdf5", "w") as f:
        f.create_dataset("imgBrick", data=rng.integers(0, 256, (n, 20, 24, 3), dtype=np.uint8))
    return DatasetInfo(path=tmp_path / "ds.h5", subject=1, stim_id=np.arange(n), session=np.ones(n, np.int16),
                       shared=np.zeros(n, bool), ijk=np.zeros((1, 3), np.int32), affine=np.eye(4),
                       volume_shape=(1, 1, 1), stimuli_path=str(tmp_path / "stimuli.hdf5"),
                       stimuli_dataset="imgBrick", pycortex_subject="", pycortex_xfm="", ncsnr=None)


def test_computes_once_and_only_new_ids(tmp_path, monkeypatch):
    monkeypatch.setattr("fmrikit.features.cache.CHUNK", 2)  # several steps and copy blocks
    info, ext, root = brick_dataset(tmp_path), Counting(), tmp_path / "proj"
    ids = np.array([7, 2, 7, 5])
    feats = dataset_features(info, ids, ext, root=root)
    assert ext.seen == [2, 1] and feats.shape == (4, 2 * 24) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats, GaborExtractor(scales=(0, 1), side=32, grid=2, pooled_grid=1)
                                  .pooled(read_stimuli(info, ids)))
    again = dataset_features(info, ids[::-1], ext, root=root)
    assert ext.seen == [2, 1]
    np.testing.assert_array_equal(again, feats[::-1])
    more = dataset_features(info, np.array([0, 5, 11, 2]), ext, root=root)
    assert ext.seen == [2, 1, 2]  # ids 0 and 11 only
    np.testing.assert_array_equal(more[[1, 3]], feats[[3, 1]])
    path = cache_path(info, ext, root=root)
    assert path.parent == root / "features" and path.name.startswith("gabor-") and len(path.stem) == 6 + 16
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["stim_id"][:], [0, 2, 5, 7, 11])
        assert f["pooled"].dtype == np.float32 and f.attrs["kind"] == "pooled"
    assert [p.name for p in (root / "features").iterdir()] == [path.name]  # no temporary leftovers


def test_patches_float16_and_other_configs_get_other_files(tmp_path):
    info, ext, root = brick_dataset(tmp_path), Counting(), tmp_path / "proj"
    ids = np.array([3, 1, 3])
    patches = dataset_features(info, ids, ext, "patches", root=root)
    assert patches.shape == (3, 2, 4, 24) and patches.dtype == np.float16
    np.testing.assert_allclose(patches, ext.patches(read_stimuli(info, ids)), rtol=1e-3, atol=1e-4)
    with h5py.File(cache_path(info, ext, "patches", root=root)) as f:
        assert f["patches"].dtype == np.float16
    other = Counting(n_orientations=4)
    dataset_features(info, ids, other, "patches", root=root)
    assert other.seen == [2]
    assert len(list((root / "features").glob("gabor-*.h5"))) == 2
    dataset_features(info, ids, ext, "pooled", root=root)
    assert len(list((root / "features").glob("gabor-*.h5"))) == 3


class OnePass(Counting):
    """Both kinds from one call, as EfficientNet-Lite0 gives them."""

    one_pass = True

    def pooled_and_patches(self, images, batch_size=32, device="auto"):
        self.seen.append(("both", len(images)))
        plain = GaborExtractor(scales=(0, 1), side=32, grid=2, pooled_grid=1)
        return plain.pooled(images), plain.patches(images)


def test_one_pass_extractor_fills_both_kinds_once(tmp_path, monkeypatch):
    monkeypatch.setattr("fmrikit.features.cache.CHUNK", 2)
    info, ext, root = brick_dataset(tmp_path), OnePass(), tmp_path / "proj"
    plain = GaborExtractor(scales=(0, 1), side=32, grid=2, pooled_grid=1)
    dataset_features(info, np.array([4, 1]), ext, "patches", root=root)  # patches of 1 and 4 only
    pooled = dataset_features(info, np.array([9, 1, 6]), ext, "pooled", root=root)
    assert ext.seen == [("both", 2), ("both", 2)]  # 1 and 4 (pooled rows too); then 6 and 9 only
    np.testing.assert_array_equal(pooled, plain.pooled(read_stimuli(info, np.array([9, 1, 6]))))
    ids = np.array([6, 4, 9, 1])
    patches = dataset_features(info, ids, ext, "patches", root=root)
    assert len(ext.seen) == 2  # the pooled call filled the patches of 6 and 9 and kept those of 1 and 4
    np.testing.assert_allclose(patches, plain.patches(read_stimuli(info, ids)), rtol=1e-3, atol=1e-4)
    with h5py.File(cache_path(info, ext, "patches", root=root)) as f:
        np.testing.assert_array_equal(f["stim_id"][:], [1, 4, 6, 9])
    assert sorted(p.name for p in (root / "features").iterdir()) == sorted(
        cache_path(info, ext, k, root=root).name for k in ("pooled", "patches"))  # no temporary leftovers


def test_changed_source_is_a_new_cache(tmp_path):
    info, ext, root = brick_dataset(tmp_path), Counting(), tmp_path / "proj"
    before = cache_path(info, ext, root=root)
    st = os.stat(info.stimuli_path)
    os.utime(info.stimuli_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache_path(info, ext, root=root) != before


def test_folder_source(tmp_path):
    from tests.data.test_read_stimuli import folder_dataset

    info, images = folder_dataset(tmp_path)
    ext = Counting()
    feats = dataset_features(info, np.array([12, 10]), ext, root=tmp_path / "proj")
    np.testing.assert_array_equal(feats, ext.pooled(np.stack([images[12], images[10]])))


def test_errors(tmp_path):
    info, ext, root = brick_dataset(tmp_path), Counting(), tmp_path / "proj"
    with pytest.raises(InputError, match="kind"):
        dataset_features(info, np.array([1]), ext, "tokens", root=root)
    with pytest.raises(InputError):
        dataset_features(info, np.array([], dtype=int), ext, root=root)
    with pytest.raises(MissingInputError, match="id 99"):
        dataset_features(info, np.array([1, 99]), ext, root=root)
    assert not cache_path(info, ext, root=root).exists()  # a failed call leaves no file
    path = cache_path(info, ext, root=root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("stim_id", data=[1])
        f.create_dataset("pooled", data=np.zeros((1, 48), np.float32))
        f.attrs["config"] = "{}"
    with pytest.raises(CorruptFileError, match="delete it"):
        dataset_features(info, np.array([1]), ext, root=root)
