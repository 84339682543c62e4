"""Early stopping on the validation token accuracy, measured once per epoch.

The job stops when the accuracy has not improved (by more than ``min_delta``) for ``patience`` epochs, and the
adapter keeps the BEST epoch's weights: the highest accuracy, ties going to the lower validation loss (the
model that is surer of the same answers). Accuracies within ``tolerance`` of the highest count as ties: the
training loop sets it to one validation token, since on a small validation split one token is noise: an epoch
one token better but less sure of its answers is not the better adapter. Pure state, saved in every
checkpoint so a resumed job stops where an uninterrupted one would. ``patience=0`` turns it off: every epoch
runs and the last one is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EarlyStopping:
    patience: int  # epochs without improvement before stopping; 0 = never stop early
    min_delta: float = 0.0
    tolerance: float = 0.0  # accuracies this close to the highest are ties: the lower loss decides
    top_accuracy: float = -1.0  # the highest accuracy seen (patience counts improvements over it)
    best_accuracy: float = -1.0  # the kept epoch's
    best_loss: float = float("inf")
    best_epoch: int = 0  # 1-based; 0 = none yet
    bad_epochs: int = 0
    stopped_epoch: int = 0  # 0 = ran all epochs

    def update(self, epoch: int, accuracy: float, loss: float) -> bool:
        """Record one epoch's validation result; True when these weights are the new best."""
        improved = accuracy > self.top_accuracy + self.min_delta
        clearly = accuracy > self.top_accuracy + self.tolerance
        better = clearly or (accuracy >= self.top_accuracy - self.tolerance and loss < self.best_loss)
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        self.top_accuracy = max(self.top_accuracy, accuracy)
        if better:
            self.best_accuracy, self.best_loss, self.best_epoch = accuracy, loss, epoch
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def summary(self) -> str:
        if self.best_epoch == 0:
            return "no validation: the last epoch's weights are kept"
        if self.patience == 0:
            return (
                f"off: the last epoch's weights are kept (best validation accuracy: epoch {self.best_epoch})"
            )
        head = (
            f"stopped early after epoch {self.stopped_epoch}: validation accuracy did not improve for "
            f"{self.bad_epochs} epoch(s)"
            if self.stopped_epoch
            else "ran every epoch"
        )
        return (
            f"{head}; keeping epoch {self.best_epoch} (valid accuracy {self.best_accuracy:.3f}, "
            f"loss {self.best_loss:.4f})"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["best_loss"] == float("inf"):
            d["best_loss"] = None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EarlyStopping:
        d = dict(d)
        d.setdefault("top_accuracy", d.get("best_accuracy", -1.0))  # a checkpoint written before it existed
        if d.get("best_loss") is None:
            d["best_loss"] = float("inf")
        return cls(**d)
