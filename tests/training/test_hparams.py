"""Auto hyperparameters: a token budget per step for small sets, the OpenAI/Foundry rules for large ones,
explicit values always honoured, a reason for every choice."""

from __future__ import annotations

import pytest

from training.hparams import BASE_LEARNING_RATE, DEFAULT_STEP_TOKENS, MIN_STEPS, auto_hyperparameters


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
    family = auto_hyperparameters(9, mean_tokens=23)  # the family set: 9 QA pairs of ~23 tokens
    assert (family.n_epochs, family.batch_size, family.learning_rate_multiplier) == (10, 3, 3.0)
    assert "at most 3 so an epoch has ≥ 3 steps" in family.reasons["batch_size"]
    assert -(-9 // family.batch_size) * family.n_epochs >= MIN_STEPS
    assert "optimizer steps" in family.reasons["n_epochs"]
    # the --kb set of the lumen example: 134 examples of ~151 tokens → ~453 tokens a step
    kb = auto_hyperparameters(134, mean_tokens=151)
    assert (kb.n_epochs, kb.batch_size, kb.learning_rate_multiplier) == (3, 3, 3.0)
    assert kb.batch_size * 151 <= DEFAULT_STEP_TOKENS
    # examples that already fill the budget: one per step, the OpenAI rules
    long = auto_hyperparameters(40, mean_tokens=600)
    assert (long.batch_size, long.learning_rate_multiplier, long.n_epochs) == (1, 1.0, 3)
    # steps are filled evenly: 16 examples, 5 fit the budget → 4 steps of 4 rather than 5, 5, 5, 1
    assert auto_hyperparameters(16, mean_tokens=100).batch_size == 4


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
    only_batch = auto_hyperparameters(9, mean_tokens=23, batch_size=1)  # the old rules for the rest
    assert (only_batch.batch_size, only_batch.n_epochs, only_batch.learning_rate_multiplier) == (1, 12, 1.0)
