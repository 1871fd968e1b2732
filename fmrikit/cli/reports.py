"""What the training commands print when they finish (rank 0 only under torchrun)."""

from __future__ import annotations

from pathlib import Path

from fmrikit.cli._common import out_console


def _main_rank() -> bool:
    from fmrikit.engine.distributed import env_rank

    return env_rank() == 0


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def retrieval(label: str, path: Path, scores: dict | None) -> None:
    """A decoder's folder and its image / brain retrieval on the test images."""
    if not _main_rank():
        return
    out_console.print(f"{label}: {path}")
    if scores:
        out_console.print(f"  retrieval on {scores['n_test_images']} test images ({scores['n_candidates']} candidates, "
                          f"chance {scores['chance']:.1%}): image {scores['image_retrieval']:.1%}, "
                          f"brain {scores['brain_retrieval']:.1%}")


def encoding(label: str, path: Path, scores: dict | None) -> None:
    """An encoder's folder and its voxel correlations and retrieval on the test images."""
    if not _main_rank():
        return
    out_console.print(f"{label}: {path}")
    if scores:
        nc = "" if scores["nc_score_median"] is None else f", noise-ceiling score {scores['nc_score_median']:.1f}%"
        out_console.print(f"  on {scores['n_test_images']} test images: voxel r median {scores['median_r']:.3f}, "
                          f"75th percentile {scores['p75_r']:.3f}{nc}; retrieval among "
                          f"{scores['retrieval_candidates']}: top-1 {scores['retrieval_top1']:.1%}, "
                          f"top-5 {scores['retrieval_top5']:.1%}")


def neuropictor(result) -> None:
    """A NeuroPictor run's folder and its held-out diffusion and semantic losses against their baselines."""
    if not _main_rank():
        return
    out_console.print(f"NeuroPictor: {result.model}")
    for key, s in result.scores.items():
        if s.get("n_test_images"):
            out_console.print(f"  {key} on {s['n_test_images']} held-out images: diffusion loss {s['diffusion']:.4f} "
                              f"(another image's fMRI: {s['diffusion_shuffled']:.4f}; none: "
                              f"{s['diffusion_unconditioned']:.4f}), semantic loss {s['semantic']:.3f} (another "
                              f"image's fMRI: {s['semantic_shuffled']:.3f}; constant test-mean embedding: "
                              f"{s['semantic_constant_baseline']:.3f})")


def flatmap_ae(result) -> None:
    """The flatmap autoencoder's folder and its held-out error against the mean-flatmap baseline."""
    if not _main_rank():
        return
    out_console.print(f"flatmap autoencoder: {result.model}")
    for key, s in result.scores.items():
        out_console.print(f"  {key}: flatmap AE test masked MSE {_num(s['mse'], 4)} vs mean-flatmap baseline "
                          f"{_num(s['baseline_mse'], 4)} (ratio {_num(s['mse_ratio'])}), r {_num(s['r'])} vs "
                          f"{_num(s['baseline_r'])} on {s['n_test_images']} images")


def latent_mapper(mapper: str, result) -> None:
    """A latent-mapper folder and the test MSE of each mapper against predicting the training mean."""
    out_console.print(f"latent mapper ({mapper}): {result.model}")
    for name, s in result.scores.items():
        out_console.print(f"  {name} ({s['arch']}, {s['n_voxels']} voxels): test MSE {s['test_mse']:.4f} on "
                          f"{s['n_test_images']} images (predicting the training mean: "
                          f"{s['baseline_mse_train_mean']:.4f})")
