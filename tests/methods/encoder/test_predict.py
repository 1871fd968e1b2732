import json

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from fmrikit.methods.encoder.predict import encode_images
from fmrikit.errors import InputError, OutputExistsError
from fmrikit.features.registry import get_extractor
from fmrikit.methods.encoder.model import UniversalEncoder


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for k in (4, 11, 2):
        Image.fromarray(rng.integers(0, 256, (30, 26, 3), dtype=np.uint8)).save(folder / f"img_stim-{k}.png")
    return folder


def test_predictions_equal_a_direct_forward_pass_and_fill_the_4d_volume(encoder_project, image_dir, tmp_path):
    res = encode_images(image_dir, 1, root=encoder_project, out=tmp_path / "enc", max_flatmaps=0, batch_size=2,
                        device="cpu")
    model = UniversalEncoder.from_pretrained(encoder_project / "models/encoder").eval()
    files = sorted(image_dir.iterdir())
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
    feats = torch.from_numpy(get_extractor("gabor").patches(images).astype(np.float16).astype(np.float32))
    ijk = model.voxel_index["sub-01"].ijk.numpy()
    with torch.no_grad():
        want = model(feats, "sub-01", torch.arange(len(ijk))).numpy()
    with h5py.File(res.out / "sub-01_pred.h5") as f:
        np.testing.assert_allclose(f["pred"][:], want, rtol=1e-4, atol=1e-5)
        assert f["stim_id"][:].tolist() == [11, 2, 4] and f["voxels/ijk"][:].tolist() == ijk.tolist()
    vol = nib.load(res.out / "sub-01_pred.nii.gz")
    data = vol.get_fdata(dtype=np.float32)
    assert data.shape[3] == 3
    np.testing.assert_allclose(data[tuple(ijk.T)], want.T, rtol=1e-4, atol=1e-5)
    outside = np.ones(data.shape[:3], bool)
    outside[tuple(ijk.T)] = False
    assert np.isnan(data[outside]).all()
    sidecar = json.loads((res.out / "encode.json").read_text())
    assert sidecar["parameters"]["n_images"] == 3 and len(sidecar["inputs"]) == 4


def test_shared_images_come_from_the_dataset_with_their_ids(encoder_project, tmp_path):
    res = encode_images(None, 2, shared=True, root=encoder_project, out=tmp_path / "shared", max_flatmaps=1,
                        device="cpu")
    with h5py.File(encoder_project / "sub-02/sub-02_desc-preproc_betas.h5") as f:
        shared = np.unique(f["trials/stim_id"][:][f["trials/shared"][:]])
    with h5py.File(res.out / "sub-02_pred.h5") as f:
        assert f["stim_id"][:].tolist() == shared.tolist()
    assert (res.out / f"sub-02_img-stim-{shared[0]}_pred.png").stat().st_size > 0


def test_bad_requests_write_nothing(encoder_project, image_dir, tmp_path):
    with pytest.raises(InputError):
        encode_images(None, 1, root=encoder_project, out=tmp_path / "a")
    with pytest.raises(InputError):
        encode_images(image_dir, 1, shared=True, root=encoder_project, out=tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(OutputExistsError):
        encode_images(image_dir, 1, root=encoder_project, out=tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"] and not any((tmp_path / "b").iterdir())
