"""The embedded autoencoder: trained on training stimuli only, saved in diffusers' format, latents of unit sd."""

import json

import h5py
import numpy as np
import pytest

from fmrikit.data.dataset import read_info, read_stimuli
from fmrikit.errors import InputError, OutputExistsError
from fmrikit.diffusion import encode_images, latent_shape, load_autoencoder
from fmrikit.methods.latent.autoencoder import pretrain_autoencoder
from fmrikit.methods.latent.settings import AutoencoderSize


def test_saved_as_a_diffusers_folder_with_unit_scaled_latents(project, autoencoder):
    vae, record = load_autoencoder(autoencoder)
    assert record["class"] == "AutoencoderKL" and (autoencoder / "diffusion_pytorch_model.safetensors").is_file()
    assert latent_shape(vae, 32) == (4, 16, 16)
    run = json.loads((autoencoder / "run.json").read_text())
    ids, test = set(), set()
    for s in (1, 2):  # the shared (test) images of every subject are never trained on
        with h5py.File(project / f"sub-0{s}/sub-0{s}_desc-preproc_betas.h5") as f:
            stim, shared = f["trials/stim_id"][:], f["trials/shared"][:]
        ids |= set(stim.tolist())
        test |= set(stim[shared].tolist())
    train_ids = np.array(sorted(ids - test))
    assert run["n_train_images"] + run["n_val_images"] == len(train_ids)
    z = encode_images(vae, read_stimuli(read_info(project / "sub-01/sub-01_desc-preproc_betas.h5"), train_ids))
    assert abs(z.std() - 1) < 0.1  # scaling_factor = 1 / sd of the training latents (most of them)
    log = (autoencoder / "training_log.tsv").read_text().splitlines()
    rows = [dict(zip(log[0].split("\t"), line.split("\t"))) for line in log[1:]]
    assert len(rows) == 3 and float(rows[-1]["mse"]) < float(rows[0]["mse"])


def test_refuses_to_overwrite_and_bad_sizes(project, autoencoder):
    with pytest.raises(OutputExistsError):
        pretrain_autoencoder([1], root=project)
    with pytest.raises(InputError, match="invalid autoencoder size"):
        pretrain_autoencoder([1], root=project, out=project / "other", size=AutoencoderSize(image_size=30))
