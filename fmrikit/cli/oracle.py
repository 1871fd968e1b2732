"""``python -m fmrikit.cli.oracle``: write an oracle result (the command line of :mod:`fmrikit.analysis.oracle`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmrikit.analysis.oracle import PROFILE_IMAGES, informative_mask, oracle_clusters, oracle_encoding
from fmrikit.errors import FmrikitError


def main(argv: list[str] | None = None) -> int:
    """``python -m fmrikit.cli.oracle``: write an oracle result; prints its path."""
    parser = argparse.ArgumentParser(prog="python -m fmrikit.cli.oracle", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", help="project folder [default: $FMRIKIT_ROOT]")
    common.add_argument("--roi", help="voxel selection of the datasets [default: nsdgeneral]")
    common.add_argument("--nsd-root", help="simulated tree [default: the dataset's]")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--overwrite", action="store_true")
    enc = sub.add_parser("encoding", parents=[common], help="noise-free responses as the encoder's prediction")
    enc.add_argument("--subject", type=int, required=True)
    enc.add_argument("--out", required=True)
    clu = sub.add_parser("clusters", parents=[common], help="k-means on the true tuning")
    clu.add_argument("--subjects", required=True, help="e.g. 1,2")
    clu.add_argument("--k", type=int, required=True)
    clu.add_argument("--out", required=True)
    clu.add_argument("--max-images", type=int, default=PROFILE_IMAGES)
    mask = sub.add_parser("mask", help="path of the true informative mask")
    mask.add_argument("--nsd-root", required=True)
    mask.add_argument("--subject", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        if args.kind == "encoding":
            path = oracle_encoding(args.subject, args.out, root=args.root, roi=args.roi, nsd_root=args.nsd_root,
                                   seed=args.seed, overwrite=args.overwrite)
        elif args.kind == "clusters":
            oracle_clusters([int(s) for s in args.subjects.split(",")], args.k, args.out, root=args.root,
                            roi=args.roi, nsd_root=args.nsd_root, max_images=args.max_images, seed=args.seed,
                            overwrite=args.overwrite)
            path = Path(args.out)
        else:
            path = informative_mask(args.nsd_root, args.subject)
    except FmrikitError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
