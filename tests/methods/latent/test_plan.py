"""Memory plans of the latent mappers' paper preset (sys-info --plan latent-mapper)."""

import pytest

from fmrikit.errors import InputError
from fmrikit.pipelines.plans import make_plan


def test_ridge_plan_counts_the_report_sized_linear_map_and_its_adamw_state():
    plan, rows = make_plan("latent-mapper", mapper="ridge", batch_size=8)
    n = (10631 + 1) * 4 * 40 * 40  # weights + bias of 10631 voxels to Stable Diffusion's 4 x 40 x 40 latent
    assert plan["parameters"] == {"total": n, "trainable": n}
    assert plan["training"]["static_bytes"] == 16 * n  # fp32 weights, gradients and two AdamW moments
    assert plan["training"]["activation_bytes_per_sample"] >= 4 * 10631  # at least the saved input
    assert plan["settings"]["batch_size"] == 8 and any(r[1] == "TOTAL at batch 8" for r in rows)


def test_gcn_plan_defaults_to_the_reports_batch_and_builds_without_a_graph():
    plan, _ = make_plan("latent-mapper")
    assert plan["settings"]["mapper"] == "gcn" and plan["settings"]["batch_size"] == 64
    # the report's two ChebConv layers: K=4 from the largest node (10631 // 3 + 2 voxels) to 512, K=3 512 to 512
    cheb = 4 * (10631 - 2 * (10631 // 3)) * 512 + 512 + 3 * 512 * 512 + 512
    assert plan["parameters"]["total"] > cheb
    with pytest.raises(InputError):
        make_plan("latent-mapper", mapper="mlp")
