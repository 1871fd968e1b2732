"""The diffusion prior: its training loss falls on a planted problem; sampling is seeded per sample."""

import numpy as np
import torch

from fmrikit.methods.mindeye.prior import build_prior, noise_scheduler, prior_loss, sample_prior
from fmrikit.methods.mindeye.settings import PriorSize


def test_loss_falls_and_samples_follow_the_condition():
    torch.manual_seed(0)
    cond = torch.randn(64, 6)
    x0 = cond @ torch.randn(6, 6) / 2  # the embedding is a function of the condition
    prior = build_prior(6, PriorSize(layers=1, heads=2, head_dim=8))
    scheduler = noise_scheduler()
    optimizer = torch.optim.Adam(prior.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = prior_loss(prior, scheduler, x0, cond)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    prior.eval()
    samples = sample_prior(prior, cond[:8], seeds=list(range(8)), steps=20)
    error = ((samples - x0[:8]) ** 2).mean()
    assert error < 0.5 * (x0[:8] ** 2).mean()  # much closer to the truth than the unconditional mean (0)


def test_sampling_is_deterministic_and_batch_independent():
    torch.manual_seed(1)
    prior = build_prior(5, PriorSize(layers=1, heads=2, head_dim=4)).eval()
    cond = torch.randn(3, 5)
    batch = sample_prior(prior, cond, seeds=[7, 8, 9], steps=5, guidance_scale=2.0)
    single = torch.cat([sample_prior(prior, cond[k:k + 1], seeds=[s], steps=5, guidance_scale=2.0)
                        for k, s in enumerate([7, 8, 9])])
    assert torch.allclose(batch, single, atol=1e-5)
    assert not torch.allclose(sample_prior(prior, cond, seeds=[1, 8, 9], steps=5)[0], batch[0])
