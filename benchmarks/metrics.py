"""Benchmark of the vectorised two-way identification and retrieval of `fmrikit.analysis.metrics`.

On N random paired feature vectors (reconstruction / brain = image + noise):
* `two_way_identification` vs the protocol's text run as two nested Python loops over (i, j)
  on R = np.corrcoef(F_gt, F_rec)[:N, N:];
* `retrieval` (300 candidates, 30 draws, seed 42) vs a loop over draws and, within a draw, over
  items (one similarity vector and argmax per item and direction).

Both versions must give the same numbers; the table gives seconds and the speed-up (brute / vectorised).
With ``--brute-draws K < 30`` the loop version of retrieval runs only the first K draws and its time
is scaled by 30 / K (marked "scaled" in the table).

    python benchmarks/metrics.py [--n 1000] [--dim 512] [--noise 8] [--brute-draws 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fmrikit.analysis.metrics import retrieval, two_way_identification

N_CANDIDATES, N_DRAWS, SEED = 300, 30, 42


def two_way_brute(f_gt: np.ndarray, f_rec: np.ndarray) -> float:
    """Two-way identification as written in the protocol: nested loops over reconstructions and images."""
    n = len(f_gt)
    r = np.corrcoef(f_gt.reshape(n, -1), f_rec.reshape(n, -1))[:n, n:]
    total = 0.0
    for j in range(n):
        count = 0
        for i in range(n):
            if i != j and r[i, j] < r[j, j]:
                count += 1
        total += count / (n - 1)
    return total / n


def retrieval_brute(brain: np.ndarray, image: np.ndarray, n_draws: int) -> tuple[list[float], list[float]]:
    """Per-draw image and brain top-1 accuracies, one item at a time (same draws as `retrieval`)."""
    n = len(brain)
    rng = np.random.default_rng(SEED)
    img_acc, brain_acc = [], []
    for _ in range(n_draws):
        idx = rng.choice(n, N_CANDIDATES, replace=False)
        b = brain[idx] / np.linalg.norm(brain[idx], axis=1, keepdims=True)
        m = image[idx] / np.linalg.norm(image[idx], axis=1, keepdims=True)
        hits_img = hits_brain = 0
        for k in range(N_CANDIDATES):
            hits_img += int(np.argmax(m @ b[k]) == k)  # brain sample k: which image?
            hits_brain += int(np.argmax(b @ m[k]) == k)  # image k: which brain sample?
        img_acc.append(hits_img / N_CANDIDATES)
        brain_acc.append(hits_brain / N_CANDIDATES)
    return img_acc, brain_acc


def best_time(fn, repeats: int):
    """Smallest wall time of ``repeats`` calls, and the last result."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of items (>= 300)")
    parser.add_argument("--dim", type=int, default=512, help="feature dimension")
    parser.add_argument("--brute-draws", type=int, default=N_DRAWS,
                        help="draws run by the loop version of retrieval (time scaled to 30)")
    parser.add_argument("--noise", type=float, default=8.0,
                        help="sd of the noise added to the unit-variance features (scores below ceiling)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each vectorised function (best kept)")
    args = parser.parse_args()
    if not 1 <= args.brute_draws <= N_DRAWS:
        parser.error(f"--brute-draws must lie in 1..{N_DRAWS}")

    rng = np.random.default_rng(0)
    truth = rng.normal(size=(args.n, args.dim))
    other = truth + rng.normal(0, args.noise, truth.shape)

    rows = []
    t_vec, score = best_time(lambda: two_way_identification(truth, other), args.repeats)
    t_brute, score_brute = best_time(lambda: two_way_brute(truth, other), 1)
    rows.append(("two_way_identification", t_brute, "", t_vec, abs(score - score_brute) < 1e-9,
                 f"{score:.4f} vs {score_brute:.4f}"))

    t_vec, res = best_time(lambda: retrieval(other, truth, N_CANDIDATES, N_DRAWS, SEED), args.repeats)
    t_brute, (img_acc, brain_acc) = best_time(lambda: retrieval_brute(other, truth, args.brute_draws), 1)
    k = args.brute_draws
    same = (res["image_retrieval"]["per_draw"][:k] == img_acc and res["brain_retrieval"]["per_draw"][:k] == brain_acc)
    note = "" if k == N_DRAWS else f"scaled from {k} draws"
    rows.append(("retrieval", t_brute * N_DRAWS / k, note, t_vec, same,
                 f"img {res['image_retrieval']['mean']:.4f}, brain {res['brain_retrieval']['mean']:.4f}"))

    print(f"N = {args.n}, dim = {args.dim}; retrieval: {N_CANDIDATES} candidates, {N_DRAWS} draws, seed {SEED}")
    header = f"{'function':<24}{'brute s':>10}{'vectorised s':>14}{'speed-up':>10}  {'same':<6}{'scores':<28}note"
    print(header)
    print("-" * len(header))
    for name, tb, note, tv, ok, scores in rows:
        print(f"{name:<24}{tb:>10.3f}{tv:>14.4f}{tb / tv:>9.0f}x  {str(ok):<6}{scores:<28}{note}")
    if not all(r[4] for r in rows):
        raise SystemExit("vectorised and brute-force results differ")


if __name__ == "__main__":
    main()
