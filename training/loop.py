"""The training loop: one optimizer step at a time over packed batches, validation and early stopping at each
epoch's end, resumable checkpoints (on a timer, on ``stop_after_steps`` and on Ctrl-C).

The recipe (training/train.py) builds a :class:`Setup` and calls :func:`run_loop`; everything the loop needs
to continue later is in :class:`training.checkpoint.Progress`.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.checkpoint import Progress, TrainingInterrupted
from training.early_stop import EarlyStopping
from training.encoding import Encoded
from training.hparams import Hyperparameters
from training.models import BaseLLM

if TYPE_CHECKING:
    from training.dataset import TrainingSet
    from training.train_config import TrainConfig


OnEvent = Callable[[str, dict[str, Any]], None]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Setup:
    """What the loop works on, built once by :func:`train` (in the order of the fields)."""

    cfg: TrainConfig
    job: Path
    base: BaseLLM
    model: Any  # the peft model
    tokenizer: Any
    data: TrainingSet
    train_rows: list[Encoded]
    valid_rows: list[Encoded]
    hp: Hyperparameters
    optimizer: Any
    scheduler: Any
    steps_per_epoch: int
    total_steps: int
    # Optional hooks (a job service drives them; ``imprint train`` leaves them off): events as
    # (kind, data) — "metrics" after each step and each validated epoch end, "checkpoint" after a save —
    # and a stop check polled after each step (True: checkpoint, then TrainingInterrupted).
    on_event: OnEvent | None = None
    should_stop: Callable[[], bool] | None = None

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of one epoch: a function of (seed, epoch) only, so a resumed job repeats it."""
    order = list(range(n))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return order


def run_loop(
    s: Setup, progress: Progress, best: dict[str, Any] | None
) -> tuple[Progress, dict[str, Any] | None, EarlyStopping]:
    """Train from ``progress.step`` until the last step, early stopping, ``stop_after_steps`` or Ctrl-C."""
    from tqdm import tqdm

    from training.checkpoint import save_checkpoint

    cfg = s.cfg
    stopper = (
        EarlyStopping.from_dict(progress.early_stop)
        if progress.early_stop
        else EarlyStopping(cfg.early_stopping_patience, tolerance=one_token(s.valid_rows))
    )
    bar = tqdm(
        total=s.total_steps, initial=progress.step, desc="train", unit="step", disable=not cfg.progress,
        file=sys.stderr,
    )  # fmt: skip
    last_save = time.monotonic()

    def checkpoint() -> None:
        nonlocal last_save
        progress.early_stop = stopper.to_dict()
        save_checkpoint(s.job, s.model, s.optimizer, progress, best)
        last_save = time.monotonic()
        s.emit("checkpoint", {**progress.rows[-1], "path": str(s.job / "checkpoint")})

    try:
        while progress.step < s.total_steps:
            row = train_step(s, progress)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_mean_token_accuracy']:.2f}")
            bar.update(1)
            s.emit("metrics", {**row, "total_steps": s.total_steps})
            if progress.step % s.steps_per_epoch == 0 or progress.step == s.total_steps:
                best = end_of_epoch(s, progress, stopper, best)
                if s.valid_rows:
                    s.emit("metrics", {**progress.rows[-1], "total_steps": s.total_steps})
                if stopper.should_stop and progress.step < s.total_steps:
                    stopper.stopped_epoch = row["epoch"]
                    break
                if (
                    progress.step < s.total_steps
                    and time.monotonic() - last_save >= cfg.checkpoint_interval_s
                ):
                    checkpoint()
            stop_now = cfg.stop_after_steps is not None and progress.step >= cfg.stop_after_steps
            stop_now = stop_now or (s.should_stop is not None and s.should_stop())
            if stop_now and progress.step < s.total_steps:
                checkpoint()
                raise TrainingInterrupted(s.job, progress.step, s.total_steps)
    except KeyboardInterrupt:
        bar.close()
        checkpoint()
        raise TrainingInterrupted(s.job, progress.step, s.total_steps) from None
    bar.close()
    if stopper.best_epoch:
        say(f"early stopping: {stopper.summary()}")
    return progress, best, stopper


