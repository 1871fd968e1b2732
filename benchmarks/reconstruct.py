"""Benchmark of image reconstruction on CPU: seconds per image at batch 1 vs batch 8, and peak memory.

On a simulated world made here (subject 1 preprocessed over nsdgeneral, the embedded autoencoder
trained briefly, a ridge latent mapper) and two tiny diffusers pipelines built from config
(``tests/pipelines/tiny_diffusion.py``: random weights, 8 x 8 latents, 16 x 16 images):

* ``embedded``: :func:`fmrikit.pipelines.reconstruct.reconstruct` end to end on the subject's shared
  test images (``--trials shared``, ``--method latent``, ``--mapper ridge``, no pipeline: the embedded
  autoencoder decodes the predicted latents), i.e. model loading, reading the betas, prediction,
  decoding, PNGs, contact sheet and ``predictions.h5``, divided by the number of images;
* ``img2img``: :func:`fmrikit.diffusion.generate_img2img` of the tiny Stable Diffusion
  pipeline on ``--images`` random latents with random 15-token ``prompt_embeds`` (``--steps`` steps,
  strength 0.75, guidance 7.5);
* ``unclip``: :func:`fmrikit.diffusion.generate_unclip` of the tiny Stable unCLIP pipeline
  on ``--images`` random image embeddings (``--steps`` steps, guidance 7.5, noise level 0).

Every (route, batch) runs in a fresh process: one warm-up call (batch images; the first call pays
one-off costs) is left out, then the images are generated ``--repeats`` times in calls of ``batch``
images and the fastest run is kept. Peak RSS is the process's ``ru_maxrss``; "above base" is that
peak less the RSS before the warm-up, i.e. after imports (embedded: each ``reconstruct`` call loads
its models itself, so they count in the increase) or after loading the pipeline (diffusers routes).

Threads: every process runs with ``OMP_NUM_THREADS=--threads`` (default 1). On a machine shared with
other jobs, torch's default (one thread per core) makes the small operators of batch-1 calls wait on
descheduled OpenMP threads, and their times then measure the neighbours (10-20x slower here);
``--threads 0`` keeps torch's default for a machine of one's own.

Reading the ratios: "batching speed-up" is s/image at batch 1 over s/image at batch ``--batch``,
both measured in this run; above 1, batching pays. The tiny pipelines have random weights and
16-pixel images, so their absolute times measure diffusers' per-step overhead, not a real model.

    python benchmarks/reconstruct.py [--images 16] [--steps 10] [--batch 8] [--repeats 2] [--threads 1]
                                     [--epochs 1] [--work DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _memory import peak_mb, rss_mb  # benchmarks/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
STRENGTH, GUIDANCE, TEXT_TOKENS = 0.75, 7.5, 15
ROUTES = ("embedded", "img2img", "unclip")


def child_setup(work: str, trials_per_session: int, n_shared: int, epochs: int) -> dict:
    """Build the simulated world, the project of subject 1, its models and the tiny pipelines.

    Parameters
    ----------
    work : str
        Folder receiving ``nsd/``, ``project/``, ``img2img/`` and ``unclip/``.
    trials_per_session : int
        Trials in each of the 2 simulated sessions.
    n_shared : int
        Shared (test) images of the simulation.
    epochs : int
        Training epochs of the embedded autoencoder.

    Returns
    -------
    dict
        Versions of torch, diffusers and Python, and what the embedded route reconstructs.
    """
    import diffusers
    import torch

    from fmrikit.data.preprocess import preprocess_nsd
    from fmrikit.data.simulate import simulate
    from fmrikit.data.world.config import SimulationConfig
    from fmrikit.engine.serialization import read_config
    from fmrikit.methods.latent.autoencoder import pretrain_autoencoder
    from fmrikit.methods.latent.train import pretrain_latent_mapper
    from fmrikit.engine.settings import SupervisedSettings

    sys.path.insert(0, str(REPO))
    from tests.pipelines.tiny_diffusion import save_tiny_img2img, save_tiny_unclip

    work = Path(work)
    root = work / "project"
    nsd = simulate(work / "nsd", SimulationConfig(n_subjects=1, sessions=[2], trials_per_session=trials_per_session,
                                                  n_shared=n_shared, image_size=64, seed=0), overwrite=True)
    preprocess_nsd(nsd, 1, root=root, flatmap=False, overwrite=True)
    pretrain_autoencoder([1], root=root, settings=SupervisedSettings(epochs=epochs, batch_size=32, lr=1e-3,
                                                                     patience=None), device="cpu", overwrite=True)
    mapper = pretrain_latent_mapper(1, mapper="ridge", root=root, device="cpu", overwrite=True)
    save_tiny_img2img(work / "img2img")
    save_tiny_unclip(work / "unclip")
    record = read_config(mapper.model / "image")
    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version(),
            "n_test_images": mapper.scores["image"]["n_test_images"], "n_voxels": mapper.scores["image"]["n_voxels"],
            "latent_shape": record["target_shape"], "image_size": record["image_size"]}


def child_embedded(work: str, batch: int, repeats: int) -> dict:
    """Time ``reconstruct`` of subject 1's shared images (latent route, ridge mapper, embedded autoencoder).

    Parameters
    ----------
    work : str
        The folder of :func:`child_setup`.
    batch : int
        ``batch_size`` of ``reconstruct``.
    repeats : int
        Timed calls after the warm-up call (fastest kept).

    Returns
    -------
    dict
        ``seconds`` of the fastest call, ``n_images``, ``base_mb`` (RSS after imports), ``peak_mb`` and
        ``torch_threads``.
    """
    import diffusers.models.autoencoders.autoencoder_kl  # noqa: F401  (the lazy imports of a call: not in base)
    import h5py  # noqa: F401
    import PIL.Image  # noqa: F401
    import torch

    from fmrikit.methods.latent.models import LatentMapper  # noqa: F401
    from fmrikit.pipelines.reconstruct import reconstruct

    root, out = Path(work) / "project", Path(work) / f"recon-batch{batch}"
    base = rss_mb()

    def call():
        return reconstruct(1, trials="shared", method="latent", mapper="ridge", batch_size=batch, root=root, out=out,
                           overwrite=True, device="cpu")

    n_images = call().n_inputs
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {"seconds": min(times), "n_images": n_images, "base_mb": base, "peak_mb": peak_mb(),
            "torch_threads": torch.get_num_threads()}


def child_diffusers(work: str, kind: str, batch: int, n_images: int, steps: int, repeats: int) -> dict:
    """Time a tiny diffusers pipeline on ``n_images`` random inputs, in calls of ``batch`` images.

    Parameters
    ----------
    work : str
        The folder of :func:`child_setup`.
    kind : {"img2img", "unclip"}
    batch : int
        Images per pipeline call (the last call takes the rest).
    n_images : int
    steps : int
        ``num_inference_steps``.
    repeats : int
        Timed runs over the ``n_images`` after the warm-up call (fastest kept).

    Returns
    -------
    dict
        ``seconds`` of the fastest run, ``n_images``, ``base_mb`` (RSS after loading the pipeline),
        ``peak_mb``, the image side ``image_px`` and ``torch_threads``.
    """
    import numpy as np
    import torch

    from fmrikit.diffusion import generate_img2img, generate_unclip, load_pipeline

    pipe, _ = load_pipeline(Path(work) / kind, kind, device="cpu")
    base = rss_mb()
    rng = np.random.default_rng(0)
    unet = pipe.unet.config
    if kind == "img2img":
        latents = rng.normal(size=(n_images, unet.in_channels, unet.sample_size, unet.sample_size))
        embeds = rng.normal(size=(n_images, TEXT_TOKENS, pipe.text_encoder.config.hidden_size))
        latents, embeds = torch.from_numpy(latents).float(), torch.from_numpy(embeds).float()

        def generate(rows: slice) -> np.ndarray:
            return generate_img2img(pipe, latents[rows], embeds[rows], seeds=list(range(rows.start, rows.stop)),
                                    strength=STRENGTH, steps=steps, guidance_scale=GUIDANCE)
    else:
        width = unet.projection_class_embeddings_input_dim // 2
        embeds = torch.from_numpy(rng.normal(size=(n_images, width))).float()

        def generate(rows: slice) -> np.ndarray:
            return generate_unclip(pipe, embeds[rows], seeds=list(range(rows.start, rows.stop)), steps=steps,
                                   guidance_scale=GUIDANCE)

    image_px = generate(slice(0, batch)).shape[1]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, n_images, batch):
            generate(slice(start, min(start + batch, n_images)))
        times.append(time.perf_counter() - t0)
    return {"seconds": min(times), "n_images": n_images, "base_mb": base, "peak_mb": peak_mb(),
            "image_px": int(image_px), "torch_threads": torch.get_num_threads()}


CHILDREN = {"setup": child_setup, "embedded": child_embedded, "diffusers": child_diffusers}


def run_child(threads: int, name: str, *args) -> dict:
    """Run ``CHILDREN[name](*args)`` in a fresh Python process and return its result.

    The parent imports neither torch nor fmrikit: on Linux a child's ``ru_maxrss`` starts from its
    parent's peak, so the parent must stay small for the children's peaks to be their own.

    Parameters
    ----------
    threads : int
        ``OMP_NUM_THREADS`` of the child (torch's intra-op threads); 0 keeps the environment's setting
        (unset: torch's default, one thread per core).
    name : str
        Key of :data:`CHILDREN`.
    *args
        JSON-serialisable arguments of the child function.
    """
    env = dict(os.environ, HF_HUB_OFFLINE="1", **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps([name, *args])], env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{name} {args[1:]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(args: argparse.Namespace, work: Path) -> tuple[dict, list[dict]]:
    """Build (or reuse) the world in ``work``, then time every (route, batch) in its own process.

    Returns
    -------
    setup : dict
        The result of :func:`child_setup`, cached in ``work/setup.json``.
    rows : list of dict
        Per (route, batch): the child's result plus ``route``, ``batch``, ``s_per_image`` and ``above_base_mb``.
    """
    setup_file = work / "setup.json"
    if setup_file.is_file():
        setup = json.loads(setup_file.read_text())
    else:
        work.mkdir(parents=True, exist_ok=True)
        setup = run_child(args.threads, "setup", str(work), args.trials_per_session, args.shared, args.epochs)
        setup_file.write_text(json.dumps(setup))
    rows = []
    for route in ROUTES:
        for batch in (1, args.batch):
            if route == "embedded":
                res = run_child(args.threads, "embedded", str(work), batch, args.repeats)
            else:
                res = run_child(args.threads, "diffusers", str(work), route, batch, args.images, args.steps,
                                args.repeats)
            rows.append({"route": route, "batch": batch, **res, "s_per_image": res["seconds"] / res["n_images"],
                         "above_base_mb": res["peak_mb"] - res["base_mb"]})
    return setup, rows


def report(args: argparse.Namespace, setup: dict, rows: list[dict]) -> dict[str, float]:
    """Print the set-up and the table; return the batching speed-up per route."""
    per = {(r["route"], r["batch"]): r for r in rows}
    speedup = {route: per[route, 1]["s_per_image"] / per[route, args.batch]["s_per_image"] for route in ROUTES}
    threads = sorted({r["torch_threads"] for r in rows})
    print(f"machine: {os.cpu_count()} CPU cores ({len(os.sched_getaffinity(0))} usable), torch threads "
          f"{'/'.join(map(str, threads))}, torch {setup['torch']}, diffusers {setup['diffusers']}, "
          f"Python {setup['python']}")
    print(f"embedded: reconstruct end to end, subject 1, {setup['n_test_images']} shared test images, ridge mapper "
          f"({setup['n_voxels']} voxels), embedded autoencoder {setup['image_size']} px "
          f"(latents {'x'.join(map(str, setup['latent_shape']))})")
    print(f"img2img:  tiny pipeline, {args.images} images of {per['img2img', 1]['image_px']} px, {args.steps} steps "
          f"x strength {STRENGTH}, guidance {GUIDANCE}, prompt_embeds {TEXT_TOKENS} tokens")
    print(f"unclip:   tiny pipeline, {args.images} images of {per['unclip', 1]['image_px']} px, {args.steps} steps, "
          f"guidance {GUIDANCE}, noise level 0")
    print(f"each row a fresh process; one warm-up call left out, fastest of {args.repeats} timed runs")
    header = f"{'route':<10}{'batch':>6}{'s/image':>10}{'images/s':>10}{'peak RSS MB':>13}{'above base MB':>15}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['route']:<10}{r['batch']:>6}{r['s_per_image']:>10.4f}{1 / r['s_per_image']:>10.1f}"
              f"{r['peak_mb']:>13.0f}{r['above_base_mb']:>15.0f}")
    print(f"batching speed-up, s/image at batch 1 / s/image at batch {args.batch} (> 1: batching pays): "
          + ", ".join(f"{route} {speedup[route]:.2f}" for route in ROUTES))
    return speedup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=16, help="images per timed run of each diffusers pipeline")
    ap.add_argument("--steps", type=int, default=10, help="diffusion steps (img2img runs strength x steps of them)")
    ap.add_argument("--batch", type=int, default=8, help="the batch size compared with batch 1")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each measurement (fastest kept)")
    ap.add_argument("--threads", type=int, default=1,
                    help="OMP_NUM_THREADS of every process (0: inherit, torch's default is one per core)")
    ap.add_argument("--epochs", type=int, default=1, help="training epochs of the embedded autoencoder")
    ap.add_argument("--trials-per-session", type=int, default=100, help="simulated trials in each of 2 sessions")
    ap.add_argument("--shared", type=int, default=24, help="shared images: the embedded route's test images")
    ap.add_argument("--work", type=Path, default=None, help="keep the world, models and outputs here (reused)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, *rest = json.loads(args.child)
        print(json.dumps(CHILDREN[name](*rest)))
        return
    if args.batch < 2 or args.images < args.batch or args.repeats < 1 or args.threads < 0:
        ap.error("need --batch >= 2, --images >= --batch, --repeats >= 1 and --threads >= 0")

    with tempfile.TemporaryDirectory(prefix="fmrikit-bench-reconstruct-") as tmp:
        setup, rows = measure(args, args.work or Path(tmp))
    speedup = report(args, setup, rows)
    if args.json:
        args.json.write_text(json.dumps({"options": {k: str(v) for k, v in vars(args).items() if k != "child"},
                                         "cores": len(os.sched_getaffinity(0)), "setup": setup, "rows": rows,
                                         "batching_speedup": speedup}, indent=2))


if __name__ == "__main__":
    main()
