"""TROI's paper-preset memory plan: parameter counts by hand, and the frozen/trained split."""

from fmrikit.engine.memory import plan_rows
from fmrikit.methods.troi.plan import PAPER_TOKENS, plan_troi
from fmrikit.pipelines.plans import make_plan


def test_troi_plan_counts_the_paper_decoder_by_hand():
    v, hidden, blocks = 1234, 4096, 4
    p, c = PAPER_TOKENS
    plan = plan_troi(batch_size=2, n_voxels=v)
    counts = {x["name"]: x["parameters"] for x in plan["components"]}
    shared = (2 * hidden  # input LayerNorm
              + blocks * (hidden * hidden + hidden + 2 * hidden)  # Linear + LayerNorm per residual block
              + hidden * p * c + p * c  # the regression to every token
              + 2 * c + (c * 1024 + 1024) + 2 * 1024 + (1024 * c + c))  # the projector on each token (C -> 1024 -> C)
    assert counts == {"gate": v, "input_layer": v * hidden + hidden, "shared": shared}
    assert plan["parameters"]["trainable"] == v + v * hidden + hidden  # the backbone stays frozen in stage 1
    # bf16: frozen weights at 2 bytes, trained ones at 16 (fp32 weight, gradient, two AdamW moments)
    assert plan["training"]["static_bytes"] == 2 * shared + 16 * (v + v * hidden + hidden)
    full = plan_troi(batch_size=2, n_voxels=v, unfreeze_backbone=True)
    assert full["parameters"]["trainable"] == full["parameters"]["total"] == v + v * hidden + hidden + shared


def test_sys_info_plan_registry_has_troi():
    plan, rows = make_plan("troi", n_voxels=100)
    assert plan["plan"] == "troi" and plan["settings"]["batch_size"] == 24  # the paper's batch
    assert rows == plan_rows(plan)