def train_step(s: Setup, progress: Progress) -> dict[str, Any]:
    """One optimizer step on the next batch of the plan; appends and returns its results.csv row."""
    import torch

    from training.encoding import make_batch, to_device
    from training.kernels import row_multiple
    from training.loss import answer_loss

    epoch, offset = divmod(progress.step, s.steps_per_epoch)
    order = epoch_order(len(s.train_rows), s.cfg.seed, epoch)
    idx = order[offset * s.hp.batch_size : (offset + 1) * s.hp.batch_size]
    t0 = time.perf_counter()
    batch = make_batch(
        [s.train_rows[i] for i in idx],
        pad_id(s.tokenizer),
        packing=s.cfg.packing,
        multiple_of=row_multiple(s.model),
    )
    progress.computed_tokens += int(batch["input_ids"].numel())
    progress.useful_tokens += int(batch["tokens"])
    loss, correct, count = answer_loss(s.model, to_device(batch, next(s.model.parameters()).device))
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in s.optimizer.param_groups for p in g["params"]], 1.0)
    s.optimizer.step()
    s.scheduler.step()
    progress.loop_seconds += time.perf_counter() - t0
    progress.step += 1
    row: dict[str, Any] = {
        "step": progress.step,
        "epoch": epoch + 1,
        "train_loss": round(float(loss.detach()), 5),
        "train_mean_token_accuracy": round(correct / max(1, count), 5),
        "valid_loss": "",
        "valid_mean_token_accuracy": "",
    }
    progress.rows.append(row)
    return row


def one_token(rows: list[Encoded]) -> float:
    """One validation answer token's share of the validation accuracy (a hair more: float rounding)."""
    tokens = sum(r.trained for r in rows)
    return (1 + 1e-6) / tokens if tokens else 0.0


def pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def end_of_epoch(
    s: Setup, progress: Progress, stopper: EarlyStopping, best: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Validate, update early stopping, and snapshot the LoRA weights when this epoch is the best so far."""
    from training.loss import evaluate

    if not s.valid_rows:
        return best
    row = progress.rows[-1]
    t0 = time.perf_counter()
    vloss, vacc = evaluate(
        s.model,
        s.valid_rows,
        pad_id(s.tokenizer),
        batch_size=s.hp.batch_size * 2,  # padded (legacy) layout only; packed batches go by tokens
        packing=s.cfg.packing,
    )
    progress.valid_seconds += time.perf_counter() - t0
    row.update(valid_loss=round(vloss, 5), valid_mean_token_accuracy=round(vacc, 5))
    improved = stopper.update(row["epoch"], vacc, vloss)
    say(
        f"epoch {row['epoch']}/{s.hp.n_epochs}: train loss {row['train_loss']:.4f}, valid loss {vloss:.4f}, "
        f"valid accuracy {vacc:.3f}{' (best)' if improved else ''}"
    )
    return snapshot(s.model) if improved else best


def snapshot(model: Any) -> dict[str, Any]:
    """A copy of the LoRA weights (small: only the adapter's tensors)."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def valid_accuracy(s: Setup) -> float | None:
    """Token accuracy on the validation rows (None without a validation split)."""
    from training.loss import evaluate

    if not s.valid_rows:
        return None
    batch = s.hp.batch_size * 2
    return evaluate(s.model, s.valid_rows, pad_id(s.tokenizer), batch_size=batch, packing=s.cfg.packing)[1]


def keep_best_weights(model: Any, best: dict[str, Any]) -> None:
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, best)


def train_on(s: Setup, examples: list[Any], steps: int) -> None:
    """``steps`` optimizer steps on ``examples`` (one packed batch) at the peak learning rate: the extra
    training the memorisation check gives the questions the adapter still misses."""
    import torch

    from training.encoding import Encoder, make_batch, to_device
    from training.kernels import row_multiple
    from training.loss import answer_loss

    rows = Encoder(s.tokenizer, s.base.chat_template, max_len=s.cfg.max_seq_len).all(examples)
    batch = to_device(
        make_batch(rows, pad_id(s.tokenizer), packing=s.cfg.packing, multiple_of=row_multiple(s.model)),
        next(s.model.parameters()).device,
    )
    for group in s.optimizer.param_groups:
        group["lr"] = s.hp.learning_rate
    s.model.train()
    for _ in range(steps):
        loss, _, _ = answer_loss(s.model, batch)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in s.optimizer.param_groups for p in g["params"]], 1.0)
        s.optimizer.step()
