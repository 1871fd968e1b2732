"""Optimisation settings of the supervised trainer, importable without torch (the CLI reads defaults here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SupervisedSettings:
    """Optimisation of a reconstruction model.

    Attributes
    ----------
    epochs : int
    batch_size : int
    lr : float
        Adam learning rate (constant).
    patience : int or None
        Stop after this many epochs without a lower validation loss (None: train every epoch).
    seed : int
    weight_decay : float
        Decoupled weight decay: AdamW when above 0, else Adam.
    """

    epochs: int = 100
    batch_size: int = 64
    lr: float = 5e-4
    patience: int | None = 5
    seed: int = 0
    weight_decay: float = 0.0
