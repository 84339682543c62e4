"""Automatic hyperparameters: what ``auto`` means for epochs, batch size and learning rate, with a printed
reason for every choice. Explicit values are always used as given (``batch_size`` = examples per step).

Two regimes, chosen by the data:

- **Large sets** (the OpenAI/Foundry rules): ~0.2 % of the examples per step (1..64), 3 epochs (fewer for huge
  sets, ≤ 25k example-visits), learning-rate multiplier 1.0 up to batch 8 and √(batch/8) above (max 4).
- **Small sets**, where that rule gives steps of a few dozen tokens: on a CPU (and on a GPU) the cost of a
  step is mostly reading the weights (the 262k-row output layer alone is ~40 % of a QA step): on 2 shared
  cores one 23-token example took 0.9 s a step, three packed (69 tokens) 1.3 s (eval/RESULTS.md). So the step
  is filled to a **token budget** (``step_tokens`` useful, i.e. non-padding, tokens; packing makes them all
  useful), the number of epochs is set so the job still takes at least ``MIN_STEPS`` optimizer steps, and the
  learning rate grows with the examples per step (family set: batch 3 × 3 with the linear decay → 9/9 seen,
  kept epoch 7 of 10; × 2 constant → 8/9; batch 9 × 4 constant → 7/9; eval/RESULTS.md). Early stopping
  (training/early_stop.py) ends the job once the validation accuracy stops improving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# Effective learning rate = multiplier × BASE_LEARNING_RATE. 2e-4 is the measured sweet spot for LoRA r=16 on
# the 270M model at batch 1–8 (see training/calibration-notes.md).
BASE_LEARNING_RATE = 2e-4
DEFAULT_STEP_TOKENS = 512  # useful tokens per step: beyond ~500 a CPU step is compute-bound (RESULTS.md)
MIN_STEPS = 30  # a small set still gets this many optimizer steps (memorising needs steps, not only tokens)
SMALL_SET_EPOCHS = 10  # ... spread over at most this many epochs: so ≥ 3 steps per epoch
MAX_SMALL_EPOCHS = 25
MAX_LR_MULTIPLIER = 4.0

Auto = Literal["auto"]


@dataclass(frozen=True)
class Hyperparameters:
    n_epochs: int
    batch_size: int  # examples per optimizer step
    learning_rate_multiplier: float
    learning_rate: float
    reasons: dict[str, str]


def openai_batch_size(n_examples: int) -> int:
    return int(min(64, max(1, round(n_examples * 0.002))))


def auto_hyperparameters(
    n_examples: int,
    *,
    mean_tokens: float | None = None,
    n_epochs: int | Auto = "auto",
    batch_size: int | Auto = "auto",
    learning_rate_multiplier: float | Auto = "auto",
    step_tokens: int | None = DEFAULT_STEP_TOKENS,
) -> Hyperparameters:
    """Choose what is ``auto`` from the data size (and, for small sets, the mean tokens per example).

    ``step_tokens=None`` (or no ``mean_tokens``) gives the plain OpenAI-style rules for every size.
    """
    n = max(1, n_examples)
    reasons: dict[str, str] = {}
    budget = step_tokens is not None and mean_tokens is not None and mean_tokens > 0
    openai_batch = openai_batch_size(n)
    by_budget = False
    # ── batch size ──
    if batch_size != "auto":
        reasons["batch_size"] = "given"
    elif budget and openai_batch * mean_tokens < step_tokens:  # type: ignore[operator]
        assert step_tokens is not None and mean_tokens is not None
        wanted = max(1, round(step_tokens / mean_tokens))
        most = math.ceil(n / math.ceil(MIN_STEPS / SMALL_SET_EPOCHS))  # keep ≥ 3 steps per epoch
        steps = math.ceil(n / min(wanted, most, n))
        batch_size = math.ceil(n / steps)  # that many steps, evenly filled
        by_budget = batch_size > openai_batch
        capped = f"; at most {most} so an epoch has ≥ 3 steps" if wanted > most else ""
        reasons["batch_size"] = (
            f"{n} examples of ~{mean_tokens:.0f} tokens: {batch_size} per step ≈ "
            f"{batch_size * mean_tokens:.0f} useful tokens (budget {step_tokens}{capped}; "
            f"the ~0.2 % rule would give {openai_batch})"
        )
    else:
        batch_size = openai_batch
        reasons["batch_size"] = f"~0.2% of {n} examples, clamped to 1..64 → {batch_size}"
    batch_size = int(batch_size)
    steps_per_epoch = math.ceil(n / batch_size)
    # ── epochs ──
    if n_epochs != "auto":
        reasons["n_epochs"] = "given"
    elif n * 3 > 25_000:
        n_epochs = max(1, 25_000 // n)
        reasons["n_epochs"] = f"{n} examples: {n_epochs} epoch(s) keeps it under 25k example-visits"
    elif by_budget and steps_per_epoch * 3 < MIN_STEPS:
        n_epochs = min(MAX_SMALL_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))
        reasons["n_epochs"] = (
            f"{steps_per_epoch} step(s) per epoch: {n_epochs} epochs for ≥ {MIN_STEPS} optimizer steps "
            f"(max {MAX_SMALL_EPOCHS}; early stopping may end sooner)"
        )
    elif n * 3 < 100:
        n_epochs = min(MAX_SMALL_EPOCHS, math.ceil(100 / n))
        reasons["n_epochs"] = f"{n} examples: {n_epochs} epochs so each run sees ~100 examples (max 25)"
    else:
        n_epochs = 3
        reasons["n_epochs"] = f"{n} examples: the standard 3 epochs"
    # ── learning rate ──
    if learning_rate_multiplier != "auto":
        reasons["learning_rate_multiplier"] = "given"
    elif by_budget:
        learning_rate_multiplier = float(min(MAX_LR_MULTIPLIER, batch_size))
        reasons["learning_rate_multiplier"] = (
            f"{batch_size} examples per step: × {learning_rate_multiplier:g} (one per example, max "
            f"{MAX_LR_MULTIPLIER:g}; with the linear decay)"
        )
    else:
        learning_rate_multiplier = round(min(MAX_LR_MULTIPLIER, max(1.0, math.sqrt(batch_size / 8))), 3)
        reasons["learning_rate_multiplier"] = (
            f"batch {batch_size}: {learning_rate_multiplier} (1.0 up to batch 8, √(batch/8) above, max 4)"
        )
    lr = float(learning_rate_multiplier) * BASE_LEARNING_RATE
    reasons["learning_rate"] = f"{learning_rate_multiplier} × base {BASE_LEARNING_RATE} = {lr:.2e}"
    return Hyperparameters(int(n_epochs), batch_size, float(learning_rate_multiplier), lr, reasons)
