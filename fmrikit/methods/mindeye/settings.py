"""Decoder sizes and training options, importable without torch (the CLI reads its defaults here)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fmrikit.checks import check_number, check_option
from fmrikit.engine.settings import SupervisedSettings

#: Batch size of new-subject training (TROI's stages 1 and 2 and the annotated-ROI baseline), as in the paper.
SUBJECT_BATCH_SIZE = 24
#: What the decoder predicts: the image's tokens (MindEye2, TROI: one level of patch features, P x C) or one
#: pooled vector.
TARGETS = ("tokens", "pooled")


@dataclass
class ModelSize:
    """Decoder widths (CPU defaults; MindEye2 uses hidden 4096, 4 blocks)."""

    hidden: int = 256
    n_blocks: int = 2
    proj_hidden: int = 256
    dropout: float = 0.15

    def check(self) -> None:
        """Refuse sizes out of range, naming the command-line option (:class:`~fmrikit.errors.InputError`)."""
        check_number("--hidden", self.hidden, low=1)
        check_number("--blocks", self.n_blocks, low=1)
        check_number("projector width", self.proj_hidden, low=1)
        check_number("dropout", self.dropout, low=0, high=1, high_open=True)


@dataclass
class TrainSettings:
    """Optimisation options of one training stage.

    Attributes
    ----------
    epochs : int
    batch_size : int
        Trials per step and process, split evenly over the subjects.
    lr : float
        Peak learning rate (one-cycle schedule) or the constant rate.
    weight_decay : float
    schedule : {"onecycle", "constant"}
    mixco_fraction : float
        Fraction of the epochs trained with MixCo; soft CLIP afterwards.
    mixco_beta : float
    temperature : float
        Softmax temperature of the contrastive losses.
    mse_weight : float
        Weight of the embedding-regression MSE (TROI eq. 4).
    seed : int
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "onecycle"
    mixco_fraction: float = 1 / 3
    mixco_beta: float = 0.15
    temperature: float = 0.05
    mse_weight: float = 1.0
    seed: int = 0

    def check(self) -> None:
        """Refuse values out of range (NaN and infinities included), naming the command-line option.

        Raises
        ------
        InputError
        """
        check_number("--epochs", self.epochs, low=1)
        check_number("--batch-size", self.batch_size, low=2)
        check_number("--lr", self.lr, low=0, low_open=True)
        check_number("--weight-decay", self.weight_decay, low=0)
        check_number("--temperature", self.temperature, low=0, low_open=True)
        check_number("--mse-weight", self.mse_weight, low=0)
        check_number("MixCo fraction", self.mixco_fraction, low=0, high=1)
        check_number("MixCo beta", self.mixco_beta, low=0, low_open=True)
        check_option("learning-rate schedule", self.schedule, ("onecycle", "constant"))


@dataclass
class PriorSize:
    """Width and depth of the prior transformer (MindEye2's is 6 layers over 52 heads x 64)."""

    layers: int = 4
    heads: int = 4
    head_dim: int = 32

    def check(self) -> None:
        """Refuse sizes below 1 (:class:`~fmrikit.errors.InputError`)."""
        for name, value in (("prior layers", self.layers), ("prior heads", self.heads),
                            ("prior head width", self.head_dim)):
            check_number(name, value, low=1)


@dataclass(frozen=True)
class DecoderPreset:
    """A named configuration of the decoder commands (``--preset``): sizes, targets, training of each stage.

    Attributes
    ----------
    name : str
    size : ModelSize
    features : str
        Image feature extractor of the targets.
    targets : {"tokens", "pooled"}
    pretrain : TrainSettings
        Cross-subject pretraining (``pretrain decoder``).
    subject : TrainSettings
        A new subject (``adapt-subject decoder``, TROI's stage 2).
    """

    name: str
    size: ModelSize = field(default_factory=ModelSize)
    features: str = "gabor"
    targets: str = "tokens"
    pretrain: TrainSettings = field(default_factory=TrainSettings)
    subject: TrainSettings = field(default_factory=lambda: TrainSettings(batch_size=SUBJECT_BATCH_SIZE))


#: ``small``: CPU-sized (the defaults above), but 3 pretraining epochs: on the simulated world a backbone pretrained
#: longer transfers worse to a new subject (TROI study: a new subject adapted on a backbone of 3 epochs beats one on a
#: randomly initialised backbone by +0.03 / +0.04 retrieval; on a backbone of 30 epochs, which memorises its 2,100
#: training trials per subject, it loses by 0.03 / 0.01).
#: ``paper``: MindEye2 / TROI as published (Scotti et al. 2024, ``src/Train.py``; Lin et al. 2025, section 3.1):
#: hidden 4096, 4 residual blocks, CLIP image tokens as targets (``--features clip --image-model``: the final layer's
#: patch tokens; MindEye2's projector width equals the token width, 1024 for ViT-L/14), 150 epochs of batch 24 at a
#: one-cycle peak lr of 3e-4, MixCo for the first third.
DECODER_PRESETS: dict[str, DecoderPreset] = {
    "small": DecoderPreset("small", pretrain=TrainSettings(epochs=3)),
    "paper": DecoderPreset("paper", size=ModelSize(hidden=4096, n_blocks=4, proj_hidden=1024), features="clip",
                           pretrain=TrainSettings(epochs=150, batch_size=24, lr=3e-4),
                           subject=TrainSettings(epochs=150, batch_size=SUBJECT_BATCH_SIZE, lr=3e-4)),
}


def decoder_preset(name: str) -> DecoderPreset:
    """The preset called ``name`` (:data:`DECODER_PRESETS`).

    Raises
    ------
    InputError
        Unknown name.
    """
    return DECODER_PRESETS[check_option("--preset", name, DECODER_PRESETS)]


def with_options(settings, **options):
    """``settings`` (a dataclass) with the options that are not None replaced: explicit options override a preset."""
    return replace(settings, **{k: v for k, v in options.items() if v is not None})


#: The diffusion prior's training: up to 100 epochs of batch 64 at lr 3e-4, patience 10.
PRIOR_SETTINGS = SupervisedSettings(epochs=100, batch_size=64, lr=3e-4, patience=10)
