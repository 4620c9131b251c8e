"""How to train one fold (``FitConfig``), apart from the Keras code that does it (``train.fit``).

Plain data with no TensorFlow behind it, so ``python -m train`` refuses a bad ``--lr`` or
``--ema`` at once instead of after the 7-17 s TensorFlow takes to load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from train.augment import Augment


@dataclass(frozen=True)
class FitConfig:
    """How to train one model.

    Attributes:
        epochs: maximum epochs (the 2D paper: 200; keep small on a CPU).
        batch_size: windows per batch.
        learning_rate: Adam's step size (papers: Adam, rate unstated; 1e-3 is a choice).
        seed: seeds Python, numpy, TensorFlow and the batch order.
        augment: random time shift, gain and noise on training batches, or nothing.
        augmentation: the augmentation settings used when ``augment`` is on.
        patience: stop after this many epochs without a better ``monitor`` (None: never).
        monitor: what picks the kept checkpoint: ``val_loss`` (lowest; the papers' rule) or
            ``val_accuracy`` (highest, window-level; robust when an overfitting model's loss
            rises on confident mistakes while its accuracy still improves).
        hop_fraction: hop between windows of a long clip, as a fraction of the window.
        schedule: learning rate over training: ``constant`` (the papers) or ``cosine``
            (decays from ``learning_rate`` to 0 over all epochs' steps).
        label_smoothing: cross-entropy against labels moved this far towards uniform (0: off).
        mixup: Beta(a, a) parameter for mixing pairs of training windows and their labels
            (0: off). Mixing happens after the other augmentation, training batches only.
        ema: decay of an exponential moving average of the weights, updated after every step
            (0: off; 0.99-0.999 is usual). Validation, the kept checkpoint and the final model
            use the average; the optimiser keeps stepping the raw weights.
    """

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    augment: bool = True
    augmentation: Augment = field(default_factory=Augment)
    patience: int | None = None
    hop_fraction: float = 0.5
    monitor: str = "val_loss"
    schedule: str = "constant"
    label_smoothing: float = 0.0
    mixup: float = 0.0
    ema: float = 0.0

    def __post_init__(self) -> None:
        # `not x >= 0`-style tests below also refuse NaN, which every comparison fails
        if not 0.0 < self.learning_rate < math.inf:
            raise ValueError(f"learning rate must be a positive number, not {self.learning_rate}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1 epoch (or off), not {self.patience}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, not {self.monitor!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label smoothing must be in [0, 1), not {self.label_smoothing}")
        if not 0.0 <= self.mixup <= MAX_MIXUP:
            raise ValueError(f"mixup must be 0 (off) or positive up to {MAX_MIXUP:g}, not {self.mixup}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema decay must be in [0, 1) (0: off), not {self.ema}")


# Largest mixup alpha: Beta(100, 100) already keeps the weight at 0.5 ± 0.04, and numpy's Beta sampler
# returns 0 (no mixing at all) for huge alphas such as 1e308.
MAX_MIXUP = 100.0

# What may choose the kept checkpoint, and whether lower (min) or higher (max) is better.
MONITORS = {"val_loss": "min", "val_accuracy": "max"}
SCHEDULES = ("constant", "cosine")


def hop_samples(window: int, fit: FitConfig) -> int:
    return max(1, int(round(window * fit.hop_fraction)))
