"""NeuroPictor's options, the flatmap autoencoder's sizes and the training settings of both, per preset (importable
without torch).

Presets (``--preset``): ``paper`` is the published configuration (Huo et al. 2024, Sec. 4.1 and Supplementary 1),
``small`` the CPU-sized default. Iteration counts are turned into epochs at NSD's size (8 subjects' repeat-averaged
training images for pretraining, one subject's for refining).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from fmrikit.checks import check_number, check_option
from fmrikit.engine.settings import SupervisedSettings
from fmrikit.errors import InputError

PRESETS = ("small", "paper")


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
    average_repeats : bool
        Train on each image's flatmap averaged over its trials, as the paper trains and evaluates ("we average
        three trials of fMRI signal of the same images"); else on single trials. Test images are always
        averaged.
    """

    semantic_weight: float = 0.1
    uncond_prob: float = 0.05
    train_encoder: bool = True
    gradient_checkpointing: bool = False
    average_repeats: bool = True

    def check(self) -> None:
        """Refuse loss options out of range, naming the command-line option (:class:`~fmrikit.errors.InputError`)."""
        check_number("--semantic-weight", self.semantic_weight, low=0)
        check_number("--uncond-prob", self.uncond_prob, low=0, high=1, high_open=True)


#: Paper: AdamW, lr 1e-4, weight decay 0.01; batch 16 per GPU.
NEUROPICTOR_SETTINGS = SupervisedSettings(epochs=10, batch_size=16, lr=1e-4, patience=None, weight_decay=0.01)

#: NeuroPictor's training per preset and stage. ``paper``: AdamW at 1e-4, weight decay 0.01, 16 per GPU (64 on 4
#: GPUs to pretrain, 32 on 2 to refine); pretraining 100k iterations of 64 over about 64k image pairs = 100
#: epochs, refining 60k iterations of 32 over one subject's 8859 training images = 217 epochs. ``small``: 10
#: epochs each.
NEUROPICTOR_PRESETS: dict[str, dict[str, SupervisedSettings]] = {
    "small": {"pretrain": NEUROPICTOR_SETTINGS, "adapt": NEUROPICTOR_SETTINGS},
    "paper": {"pretrain": replace(NEUROPICTOR_SETTINGS, epochs=100),
              "adapt": replace(NEUROPICTOR_SETTINGS, epochs=217)},
}


def neuropictor_settings(preset: str = "small", stage: str = "pretrain", **overrides: Any) -> SupervisedSettings:
    """A stage's (``pretrain`` or ``adapt``) training settings of :data:`NEUROPICTOR_PRESETS`, with some fields
    replaced (None values are ignored)."""
    check_option("--preset", preset, NEUROPICTOR_PRESETS)
    check_option("stage", stage, ("pretrain", "adapt"))
    return replace(NEUROPICTOR_PRESETS[preset][stage], **{k: v for k, v in overrides.items() if v is not None})


#: The flatmap autoencoder's training: up to 60 epochs of batch 32 at lr 5e-4 (the paper's initial rate), patience 5.
#: 60 because on the simulated world 20 were undertrained (best epoch the last; held-out MSE / mean map 0.681 at 20
#: epochs, 0.567 at 60).
FLATMAP_AE_SETTINGS = SupervisedSettings(epochs=60, batch_size=32, lr=5e-4, patience=5)

#: The flatmap autoencoder's training per preset. ``paper`` (Supplementary 1): AdamW at 5e-4 (torch's default
#: weight decay 0.01; the paper's linear decay is not reproduced: the rate stays constant), batch 384 on 8 GPUs =
#: 48 per GPU, 120k iterations (on UK Biobank; at NSD's 8 x 8859 repeat-averaged images that is 650 epochs), no
#: early stopping.
FLATMAP_AE_TRAINING: dict[str, SupervisedSettings] = {
    "small": FLATMAP_AE_SETTINGS,
    "paper": SupervisedSettings(epochs=650, batch_size=48, lr=5e-4, patience=None, weight_decay=0.01),
}


def flatmap_ae_settings(preset: str = "small", **overrides: Any) -> SupervisedSettings:
    """The flatmap autoencoder's training settings of :data:`FLATMAP_AE_TRAINING`, with some fields replaced (None
    values are ignored)."""
    check_option("--preset", preset, FLATMAP_AE_TRAINING)
    return replace(FLATMAP_AE_TRAINING[preset], **{k: v for k, v in overrides.items() if v is not None})


def check_architecture(image_size: int, patch_size: int, width: int, depth: int, heads: int,
                        label: str = "encoder") -> None:
    """Raise :class:`InputError` unless the sizes make a valid ViT with 2D sin-cos positions."""
    if min(image_size, patch_size, width, depth, heads) < 1:
        raise InputError(f"invalid flatmap {label} size", expected="positive sizes",
                         found=f"image {image_size}, patch {patch_size}, width {width}, depth {depth}, heads {heads}")
    if image_size % patch_size:
        raise InputError(f"invalid flatmap {label} size", expected=f"flatmap size divisible by the patch size "
                         f"{patch_size}", found=str(image_size))
    if width % heads or width % 4:
        raise InputError(f"invalid flatmap {label} size", expected=f"width divisible by 4 and by the {heads} heads",
                         found=str(width))


#: Architectures: NeuroPictor's (a GPU model) and a small one for CPUs and tests.
FLATMAP_AE_PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(image_size=256, patch_size=16, width=1024, depth=24, heads=16),
    "small": dict(image_size=64, patch_size=16, width=128, depth=4, heads=4),
}


@dataclass
class FlatmapAESize:
    """Architecture of the flatmap autoencoder (:class:`FlatmapAutoencoder`'s init arguments).

    Attributes
    ----------
    image_size : int
        Flatmap side, pixels (the flatmap cache is built at this size).
    patch_size, width, depth, heads : int
    decoder_width, decoder_depth, decoder_heads : int or None
        None: the encoder's.
    mlp_ratio : float
    """

    image_size: int = 256
    patch_size: int = 16
    width: int = 1024
    depth: int = 24
    heads: int = 16
    decoder_width: int | None = None
    decoder_depth: int | None = None
    decoder_heads: int | None = None
    mlp_ratio: float = 4.0

    @classmethod
    def from_preset(cls, name: str = "small", **overrides: Any) -> FlatmapAESize:
        """A preset of :data:`FLATMAP_AE_PRESETS` with some sizes replaced (None values are ignored).

        Raises
        ------
        InputError
            Unknown preset or size name.
        """
        check_option("--preset", name, FLATMAP_AE_PRESETS)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise InputError("unknown flatmap autoencoder size", expected=", ".join(sorted(names)),
                             found=", ".join(unknown))
        size = cls(**{**FLATMAP_AE_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}})
        size.check()
        return size

    def check(self) -> None:
        """Raise :class:`InputError` unless encoder and decoder are valid."""
        check_architecture(self.image_size, self.patch_size, self.width, self.depth, self.heads)
        def own(value, default):
            return default if value is None else value

        check_architecture(self.image_size, self.patch_size, own(self.decoder_width, self.width),
                            own(self.decoder_depth, self.depth), own(self.decoder_heads, self.heads), label="decoder")
        if not self.mlp_ratio > 0:
            raise InputError("invalid flatmap autoencoder size", expected="mlp_ratio > 0", found=str(self.mlp_ratio))
