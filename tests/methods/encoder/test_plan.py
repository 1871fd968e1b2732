"""The paper preset's memory plan counts the real model's parameters."""

from fmrikit.methods.encoder.plan import plan_encoder


def test_plan_counts_the_parameters_of_the_model_it_describes():
    from fmrikit.methods.encoder.model import UniversalEncoder
    from fmrikit.methods.encoder.settings import encoder_preset

    size = encoder_preset("paper").size
    plan = plan_encoder(4, n_subjects=2, voxels_per_subject=300, feature_shape=(3, 10, 12), precision="fp32")
    model = UniversalEncoder({"a": 300, "b": 300}, 3, 10, 12, channels=size.channels, embed_dim=size.embed_dim)
    assert plan["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    # weights, gradients and two Adam moments in fp32
    assert plan["training"]["static_bytes"] >= 16 * plan["parameters"]["total"]
    assert plan["settings"]["voxels_per_image"] == 300  # capped at the subject's voxels
