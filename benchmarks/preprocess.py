"""Benchmark of `preprocess` (issue: foundation).

On one simulated subject with 4 sessions:
* peak RSS of `preprocess` on 4 sessions vs on 1 session (target ratio <= 1.5);
* wall time of `preprocess` vs the naive script (nibabel full-volume read, mask, numpy z-score,
  save), measured in the same run (target ratio <= 1.0).

Each measurement runs in a fresh Python process, so peak RSS is that run's own.

    python benchmarks/preprocess.py [--trials-per-session 300] [--repeats 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def naive(nsd: Path, out: Path, sessions: int) -> None:
    """What a lab notebook does: whole volume as float64, mask, z-score, concatenate, save."""
    import h5py
    import nibabel as nib
    import numpy as np

    betas_dir = nsd / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    roi = nib.load(nsd / "nsddata/ppdata/subj01/func1pt8mm/roi/nsdgeneral.nii.gz").get_fdata() > 0
    blocks = []
    for s in range(1, sessions + 1):
        data = nib.load(betas_dir / f"betas_session{s:02d}.nii.gz").get_fdata()
        x = data[roi].T / 300
        blocks.append((x - x.mean(0)) / x.std(0))
    with h5py.File(out / "naive.h5", "w") as f:
        f["betas"] = np.concatenate(blocks).astype(np.float32)


def fmrikit_run(nsd: Path, out: Path, sessions: int) -> None:
    from fmrikit.data.preprocess import preprocess_nsd

    preprocess_nsd(nsd, 1, root=out, sessions=list(range(1, sessions + 1)), flatmap=False, overwrite=True)


def child(mode: str, nsd: str, sessions: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        (naive if mode == "naive" else fmrikit_run)(Path(nsd), Path(out), sessions)
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(mode: str, nsd: Path, sessions: int, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--nsd", str(nsd), "--sessions",
                               str(sessions)], check=True, capture_output=True, text=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"seconds": min(r["seconds"] for r in runs), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials-per-session", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="keep the simulated subject here")
    ap.add_argument("--child", choices=["naive", "fmrikit"], help=argparse.SUPPRESS)
    ap.add_argument("--nsd", help=argparse.SUPPRESS)
    ap.add_argument("--sessions", type=int, default=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.nsd, args.sessions)
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="fmrikit-bench-"))
    nsd = work / "nsd"
    if not nsd.exists():  # in a child: Linux children inherit the parent's peak RSS, so keep the parent small
        subprocess.run(["fmrikit", "simulate", "--out", str(nsd), "--subjects", "1", "--sessions", "4",
                        "--trials-per-session", str(args.trials_per_session), "--shared", "20",
                        "--image-size", "32"], check=True, capture_output=True)
    one = measure("fmrikit", nsd, 1, args.repeats)
    four = measure("fmrikit", nsd, 4, args.repeats)
    base = measure("naive", nsd, 4, args.repeats)
    rows = [("fmrikit, 1 session", one), ("fmrikit, 4 sessions", four), ("naive script, 4 sessions", base)]
    print(f"subject: 4 sessions x {args.trials_per_session} trials, grid 100x100x31 (pycortex S1); "
          f"best of {args.repeats} runs")
    print(f"{'run':<28}{'wall s':>10}{'peak RSS MiB':>15}")
    for name, r in rows:
        print(f"{name:<28}{r['seconds']:>10.2f}{r['peak_rss_mb']:>15.0f}")
    rss_ratio = four["peak_rss_mb"] / one["peak_rss_mb"]
    time_ratio = four["seconds"] / base["seconds"]
    print(f"peak RSS 4 sessions / 1 session: {rss_ratio:.2f} (target <= 1.5) {'OK' if rss_ratio <= 1.5 else 'MISS'}")
    print(f"wall time fmrikit / naive:       {time_ratio:.2f} (target <= 1.0) {'OK' if time_ratio <= 1.0 else 'MISS'}")
    print(f"naive peak RSS / fmrikit peak RSS (4 sessions): {base['peak_rss_mb'] / four['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
