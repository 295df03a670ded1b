"""Which epoch of a training run is kept: the one rule that ``train.fit`` and ``plots`` share.

``brainlab.train.fit`` saves ``best.keras`` at the epoch with the best monitored value, by default
the lowest validation loss (the training loss when there is no validation data), and
``brainlab.plots.training_curves`` marks that same epoch. Both ask this module, so the figure
cannot point at an epoch other than the model kept.

>>> kept_epoch.monitored()                          # ("val_loss", "min")
>>> kept_epoch.best_row(rows, "val_loss", "min")    # the row (one epoch's logs) that is kept
"""
from __future__ import annotations

import math

__all__ = ["MONITOR", "best_row", "monitored"]

MONITOR = "val_loss"  # what fit watches unless told otherwise


def monitored(monitor: str = MONITOR, has_validation: bool = True) -> tuple[str, str]:
    """The quantity that picks the kept epoch, and ``"min"`` or ``"max"`` (which way is better).

    Without validation data a ``val_`` quantity falls back to its training counterpart.
    Accuracy-like quantities (their name contains "acc") are better higher, the rest lower.
    """
    if not has_validation and monitor.startswith("val_"):
        monitor = monitor[len("val_"):]
    return monitor, "max" if "acc" in monitor else "min"


def best_row(rows, monitor: str, mode: str):
    """The row (a dict of one epoch's logs) with the best ``monitor``, the first one on a tie; None if none has it.

    The first on a tie, as Keras's ModelCheckpoint saves only on a strict improvement. Missing and
    NaN values are skipped.
    """
    rows = [r for r in rows if r.get(monitor) is not None and not math.isnan(r[monitor])]
    if not rows:
        return None
    return (min if mode == "min" else max)(rows, key=lambda r: r[monitor])
