import numpy as np
import pytest
from PIL import Image

from fmrikit.errors import InputError, MissingInputError
from fmrikit.features.image_sets import file_images
from fmrikit.features.registry import get_extractor


def _write(folder, name, shape, seed):
    img = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    Image.fromarray(img).save(folder / name)
    return img


def test_a_folder_of_mixed_sizes_gives_each_image_its_own_features(tmp_path):
    a = _write(tmp_path, "b_stim-7.png", (24, 20), 0)
    b = _write(tmp_path, "a_stim-3.png", (16, 16), 1)
    c = _write(tmp_path, "c_stim-5.png", (24, 20), 2)
    images = file_images(tmp_path)
    assert images.names == ["a_stim-3", "b_stim-7", "c_stim-5"] and images.stim_id.tolist() == [3, 7, 5]
    ext = get_extractor("gabor")
    feats = images.features(np.array([2, 0, 1]), ext)
    assert feats.dtype == np.float16 and feats.shape == (3, *ext.patch_shape)
    for got, img in zip(feats, [c, b, a]):
        want = ext.patches(img[None])[0].astype(np.float16)
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=2e-3, atol=1e-3)
    sub = images.subset(np.array([1]))
    assert sub.names == ["b_stim-7"] and np.array_equal(sub.images([0])[0], a)


def test_single_files_and_bad_paths(tmp_path):
    _write(tmp_path, "cat.png", (8, 8), 0)
    one = file_images(tmp_path / "cat.png")
    assert one.names == ["cat"] and one.stim_id is None
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError):
        file_images(tmp_path / "notes.txt")
    with pytest.raises(MissingInputError):
        file_images(tmp_path / "missing")
