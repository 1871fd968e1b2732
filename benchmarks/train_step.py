"""Benchmark of decoder training on CPU (default model size, gabor targets).

On a simulated world made here (subjects 1 and 2 preprocessed over nsdgeneral, subject 3 over
the brain mask):
* training throughput of `pretrain` (trials of every subject per second of the training epochs,
  i.e. the time inside `fit`, without data loading, targets or writing), one process vs
  `torch.distributed.run --nproc_per_node=2` (gloo), measured in the same run;
* wall time of `roi-train` stage 1 (sparse mask training until the voxel budget) on subject 3,
  with the single-process pretrained decoder as backbone and a one-epoch stage 2.

Each measurement runs in a fresh process; the timers wrap `fit` / the stage-1 function.

    python benchmarks/train_step.py [--epochs 3] [--trials-per-session 150] [--budget 500] [--repeats 2]
                                    [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(module, name: str, sink: dict):
    """Replace ``module.name`` by a wrapper adding its wall time to ``sink[name]``."""
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        out = inner(*args, **kwargs)
        sink[name] = sink.get(name, 0.0) + time.perf_counter() - t0
        return out

    setattr(module, name, wrapper)


def child_pretrain(root: Path, out: Path, epochs: int) -> dict:
    from fmrikit.methods.mindeye import pretrain
    from fmrikit.methods.mindeye.settings import TrainSettings

    times: dict = {}
    timed(pretrain, "fit", times)
    res = pretrain.pretrain_decoder([1, 2], root=root, out=out, settings=TrainSettings(epochs=epochs), device="cpu",
                                    overwrite=True)
    config = json.loads((out / "config.json").read_text())
    trials = sum(s["n_train"] for s in config["subjects"].values())
    return {"fit_s": times["fit"], "trials": trials, "epochs": epochs,
            "retrieval": {k: v["image_retrieval"] for k, v in res.retrieval.items()}}


def child_roi(root: Path, out: Path, stage1_epochs: int, budget: int) -> dict:
    from fmrikit.methods.troi import stages as troi
    from fmrikit.methods.mindeye.settings import TrainSettings
    from fmrikit.methods.troi.settings import TroiSettings

    times: dict = {}
    timed(troi, "_stage1", times)
    t0 = time.perf_counter()
    res = troi.roi_train(3, root=root, backbone=out, troi=TroiSettings(budget=budget, stage1_epochs=stage1_epochs),
                         settings=TrainSettings(epochs=1), flatmap=False, device="cpu", overwrite=True)
    return {"stage1_s": times["_stage1"], "total_s": time.perf_counter() - t0, "n_voxels": res.n_voxels,
            "counts": res.extra["stage1_voxels_per_epoch"]}


def run_child(args: list[str], result: Path, nproc: int = 1, threads: int | None = None, repeats: int = 1) -> dict:
    """The child's result; of several runs, the one with the shortest training time."""
    runs = [_run_child(args, result, nproc, threads) for _ in range(repeats)]
    return min(runs, key=lambda r: r.get("fit_s", r.get("stage1_s")))


def _run_child(args: list[str], result: Path, nproc: int, threads: int | None) -> dict:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else []
    env = dict(os.environ, HF_HUB_OFFLINE="1", **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    proc = subprocess.run([sys.executable, *launcher, __file__, *args, "--result", str(result)], env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}")
    return json.loads(result.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3, help="pretraining epochs")
    ap.add_argument("--trials-per-session", type=int, default=150)
    ap.add_argument("--stage1-epochs", type=int, default=15, help="TROI stage-1 epochs (default: the CLI default)")
    ap.add_argument("--budget", type=int, default=500, help="TROI voxel budget")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each pretraining set-up (fastest kept)")
    ap.add_argument("--work", type=Path, default=None, help="keep the simulated world and project here")
    ap.add_argument("--child", choices=["pretrain", "roi"], help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = (child_pretrain(args.root, args.out, args.epochs) if args.child == "pretrain"
               else child_roi(args.root, args.out, args.stage1_epochs, args.budget))
        if int(os.environ.get("RANK", "0")) == 0:
            args.result.write_text(json.dumps(res))
        return

    from fmrikit.data.preprocess import preprocess_nsd
    from fmrikit.data.simulate import simulate
    from fmrikit.data.world.config import SimulationConfig

    work = args.work or Path(tempfile.mkdtemp(prefix="fmrikit-bench-"))
    nsd, root = work / "nsd", work / "project"
    if not root.exists():
        simulate(nsd, SimulationConfig(n_subjects=3, sessions=[2], trials_per_session=args.trials_per_session,
                                       runs_per_session=3, n_shared=20, image_size=32, seed=0), overwrite=True)
        for subject in (1, 2):
            preprocess_nsd(nsd, subject, root=root, flatmap=False)
        preprocess_nsd(nsd, 3, root=root, roi="brainmask", flatmap=False)
    common = ["--root", str(root), "--epochs", str(args.epochs)]
    one = run_child(["--child", "pretrain", *common, "--out", str(work / "decoder1")], work / "one.json",
                    repeats=args.repeats)
    single = run_child(["--child", "pretrain", *common, "--out", str(work / "decoder1t")], work / "single.json",
                       threads=1, repeats=args.repeats)
    two = run_child(["--child", "pretrain", *common, "--out", str(work / "decoder2")], work / "two.json", nproc=2,
                    repeats=args.repeats)
    roi = run_child(["--child", "roi", "--root", str(root), "--out", str(work / "decoder1"), "--stage1-epochs",
                     str(args.stage1_epochs), "--budget", str(args.budget)], work / "roi.json")

    print(f"pretrain: subjects 1, 2 ({one['trials']} training trials), default ModelSize, batch 32, "
          f"{args.epochs} epochs, CPU with {os.cpu_count()} cores; fastest of {args.repeats} runs")
    header = f"{'run':<34}{'training s':>12}{'trials/s':>10}  image retrieval"
    print(header)
    print("-" * len(header))
    runs = (("1 process, torch default threads", one), ("1 process, 1 thread", single),
            ("torchrun 2 processes x 1 thread", two))
    for name, r in runs:
        rate = r["epochs"] * r["trials"] / r["fit_s"]
        scores = ", ".join(f"{k} {v:.0%}" for k, v in r["retrieval"].items())
        print(f"{name:<34}{r['fit_s']:>12.2f}{rate:>10.0f}  {scores}")
    print(f"throughput 2 processes / 1 process: {one['fit_s'] / two['fit_s']:.2f} (vs default threads), "
          f"{single['fit_s'] / two['fit_s']:.2f} (vs 1 thread); the 2 processes share the same "
          f"{os.cpu_count()} CPU cores (no extra hardware), so this is not a multi-device scaling figure")
    print(f"roi-train subject 3 (brainmask, {roi['counts'][0] if roi['counts'] else '?'} voxels after epoch 1): "
          f"stage 1 reached budget {args.budget} in {len(roi['counts'])} epochs "
          f"(voxels per epoch {roi['counts']}), {roi['n_voxels']} selected")
    print(f"  stage 1 {roi['stage1_s']:.2f} s; whole roi-train with 1 stage-2 epoch {roi['total_s']:.2f} s "
          f"(stage 1 = {roi['stage1_s'] / roi['total_s']:.0%})")


if __name__ == "__main__":
    main()
