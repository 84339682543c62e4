"""``loss.png``: training and validation loss and token accuracy per step, written next to the adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_losses(rows: list[dict[str, Any]], out: Path, *, best_step: int | None = None) -> None:
    """Two panels (loss, accuracy) from ``results.csv`` rows; a dotted line marks the kept (best) epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = [r["step"] for r in rows]
    ax1.plot(steps, [r["train_loss"] for r in rows], label="train", lw=1)
    ax2.plot(steps, [r["train_mean_token_accuracy"] for r in rows], label="train", lw=1)
    vrows = [r for r in rows if r["valid_loss"] != ""]
    if vrows:
        ax1.plot([r["step"] for r in vrows], [r["valid_loss"] for r in vrows], "o-", label="valid")
        ax2.plot(
            [r["step"] for r in vrows], [r["valid_mean_token_accuracy"] for r in vrows], "o-", label="valid"
        )
    ax1.set(title="loss (answer tokens)", xlabel="step")
    ax2.set(title="mean token accuracy", xlabel="step", ylim=(0, 1.02))
    for ax in (ax1, ax2):
        if best_step is not None:
            ax.axvline(best_step, ls=":", color="grey", label="kept")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
