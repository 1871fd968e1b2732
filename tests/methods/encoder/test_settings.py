"""Encoder presets: the paper's published values, overrides, refusals."""

import pytest

from fmrikit.errors import InputError
from fmrikit.methods.encoder.settings import encoder_preset


def test_paper_preset_has_the_published_values():
    # Beliy et al., section 3.2 / appendix B.3: E = 256, 32 images x 5000 voxels per step, Adam 1e-3, w = 0.1
    paper = encoder_preset("paper")
    assert (paper.size.embed_dim, paper.settings.batch_images, paper.settings.voxels_per_image) == (256, 32, 5000)
    assert (paper.settings.lr, paper.settings.cosine_weight, paper.features) == (1e-3, 0.1, "dinov2")
    assert paper.record()["name"] == "paper"


def test_given_values_override_the_preset_and_none_keeps_it():
    small = encoder_preset("small", grid=14, epochs=3, lr=None, embed_dim=None, channels=8)
    default = encoder_preset("small")
    assert (small.grid, small.settings.epochs, small.size.channels) == (14, 3, 8)
    assert small.settings.lr == default.settings.lr and small.size.embed_dim == default.size.embed_dim


@pytest.mark.parametrize("kwargs", [{"name": "huge"}, {"name": "small", "grid": 0},
                                    {"name": "small", "voxels_per_image": 1}, {"name": "paper", "lr": -1.0}])
def test_bad_presets_and_values_are_refused(kwargs):
    with pytest.raises(InputError):
        encoder_preset(**kwargs)
