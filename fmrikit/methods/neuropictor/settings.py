"""NeuroPictor's options and the training settings of NeuroPictor and its flatmap autoencoder (importable without
torch)."""

from __future__ import annotations

from dataclasses import dataclass

from fmrikit.checks import check_number
from fmrikit.engine.settings import SupervisedSettings


@dataclass
class NeuroPictorOptions:
    """What NeuroPictor trains and how.

    Attributes
    ----------
    semantic_weight : float
        lambda of the semantic loss (paper: 0.1).
    uncond_prob : float
        Fraction of semantic conditions replaced by the empty prompt's embedding (paper: 0.05).
    train_encoder : bool
        Fine-tune the flatmap encoder too (the paper's "full" model), else keep it frozen.
    gradient_checkpointing : bool
        Recompute U-Net and ControlNet activations in the backward pass (less memory, ~30% slower).
    """

    semantic_weight: float = 0.1
    uncond_prob: float = 0.05
    train_encoder: bool = True
    gradient_checkpointing: bool = False

    def check(self) -> None:
        """Refuse loss options out of range, naming the command-line option (:class:`~fmrikit.errors.InputError`)."""
        check_number("--semantic-weight", self.semantic_weight, low=0)
        check_number("--uncond-prob", self.uncond_prob, low=0, high=1, high_open=True)


#: Paper: AdamW, lr 1e-4, weight decay 0.01; batch 16 per GPU.
NEUROPICTOR_SETTINGS = SupervisedSettings(epochs=10, batch_size=16, lr=1e-4, patience=None, weight_decay=0.01)


#: The flatmap autoencoder's training: 20 epochs of batch 32 at lr 5e-4 (the paper's initial rate), patience 5.
FLATMAP_AE_SETTINGS = SupervisedSettings(epochs=20, batch_size=32, lr=5e-4, patience=5)
