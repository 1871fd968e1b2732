"""Training curves: the per-epoch log of a run (``training_log.tsv``) drawn as a PNG beside it."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

#: Columns drawn on the loss panel (in this order when present); other numeric columns go to the second panel.
LOSS_COLUMNS = ("loss", "contrastive", "mse", "kl", "val_loss", "semantic", "diffusion")
#: Columns never drawn: the x axis and bookkeeping.
SKIP_COLUMNS = ("epoch", "objective")


def read_log(path: str | os.PathLike) -> dict[str, list[float]]:
    """The numeric columns of a training log TSV, by name (NaN where a row has no value).

    Returns
    -------
    dict of str to list of float
        ``"epoch"`` and every column whose values all parse as numbers.
    """
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    columns: dict[str, list[float]] = {}
    for name in (rows[0].keys() if rows else []):
        try:
            columns[name] = [float(r[name]) if r[name] not in ("", None) else math.nan for r in rows]
        except ValueError:
            continue  # a text column such as the objective's name
    return columns


def save_training_curves(log_path: str | os.PathLike, png_path: str | os.PathLike, title: str) -> Path | None:
    """Draw a training log: losses (training and held-out) on the left, other per-epoch numbers on the right.

    Parameters
    ----------
    log_path : path-like
        A TSV with an ``epoch`` column (see :func:`fmrikit.engine.runs.write_log`).
    png_path : path-like
    title : str

    Returns
    -------
    Path or None
        The PNG, or None when the log has fewer than two epochs (a closed-form fit logs one row: no curve) or no
        numeric column to draw.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    columns = read_log(log_path)
    epochs = columns.get("epoch")
    losses = [c for c in LOSS_COLUMNS if c in columns]
    others = [c for c in columns if c not in losses and c not in SKIP_COLUMNS]
    if len(epochs or []) < 2 or not (losses or others):
        return None
    panels = [p for p in (losses, others) if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.4), squeeze=False)
    for ax, names in zip(axes[0], panels):
        for name in names:
            ax.plot(epochs, columns[name], marker="o" if len(epochs) < 30 else None, ms=3,
                    ls="--" if name.startswith("val") else "-", label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss" if names is losses else names[0] if len(names) == 1 else "value (see legend)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_title("losses (training; dashed: held out)" if losses else "per-epoch values", fontsize=9)
    if len(panels) > 1:
        axes[0][1].set_title("other per-epoch values", fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=90, facecolor="white")
    plt.close(fig)
    return png_path
