import json

import pytest
import torch
from typer.testing import CliRunner

from fmrikit.engine import memory
from fmrikit.methods.neuropictor import plan as planning
from fmrikit.pipelines.plans import make_plan
from fmrikit.cli.main import app
from fmrikit.errors import InputError

runner = CliRunner()
GIB = 1024 ** 3


@pytest.fixture(scope="module")
def plan_json():
    """One full plan through the CLI (batch 2), shared by the tests that read its numbers."""
    res = runner.invoke(app, ["sys-info", "--plan", "neuropictor", "--batch-size", "2", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _tiny_unet_config():
    return dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=24,
                attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=8)


def test_meta_counts_equal_real_tiny_models(one_thread):
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(0)
    real = UNet2DConditionModel(**_tiny_unet_config())
    real_cn = ControlNetModel.from_unet(real, conditioning_channels=4, conditioning_embedding_out_channels=(16,))
    with torch.device("meta"):
        meta = UNet2DConditionModel(**_tiny_unet_config())
        meta_cn = ControlNetModel.from_unet(meta, conditioning_channels=4, conditioning_embedding_out_channels=(16,))
    assert next(meta.parameters()).is_meta and not next(real.parameters()).is_meta
    assert planning.count_parameters(meta) == sum(p.numel() for p in real.parameters())
    assert planning.count_parameters(meta_cn) == sum(p.numel() for p in real_cn.parameters())
    real_cn.requires_grad_(False)
    real_cn.conv_in.requires_grad_(True)
    assert planning.count_parameters(real_cn, trainable_only=True) == sum(p.numel() for p in real_cn.conv_in.parameters())


def _vit_formula(image, patch, d, depth):
    block = 12 * d * d + 13 * d  # qkv 3d^2+3d, out d^2+d, fc1 4d^2+4d, fc2 4d^2+d, two LayerNorms 4d
    return depth * block + (patch * patch * d + d) + d + 2 * d  # patch embedding, [CLS], final LayerNorm


@pytest.mark.parametrize("size", [(64, 16, 32, 3, 4), (256, 16, 1024, 24, 16)])
def test_vit_encoder_count_matches_closed_formula(size):
    image, patch, d, depth, heads = size
    from fmrikit.methods.neuropictor.flatmap_ae_model import FlatmapEncoder

    with torch.device("meta"):
        enc = FlatmapEncoder(image, patch, d, depth, heads)
    assert planning.count_parameters(enc) == _vit_formula(image, patch, d, depth)
    assert _vit_formula(256, 16, 1024, 24) == 302_575_616


def test_flash_emulation_saves_no_attention_matrix():
    import torch.nn.functional as F

    q = torch.empty(1, 2, 1024, 32, device="meta", requires_grad=True)
    counter = memory.ByteCounter(set())
    with memory.mixed_precision_mode(torch.bfloat16, set()), \
            torch.autograd.graph.saved_tensors_hooks(lambda t: (counter.add(t), t)[1], lambda t: t):
        F.scaled_dot_product_attention(q, q, q)
    assert 0 < counter.bytes < 1024 * 1024 * 2  # well under one (1024 x 1024) float matrix per head


class _ViTBlock(torch.nn.Module):
    """Pre-norm transformer block (MAE / timm layout) written out by hand."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = torch.nn.LayerNorm(width), torch.nn.LayerNorm(width)
        self.qkv, self.proj = torch.nn.Linear(width, 3 * width), torch.nn.Linear(width, width)
        self.fc1, self.fc2 = torch.nn.Linear(width, 4 * width), torch.nn.Linear(4 * width, width)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))


def test_transformer_layer_emulation_matches_hand_written_block():
    """nn.MultiheadAttention runs its inner ops outside torch-function modes; the emulation redoes them."""
    blocks = {}
    with torch.device("meta"):
        blocks["torch"] = torch.nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, activation="gelu",
                                                           batch_first=True, norm_first=True)
        blocks["hand"] = _ViTBlock(64, 4)
    saved = {}
    for name, block in blocks.items():
        exclude = planning._weight_keys({"b": block})
        counter = memory.ByteCounter(exclude)
        x = torch.empty(2, 33, 64, device="meta", requires_grad=True)
        with memory.mixed_precision_mode(torch.bfloat16, exclude), \
                torch.autograd.graph.saved_tensors_hooks(lambda t: (counter.add(t), t)[1], lambda t: t):
            block(x)
        saved[name] = counter.bytes
    assert saved["torch"] == saved["hand"] > 0


@pytest.fixture(scope="module")
def training_models():
    models = planning._build_models(512, 256, 1024, 24, 16)
    planning._set_training_dtypes(models, "bf16")
    return models


@pytest.mark.parametrize("checkpointing", [False, True])
def test_activation_bytes_scale_linearly(training_models, checkpointing):
    one, two = (planning._measure_training(training_models, b, 512, 256, "bf16", checkpointing) for b in (1, 2))
    assert one["saved_bytes"] > 50 * 2 ** 20
    assert two["saved_bytes"] / 2 == pytest.approx(one["saved_bytes"], rel=0.05)
    assert two["recompute_bytes"] / 2 == pytest.approx(one["recompute_bytes"], rel=0.05)
    assert one["autocast_copy_bytes"] == two["autocast_copy_bytes"] > 0  # weights: independent of the batch
    if checkpointing:
        plain = planning._measure_training(training_models, 1, 512, 256, "bf16", False)
        assert one["saved_bytes"] < plain["saved_bytes"] / 3


def test_cli_plan_json_has_the_numbers(plan_json):
    p = plan_json
    assert p["plan"] == "neuropictor" and p["estimate"] is True and "not a measurement" in p["note"]
    for key in ("settings", "components", "parameters", "published_checks", "training", "inference", "gpus",
                "current_device", "method"):
        assert key in p
    counts = {c["name"]: c["parameters"] for c in p["components"]}
    # exact counts of the released SD 2.x checkpoints
    assert counts["unet"] == 865_910_724 and counts["vae"] == 83_653_863 and counts["text_encoder"] == 340_387_840
    for check in p["published_checks"]:
        if check["published"] is not None:
            assert abs(check["relative_difference"]) < 0.03, check
    trainable = sum(c["parameters"] for c in p["components"] if c["trainable"])
    frozen = sum(c["parameters"] for c in p["components"] if not c["trainable"])
    assert {n for n, c in zip(counts, p["components"]) if c["trainable"]} == {
        "fmri_encoder", "guiding_network", "feature_transform", "controlnet"}
    assert p["parameters"] == {"total": trainable + frozen, "trainable": trainable, "frozen": frozen}
    assert [g["memory_bytes"] // GIB for g in p["gpus"]] == [24, 40, 48, 80]


def test_static_memory_formula(plan_json):
    tr, b = plan_json["training"], plan_json["settings"]["batch_size"]
    par = plan_json["parameters"]
    assert tr["frozen_weight_bytes"] == 2 * par["frozen"]  # bf16
    assert tr["trainable_state_bytes"] == 16 * par["trainable"]  # fp32 weight + grad + two AdamW moments
    assert tr["static_bytes"] == tr["frozen_weight_bytes"] + tr["trainable_state_bytes"]
    assert tr["optimizer_step_transient_bytes"] == 4 * par["trainable"]
    # autocast keeps one bf16 copy of (nearly) every trainable weight: norms stay float32
    assert 0.99 * 2 * par["trainable"] < tr["autocast_weight_copy_bytes"] <= 2 * par["trainable"]
    phases = tr["phase_peak_bytes"]
    assert phases["forward_backward"] == tr["static_bytes"] + tr["autocast_weight_copy_bytes"] + b * (
        tr["activation_bytes_per_sample"] + tr["backward_transient_bytes_per_sample"])
    assert tr["total_bytes"] == max(phases.values())
    inf = plan_json["inference"]
    assert inf["weight_bytes"] == 2 * par["total"]
    assert inf["total_bytes"] == inf["weight_bytes"] + b * max(
        inf[k] for k in ("condition_peak_bytes_per_sample", "denoise_step_peak_bytes_per_sample",
                         "vae_decode_peak_bytes_per_sample"))


def test_cli_table_and_unknown_plan():
    res = runner.invoke(app, ["sys-info", "--plan", "nope"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "error" in lines[0] and "neuropictor" in lines[0]
    res = runner.invoke(app, ["sys-info", "--batch-size", "3"])
    assert res.exit_code == 2


def test_format_plan(plan_json):
    text = planning.format_plan(plan_json)
    assert "estimate" in text and "TOTAL at batch 2" in text and "GiB" in text
    assert len(planning.plan_rows(plan_json)) == len(text.splitlines())


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), "batch_size"),
    (dict(precision="bf61"), "did you mean 'bf16'"),
    (dict(image_size=500), "image_size"),
    (dict(ae_width=1000, ae_heads=16), "divisible"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(InputError, match=match):
        planning.plan_neuropictor(**kwargs)
    with pytest.raises(InputError, match="unknown plan"):
        make_plan("neuropictr")
