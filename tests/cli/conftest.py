"""The CLI tests' project: subjects preprocessed and tiny trained models, with good input files beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
from PIL import Image


@dataclass
class World:
    """The battery's project (``root``), the simulated NSD tree it came from, good input files (``files``) and the
    case's own folder (``tmp``)."""

    root: Path
    nsd: Path
    files: Path
    tmp: Path = None

    def __getitem__(self, name: str) -> str:
        return str(self.files / name)


@pytest.fixture(scope="session")
def world(sim_world, tmp_path_factory) -> World:
    """Subjects 1 and 2 preprocessed, then tiny models: the decoder, subject 1's adapted decoder, an encoder, the
    embedded autoencoder and subject 1's CNN latent mapper; and good input files for every command."""
    from fmrikit.data.dataset import read_info
    from fmrikit.data.preprocess import preprocess_nsd
    from fmrikit.engine.settings import SupervisedSettings
    from fmrikit.methods.encoder.runs import pretrain_encoder
    from fmrikit.methods.encoder.settings import EncoderSettings, EncoderSize
    from fmrikit.methods.latent.autoencoder import pretrain_autoencoder
    from fmrikit.methods.latent.settings import AutoencoderSize
    from fmrikit.methods.latent.train import pretrain_latent_mapper
    from fmrikit.methods.mindeye.adapt import adapt_subject
    from fmrikit.methods.mindeye.pretrain import pretrain_decoder
    from fmrikit.methods.mindeye.settings import ModelSize, TrainSettings

    base = tmp_path_factory.mktemp("battery")
    w = World(root=base / "proj", nsd=sim_world, files=base / "files")
    for s in (1, 2):
        preprocess_nsd(sim_world, s, root=w.root, flatmap=False)
    quick = TrainSettings(epochs=1, batch_size=8)
    pretrain_decoder([1, 2], root=w.root, size=ModelSize(hidden=16, n_blocks=1, proj_hidden=16), settings=quick,
                     device="cpu")
    adapt_subject(1, root=w.root, settings=quick, device="cpu")
    pretrain_encoder([1], root=w.root, size=EncoderSize(channels=4, embed_dim=4),
                     settings=EncoderSettings(epochs=1, batch_images=16, voxels_per_image=20), device="cpu")
    pretrain_autoencoder([1, 2], root=w.root, size=AutoencoderSize(image_size=32, channels=(16, 16)),
                         settings=SupervisedSettings(epochs=1, batch_size=32, patience=None), device="cpu")
    pretrain_latent_mapper(1, mapper="cnn", root=w.root, overrides={"epochs": 1, "batch_size": 64}, device="cpu")

    files = w.files
    files.mkdir()
    info = read_info(w.root / "sub-01/sub-01_desc-preproc_betas.h5")
    session = sim_world / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.nii.gz"
    img = nib.load(session)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., :6], img.affine), files / "betas.nii.gz")
    mask = np.zeros(info.volume_shape, np.uint8)
    mask[tuple(info.ijk[:40].T)] = 1
    nib.save(nib.Nifti1Image(mask, info.affine), files / "mask.nii.gz")
    nib.save(nib.Nifti1Image(mask[:-1], info.affine), files / "mask_other_grid.nii.gz")
    (files / "images").mkdir()
    (files / "truth").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        picture = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(picture).save(files / "images" / f"trial-{i}_stim-{i}.png")
        Image.fromarray(picture).save(files / "truth" / f"stim-{i}.png")
    shared = np.unique(info.stim_id[info.shared])
    with h5py.File(files / "pred.h5", "w") as f:
        f["pred"] = rng.normal(size=(len(shared), info.n_voxels)).astype(np.float32)
        f["stim_id"] = shared
        f["voxels/ijk"] = info.ijk
    for name in ("brain.h5", "image.h5"):
        with h5py.File(files / name, "w") as f:
            f["embeddings"] = rng.normal(size=(8, 5)).astype(np.float32)
            f["stim_id"] = np.arange(8)
    (files / "notes.txt").write_text("a user's file\n")
    (files / "folder").mkdir()
    (files / "folder" / "data.csv").write_text("1,2\n")
    (files / "pipeline").mkdir()
    return w


