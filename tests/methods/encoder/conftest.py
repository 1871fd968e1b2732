"""A project with the tiny simulated subjects 1 and 2 and a tiny universal encoder trained on both."""

import pytest


@pytest.fixture(scope="session")
def encoder_project(sim_world, tmp_path_factory):
    from fmrikit.data.preprocess import preprocess_nsd
    from fmrikit.methods.encoder.runs import pretrain_encoder
    from fmrikit.methods.encoder.settings import EncoderSettings, EncoderSize

    root = tmp_path_factory.mktemp("encoder_project")
    for subject in (1, 2):
        preprocess_nsd(sim_world, subject, root=root, flatmap=False)
    pretrain_encoder([1, 2], root=root, size=EncoderSize(channels=4, embed_dim=8),
                     settings=EncoderSettings(epochs=1, batch_images=16, voxels_per_image=50), device="cpu")
    return root
