"""fmrikit never touches the network: with networking blocked and the offline switches unset, every kind of model
load (a diffusers pipeline, a transformers image model, the evaluation's CLIP) fails locally with one clear line,
and no connection is even attempted."""

import socket

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmrikit.cli.main import app
from fmrikit.errors import MissingInputError


@pytest.fixture
def no_network(monkeypatch):
    """Networking blocked (each attempt recorded) and the environment saying nothing about offline mode."""
    from huggingface_hub import constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.utils._detect_agent._registry", None, raising=False)  # fetched once
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def test_evaluate_with_a_hub_id_stays_offline(no_network, tmp_path):
    for folder in ("pred", "truth"):
        (tmp_path / folder).mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        picture = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        for folder in ("pred", "truth"):
            Image.fromarray(picture).save(tmp_path / folder / f"stim-{i}.png")
    result = CliRunner().invoke(app, ["evaluate", "recon", "--pred", str(tmp_path / "pred"), "--truth",
                                      str(tmp_path / "truth"), "--clip-model", "openai/clip-vit-large-patch14",
                                      "--out", str(tmp_path / "out"), "--root", str(tmp_path / "proj")])
    assert result.exit_code == 0, result.output
    assert "not found locally" in (tmp_path / "out/results.md").read_text()  # CLIP skipped, with its reason
    assert no_network == []


def test_pipelines_and_image_models_load_from_local_files_only(no_network):
    from fmrikit.diffusion import resolve_pipeline
    from fmrikit.features.registry import get_extractor

    with pytest.raises(MissingInputError, match="never downloaded"):
        resolve_pipeline("stabilityai/stable-diffusion-2-1")
    for name, model in (("clip", "openai/clip-vit-base-patch32"), ("dinov2", "facebook/dinov2-small")):
        with pytest.raises(MissingInputError, match="never downloaded"):
            get_extractor(name, image_model=model)
    assert no_network == []
