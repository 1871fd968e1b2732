"""Presets of the latent mappers and the embedded autoencoder: the report's numbers (seed 003)."""

import pytest

from fmrikit.errors import InputError
from fmrikit.methods.latent.settings import AutoencoderSize, MapperOptions, mapper_settings


def test_paper_preset_is_the_reports_networks_and_table_2():
    paper = MapperOptions.for_rois("prf-visualrois", None, "streams", None, preset="paper")
    # report 2.4-2.5: CNN fully connected 512, GCN ChebConv 512 then fully connected 1024, text CNN 1024 / 2048
    assert (paper.hidden, paper.gcn_width, paper.gcn_hidden, paper.text_hidden) == (512, 512, 1024, (1024, 2048))
    assert paper.image_labels == (1, 2, 3, 4, 5, 6, 7) and paper.text_labels == (5,)  # V1-hV4; ventral stream
    table2 = {"cnn": (5e-4, 256), "vae": (5e-4, 256), "gcn": (1e-3, 64), "text-cnn": (1e-4, 16)}
    for arch, (lr, batch) in table2.items():
        s = mapper_settings(arch, preset="paper")
        assert (s.lr, s.batch_size, s.epochs, s.patience) == (lr, batch, 100, 5)
    assert mapper_settings("gcn", {"lr": 0.01}, preset="paper").lr == 0.01
    small = MapperOptions.for_rois("prf-visualrois", None, "streams", None)
    assert small == MapperOptions() and small.hidden < paper.hidden


def test_paper_autoencoder_has_stable_diffusions_latent_grid():
    size = AutoencoderSize.from_preset("paper")
    downsampling = 2 ** (len(size.channels) - 1)
    assert (size.latent_channels, size.image_size // downsampling) == (4, 40)  # the report's 4 x 40 x 40 latents
    assert AutoencoderSize.from_preset("small", image_size=None) == AutoencoderSize()
    with pytest.raises(InputError):
        mapper_settings("cnn", preset="huge")
    with pytest.raises(InputError):
        AutoencoderSize.from_preset("huge")
