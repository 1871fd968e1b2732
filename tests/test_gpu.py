"""The CUDA path against the CPU: forward passes agree, bf16 autocast trains, gradient checkpointing is exact.

Marked ``gpu``: skipped by default; ``pytest -m gpu`` (or ``benchmarks/gpu_check.sh``) on a CUDA machine.
"""

import numpy as np
import pytest
import torch

from tests.decoding_problem import quick_settings, synthetic_problem, tiny_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_decoder_forward_on_cuda_matches_cpu_in_float32_and_bf16():
    data, _, _ = synthetic_problem({"sub-01": 40})
    model = tiny_model(data).eval()
    x = data[0].test_x
    with torch.no_grad():
        cpu = model(x, "sub-01")[1]
        cuda = model.cuda()(x.cuda(), "sub-01")[1].cpu()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = model(x.cuda(), "sub-01")[1].float().cpu()
    np.testing.assert_allclose(cuda.numpy(), cpu.numpy(), rtol=1e-4, atol=1e-5)
    assert np.corrcoef(bf16.numpy().ravel(), cpu.numpy().ravel())[0, 1] > 0.99


def test_decoder_trains_on_cuda_under_bf16_autocast():
    from fmrikit.engine.distributed import Distributed
    from fmrikit.methods.mindeye.loop import fit

    data, train_t, _ = synthetic_problem({"sub-01": 40})
    model = tiny_model(data).cuda()
    history = fit(model, data, {"sub-01": model.standardize(train_t["sub-01"].cuda())}, quick_settings(epochs=6),
                  Distributed(0, 1, torch.device("cuda")), param_groups=[{"params": model.parameters()}]).history
    losses = [row["loss"] for row in history]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_encoder_forward_on_cuda_matches_cpu():
    from fmrikit.methods.encoder.model import UniversalEncoder

    torch.manual_seed(0)
    model = UniversalEncoder({"sub-01": 50}, n_levels=2, n_patches=9, in_channels=6, channels=8, embed_dim=16).eval()
    features, voxels = torch.randn(4, 2, 9, 6), torch.arange(50)
    with torch.no_grad():
        cpu = model(features, "sub-01", voxels)
        cuda = model.cuda()(features.cuda(), "sub-01", voxels.cuda()).cpu()
    np.testing.assert_allclose(cuda.numpy(), cpu.numpy(), rtol=1e-4, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                layers_per_block=1, attention_head_dim=4).cuda()
    z, t, text = torch.randn(2, 4, 8, 8).cuda(), torch.tensor([3, 500]).cuda(), torch.randn(2, 5, 16).cuda()

    def grads():
        unet.zero_grad()
        unet(z, t, encoder_hidden_states=text).sample.pow(2).mean().backward()
        return torch.cat([p.grad.flatten() for p in unet.parameters()]).clone()

    plain = grads()
    unet.enable_gradient_checkpointing()
    unet.train()
    np.testing.assert_allclose(grads().cpu().numpy(), plain.cpu().numpy(), rtol=1e-4, atol=1e-6)
