"""The optional hooks of ``train()`` on the real tiny Phi-3: ``on_event`` hears the job folder, the chosen
hyperparameters with reasons, metrics every step and every validated epoch, each checkpoint and the saved
adapter; ``should_stop`` stops with a resumable checkpoint, and the resumed job finishes the same steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from training.train import TrainConfig, TrainingInterrupted, train


def test_events_then_a_stop_and_a_resume(tmp_path: Path, family_train_file: Path) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    cfg = TrainConfig.build(
        training_file=family_train_file, base_model="tiny-phi3", output=tmp_path / "hooked", progress=False,
        n_epochs=3, early_stopping_patience=0, memorization_check=0, checkpoint_interval_s=0,
    )  # fmt: skip
    stop_at = 4
    with pytest.raises(TrainingInterrupted) as stopped:
        train(
            cfg,
            on_event=lambda kind, data: events.append((kind, data)),
            should_stop=lambda: sum(k == "metrics" and d["valid_loss"] == "" for k, d in events) >= stop_at,
        )
    kinds = [k for k, _ in events]
    assert kinds[:2] == ["job", "hyperparameters"]
    hp = events[1][1]
    assert hp["n_epochs"] == 3 and set(hp["reasons"]) >= {"batch_size", "learning_rate_multiplier"}
    steps = [d["step"] for k, d in events if k == "metrics" and d["valid_loss"] == ""]
    assert steps == list(range(1, stop_at + 1)) and stopped.value.step == stop_at
    assert kinds[-1] == "checkpoint" and "saved" not in kinds and not (tmp_path / "hooked").exists()

    resumed: list[tuple[str, dict[str, Any]]] = []
    job = events[0][1]["job"]
    out = train(
        TrainConfig.build(training_file=family_train_file, resume=job, progress=False),
        on_event=lambda kind, data: resumed.append((kind, data)),
    )
    assert resumed[0] == ("job", {"job": job, "resumed": True})
    after = [d["step"] for k, d in resumed if k == "metrics" and d["valid_loss"] == ""]
    assert after == list(range(stop_at + 1, hp["total_steps"] + 1))  # continues, no step twice
    assert sum(k == "metrics" and d["valid_loss"] != "" for k, d in events + resumed) == 3  # one per epoch
    assert resumed[-1][0] == "saved" and resumed[-1][1]["path"] == str(out) and out.exists()
