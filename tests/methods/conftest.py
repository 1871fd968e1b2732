"""Method fixtures: one thread for tiny models, and the embedded autoencoder on the shared project."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _tiny_models_one_thread(one_thread):
    """Every training test runs its tiny models on one thread (the ``one_thread`` fixture)."""


@pytest.fixture(scope="session")
def autoencoder(project):
    """The embedded autoencoder trained for 3 short epochs on the project's 32-px stimuli."""
    from fmrikit.methods.latent.autoencoder import pretrain_autoencoder
    from fmrikit.methods.latent.settings import AutoencoderSize
    from fmrikit.engine.settings import SupervisedSettings

    return pretrain_autoencoder([1, 2], root=project, size=AutoencoderSize(image_size=32, channels=(16, 16)),
                                settings=SupervisedSettings(epochs=3, batch_size=16, lr=2e-3, patience=None),
                                device="cpu")
