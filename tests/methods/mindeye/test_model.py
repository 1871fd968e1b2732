import json

import numpy as np
import pytest
import torch

from fmrikit.errors import DataValueError, MissingInputError
from fmrikit.methods.mindeye.model import MindEyeDecoder
from fmrikit.engine.serialization import PretrainedModule
from fmrikit.methods.mindeye.subject import load_subject_model, save_subject_model


def _tiny():
    torch.manual_seed(0)
    return MindEyeDecoder({"sub-02": 13, "sub-03": 9}, embed_dim=6, hidden=16, n_blocks=2, proj_hidden=12)


def test_forward_shapes_per_subject():
    model = _tiny().eval()
    retrieval, regression = model(torch.randn(4, 13), "sub-02")
    assert retrieval.shape == regression.shape == (4, 6)
    with pytest.raises(KeyError):
        model(torch.randn(4, 9), "sub-09")


def test_save_and_load_round_trip(tmp_path):
    model = _tiny().eval()
    model.target_mean.fill_(2.0)
    model.inputs["sub-03"].ijk.copy_(torch.arange(27, dtype=torch.int32).reshape(9, 3))
    model.save_pretrained(tmp_path / "m", extra={"features": {"name": "gabor"}})
    record = json.loads((tmp_path / "m" / "config.json").read_text())
    assert record["class"] == "MindEyeDecoder" and record["config"]["subjects"] == {"sub-02": 13, "sub-03": 9}
    loaded = MindEyeDecoder.from_pretrained(tmp_path / "m").eval()
    x = torch.randn(3, 9)
    for a, b in zip(model(x, "sub-03"), loaded(x, "sub-03")):
        torch.testing.assert_close(a, b)
    assert torch.equal(loaded.inputs["sub-03"].ijk, model.inputs["sub-03"].ijk)
    assert PretrainedModule.from_pretrained(tmp_path / "m").__class__ is MindEyeDecoder


def test_loading_refuses_missing_and_mismatched_folders(tmp_path):
    with pytest.raises(MissingInputError):
        MindEyeDecoder.from_pretrained(tmp_path / "nowhere")
    _tiny().save_pretrained(tmp_path / "m")
    record = json.loads((tmp_path / "m" / "config.json").read_text())
    record["config"]["hidden"] = 32
    (tmp_path / "m" / "config.json").write_text(json.dumps(record))
    with pytest.raises(DataValueError, match="do not fit"):
        MindEyeDecoder.from_pretrained(tmp_path / "m")


def test_subject_model_stores_only_the_input_layer_and_checks_its_base(tmp_path):
    from safetensors.torch import load_file

    base = _tiny()
    base.save_pretrained(tmp_path / "base")
    model = MindEyeDecoder.from_pretrained(tmp_path / "base")
    layer = model.add_subject("sub-01", 5)
    layer.ijk.copy_(torch.tensor([[1, 2, 3]] * 5, dtype=torch.int32))
    save_subject_model(tmp_path / "s1", model, "sub-01", subject=1, affine=np.eye(4), volume_shape=(4, 5, 6),
                       base=tmp_path / "base", shared_trained=False)
    assert set(load_file(tmp_path / "s1" / "model.safetensors")) == {"inputs.sub-01.linear.weight",
                                                                     "inputs.sub-01.linear.bias",
                                                                     "inputs.sub-01.ijk"}
    loaded = load_subject_model(tmp_path / "s1")
    assert loaded.key == "sub-01" and loaded.volume_shape == (4, 5, 6) and loaded.ijk.shape == (5, 3)
    x = torch.randn(2, 5)
    model.eval()
    torch.testing.assert_close(loaded.model(x, "sub-01")[1], model(x, "sub-01")[1])
    # the base decoder changes: the subject model refuses to load against it
    other = MindEyeDecoder.from_pretrained(tmp_path / "base")
    with torch.no_grad():
        other.regressor.weight.add_(1.0)
    other.save_pretrained(tmp_path / "base")
    with pytest.raises(DataValueError, match="changed"):
        load_subject_model(tmp_path / "s1")


def test_subject_model_without_base_is_self_contained(tmp_path):
    torch.manual_seed(0)
    model = MindEyeDecoder({"sub-04": 7}, embed_dim=3, hidden=8, n_blocks=1, proj_hidden=8).eval()
    save_subject_model(tmp_path / "s4", model, "sub-04", subject=4, affine=np.eye(4), volume_shape=(2, 3, 4),
                       base=None, shared_trained=True)
    loaded = load_subject_model(tmp_path / "s4")
    x = torch.randn(2, 7)
    torch.testing.assert_close(loaded.model(x, "sub-04")[0], model(x, "sub-04")[0])


def test_token_heads_follow_mindeye2():
    torch.manual_seed(0)
    model = MindEyeDecoder({"sub-01": 11}, embed_dim=5 * 3, hidden=16, n_blocks=1, proj_hidden=8,
                           token_shape=(5, 3)).eval()
    x = torch.randn(4, 11)
    retrieval, regression = model(x, "sub-01")
    assert retrieval.shape == regression.shape == (4, 15)
    # by hand: the backbone, one linear map to all 5 x 3 values, the projector on each token (3 -> 8 -> 3)
    h = model.backbone(model.input_norm(model.inputs["sub-01"].linear(x)))
    tokens = h @ model.regressor.weight.T + model.regressor.bias
    torch.testing.assert_close(regression, tokens)
    for p in range(5):
        torch.testing.assert_close(retrieval[:, 3 * p:3 * p + 3], model.projector(tokens[:, 3 * p:3 * p + 3]))
    assert model.projector[2].in_features == 3 and model.config["token_shape"] == [5, 3]
    with pytest.raises(DataValueError, match="token shape"):
        MindEyeDecoder({"sub-01": 11}, embed_dim=14, token_shape=(5, 3))


def test_token_model_round_trip_and_pooled_config_unchanged(tmp_path):
    torch.manual_seed(0)
    model = MindEyeDecoder({"sub-01": 7}, embed_dim=6, hidden=8, n_blocks=1, proj_hidden=4, token_shape=(3, 2))
    model.eval().save_pretrained(tmp_path / "m")
    loaded = MindEyeDecoder.from_pretrained(tmp_path / "m").eval()
    x = torch.randn(2, 7)
    for a, b in zip(model(x, "sub-01"), loaded(x, "sub-01")):
        torch.testing.assert_close(a, b)
    assert "token_shape" not in _tiny().config  # pooled decoders keep their old config
