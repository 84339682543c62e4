"""Auto hyperparameters: a token budget per step for small sets, the OpenAI/Foundry rules for large ones,
explicit values always honoured, a reason for every choice."""

from __future__ import annotations

import pytest

from training.hparams import BASE_LEARNING_RATE, MIN_STEPS, auto_hyperparameters


def test_openai_rules_without_a_token_budget() -> None:
    family = auto_hyperparameters(9, step_tokens=None)
    assert (family.n_epochs, family.batch_size, family.learning_rate_multiplier) == (12, 1, 1.0)
    assert family.learning_rate == pytest.approx(2e-4) == BASE_LEARNING_RATE
    assert auto_hyperparameters(2, step_tokens=None).n_epochs == 25  # capped
    assert auto_hyperparameters(500, step_tokens=None).n_epochs == 3
    assert auto_hyperparameters(20_000, step_tokens=None).n_epochs == 1
    mid = auto_hyperparameters(5_000, step_tokens=None)
    assert mid.batch_size == 10 and mid.learning_rate_multiplier == pytest.approx((10 / 8) ** 0.5, rel=1e-3)
    assert auto_hyperparameters(10**6, step_tokens=None).batch_size == 64
    assert set(family.reasons) == {"n_epochs", "batch_size", "learning_rate_multiplier", "learning_rate"}


def test_small_sets_fill_each_step_to_the_token_budget() -> None:
    hp = auto_hyperparameters(9, mean_tokens=23, step_tokens=96)
    assert 2 <= hp.batch_size <= 9 and hp.batch_size * 23 == pytest.approx(96, rel=0.35)
    steps = -(-9 // hp.batch_size) * hp.n_epochs
    assert steps >= MIN_STEPS or hp.n_epochs == 25
    assert hp.learning_rate > BASE_LEARNING_RATE  # more examples per step, larger steps
    assert "budget 96" in hp.reasons["batch_size"] and "optimizer steps" in hp.reasons["n_epochs"]
    # steps of long examples already fill the budget: one example per step, the OpenAI rules
    long = auto_hyperparameters(40, mean_tokens=400, step_tokens=96)
    assert (long.batch_size, long.learning_rate_multiplier) == (1, 1.0)


def test_large_sets_keep_the_openai_rules_and_explicit_values_win() -> None:
    big = auto_hyperparameters(50_000, mean_tokens=300, step_tokens=96)
    assert (
        (big.batch_size, big.n_epochs)
        == (64, 1)
        == (auto_hyperparameters(50_000, step_tokens=None).batch_size, 1)
    )
    given = auto_hyperparameters(9, mean_tokens=23, n_epochs=2, batch_size=4, learning_rate_multiplier=0.5)
    assert (given.n_epochs, given.batch_size, given.learning_rate) == (2, 4, 1e-4)
    assert {given.reasons[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier")} == {"given"}
    only_batch = auto_hyperparameters(9, mean_tokens=23, batch_size=1)
    assert only_batch.batch_size == 1 and only_batch.learning_rate_multiplier == 1.0
