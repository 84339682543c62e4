"""Auto hyperparameters (like OpenAI/Foundry), config validation and deterministic paraphrase augmentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.augment import augment_examples, candidates, paraphrase
from training.train import BASE_LEARNING_RATE, ConfigError, TrainConfig, auto_hyperparameters


def test_auto_hyperparameters_scale_with_data_size() -> None:
    family = auto_hyperparameters(9)
    assert (family.n_epochs, family.batch_size, family.learning_rate_multiplier) == (12, 1, 1.0)
    assert family.learning_rate == pytest.approx(2e-4) == BASE_LEARNING_RATE
    assert auto_hyperparameters(2).n_epochs == 25  # capped
    assert auto_hyperparameters(500).n_epochs == 3
    assert auto_hyperparameters(20_000).n_epochs == 1
    mid = auto_hyperparameters(5_000)
    assert mid.batch_size == 10 and mid.learning_rate_multiplier == pytest.approx((10 / 8) ** 0.5, rel=1e-3)
    assert auto_hyperparameters(10**6).batch_size == 64
    given = auto_hyperparameters(9, n_epochs=2, batch_size=4, learning_rate_multiplier=0.5)
    assert (given.n_epochs, given.batch_size, given.learning_rate) == (2, 4, 1e-4)
    assert set(family.reasons) == {"n_epochs", "batch_size", "learning_rate_multiplier", "learning_rate"}


def test_config_accepts_auto_strings_and_collects_every_problem(
    family_train_file: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig.build(
        training_file=str(family_train_file), n_epochs="auto", batch_size="4", learning_rate_multiplier="0.5"
    )
    assert (cfg.n_epochs, cfg.batch_size, cfg.learning_rate_multiplier) == ("auto", 4, 0.5)
    with pytest.raises(ConfigError) as err:
        TrainConfig.build(
            training_file=tmp_path / "missing.jsonl", n_epochs=0, lora_r=128, suffix="bad name!"
        )
    text = str(err.value)
    for field in ("training_file", "n_epochs", "lora_r", "suffix"):
        assert field in text
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig.build(training_file=family_train_file, batch_size="many")


def test_paraphrases_are_deterministic_distinct_and_keep_the_subject() -> None:
    first = paraphrase("老大是谁?", 4, seed=3)
    assert first == paraphrase("老大是谁?", 4, seed=3)
    assert len(first) == 4 and len(set(first)) == 4 and "老大是谁?" not in first
    assert all("老大" in p for p in first)
    assert "谁是老大?" in candidates("老大是谁?")
    assert paraphrase("老大是谁?", 1, seed=0) == paraphrase("老大是谁?", 1, seed=99)  # stable first choice
    assert "哥哥多大了?" in candidates("哥哥几岁?")
    english = candidates("What is the price of tea?")
    assert "What's the price of tea?" in english and len(english) >= 3
    examples = [[{"role": "user", "content": "老二是谁?"}, {"role": "assistant", "content": "Mike"}]]
    out = augment_examples(examples, 2, seed=0)
    assert len(out) == 3 and out[0] == examples[0]
    assert all(e[1]["content"] == "Mike" for e in out) and out[1][0]["content"] != "老二是谁?"
