"""loss.png from results rows, with and without validation points and the kept-epoch marker."""

from __future__ import annotations

from pathlib import Path

from training.plots import plot_losses


def test_plot_writes_a_png(tmp_path: Path) -> None:
    rows = [
        {"step": s, "train_loss": 3.0 / s, "train_mean_token_accuracy": s / 4, "valid_loss": "",
         "valid_mean_token_accuracy": ""}
        for s in range(1, 5)
    ]  # fmt: skip
    rows[1].update(valid_loss=1.0, valid_mean_token_accuracy=0.5)
    rows[3].update(valid_loss=0.8, valid_mean_token_accuracy=0.7)
    for best in (None, 2):
        out = tmp_path / f"loss-{best}.png"
        plot_losses(rows, out, best_step=best)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_losses([{**r, "valid_loss": "", "valid_mean_token_accuracy": ""} for r in rows], tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 0
