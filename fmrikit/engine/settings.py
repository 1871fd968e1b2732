"""Optimisation settings of the supervised trainer, importable without torch (the CLI reads defaults here)."""

from __future__ import annotations

from dataclasses import dataclass

from fmrikit.checks import check_number


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

    def check(self) -> None:
        """Refuse values out of range (NaN and infinities included), naming the command-line option.

        Raises
        ------
        InputError
        """
        check_number("--epochs", self.epochs, low=1)
        check_number("--batch-size", self.batch_size, low=1)
        check_number("--lr", self.lr, low=0, low_open=True)
        check_number("--weight-decay", self.weight_decay, low=0)
        if self.patience is not None:
            check_number("--patience", self.patience, low=0)
