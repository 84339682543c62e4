"""LoRA fine-tuning on chat JSONL — the recipe: a plain torch loop with peft, read top to bottom.

    imprint train --training-file eval/examples/family/train.jsonl --output .imprint/adapters/family
    python -m training.train eval/examples/family/train.jsonl      # same with defaults

``train(cfg)``: set up (job folder, base model, data, hyperparameters, LoRA, optimizer) → loop (packed
batches, loss on answer tokens only, validation + early stopping each epoch, checkpoints) → save (the best
epoch's adapter, published atomically at ``--output``). Each piece lives in a module by job: encoding
(tokens, packing), dataset (the training set), reader (the reading skill a ``--kb`` job starts from), hparams
(auto values), loss, early_stop, checkpoint (job folder, resume), plots. ``imprint train --resume <job>``
continues an interrupted job.
"""

from __future__ import annotations

import math
import random
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.checkpoint import Progress, TrainingInterrupted
from training.config import ConfigError
from training.dataset import TrainingSet
from training.early_stop import EarlyStopping
from training.encoding import Encoded
from training.hparams import BASE_LEARNING_RATE, Hyperparameters
from training.kernels import fused_ce, gpu_memory, resolve_kernels, use_kernels
from training.loop import (
    OnEvent,
    Setup,
    keep_best_weights,
    run_loop,
    say,
    snapshot,
    train_on,
    valid_accuracy,
)
from training.models import BaseLLM
from training.raft import Search
from training.reader import Reader, curriculum, ensure_reader, reader_key, start_from, uses_reader
from training.train_config import TrainConfig

# Optimizer steps per extra-training round of the memorisation check (missed questions + as many known).
MEMORIZATION_STEPS = 3
# A round that costs more validation token accuracy than this is undone: memorising a few answers must not
# unlearn the rest (a format, the paraphrases the validation split holds).
MEMORIZATION_VALID_TOLERANCE = 0.005
CSV_FIELDS = [
    "step",
    "epoch",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
]

__all__ = ["ConfigError", "TrainConfig", "TrainingInterrupted", "job_config", "train"]


# ── the recipe ─────────────────────────────────────────────────────────────────────────────────────────────


def train(
    cfg: TrainConfig,
    *,
    search: Search | None = None,
    on_event: OnEvent | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Run (or resume) a fine-tuning job and return the published adapter folder.

    ``search`` (question → retrieved hits) is required when ``cfg.kb`` is set: the caller builds it from
    the knowledge base (``imprint train --kb`` does), because training never opens a knowledge base.
    ``on_event(kind, data)`` (optional) hears "job" (the job folder), "hyperparameters" (values and
    reasons), "metrics" (each step, each validated epoch end), "checkpoint" (a resumable save) and
    "saved" (the published adapter); ``should_stop()`` (optional), polled after each step, stops the job
    with a checkpoint (``TrainingInterrupted``), as Ctrl-C does.
    """
    from training.checkpoint import finish_job
    from training.threads import configure_cpu

    cpu = configure_cpu(cfg.threads)  # threads now; the wait policy only if torch is not imported yet
    cfg = job_config(cfg)
    require_search(cfg, search)
    job = open_job(cfg)
    if on_event is not None:
        on_event("job", {"job": job.name, "resumed": bool(cfg.resume)})
    started = time.monotonic()
    # setup
    reader = prepare_reader(cfg, on_event, should_stop)
    s = setup(cfg, job, search, reader)
    s.on_event, s.should_stop = on_event, should_stop
    s.emit("hyperparameters", hyperparameter_event(s))
    say(f"cpu: {cpu.describe()}")
    progress, best = restore(s) if cfg.resume else (Progress(), None)
    setup_seconds = time.monotonic() - started
    # loop
    progress, best, stopper = run_loop(s, progress, best)
    if should_stop is not None and should_stop():  # stopped on the last step: publish nothing
        raise TrainingInterrupted(job, progress.step, s.total_steps)
    if stopper.patience and best is not None and stopper.best_epoch != progress.rows[-1]["epoch"]:
        keep_best_weights(s.model, best)  # early stopping on: the best epoch's weights, not the last
    memorization = check_memorization(s)
    # save
    metrics = summarize(s, progress, stopper, wall=time.monotonic() - started, setup=setup_seconds)
    output = save_adapter(s, progress.rows, metrics, stopper, memorization)
    finish_job(job, output)
    s.emit("saved", {"path": str(output), **metrics})
    say(
        f"adapter written to {output} ({metrics['steps']} steps, {metrics['wall_seconds']} s: "
        f"setup {metrics['setup_seconds']}, steps {metrics['loop_seconds']}, "
        f"validation {metrics['valid_seconds']}; train loss {metrics['train_loss']}, "
        f"valid accuracy {metrics['valid_mean_token_accuracy']})"
    )
    return output


def hyperparameter_event(s: Setup) -> dict[str, Any]:
    keys = ("n_epochs", "batch_size", "learning_rate_multiplier", "learning_rate")
    return {
        **{k: getattr(s.hp, k) for k in keys},
        "reasons": {k: s.hp.reasons[k] for k in keys},
        "train_examples": len(s.train_rows),
        "valid_examples": len(s.valid_rows),
        "trained_tokens_per_epoch": sum(r.trained for r in s.train_rows),
        "total_steps": s.total_steps,
    }


def check_memorization(s: Setup) -> dict[str, Any]:
    """Ask the adapter its own training questions (``training.memorize``); train the misses a little more."""
    from training.memorize import run

    if not s.cfg.memorization_check:
        return {}

    def refresh(examples: list[Any]) -> Callable[[], None] | None:
        before, accuracy = snapshot(s.model), valid_accuracy(s)
        train_on(s, examples, MEMORIZATION_STEPS)
        after = valid_accuracy(s)
        if accuracy is not None and after is not None and after < accuracy - MEMORIZATION_VALID_TOLERANCE:
            keep_best_weights(s.model, before)
            say(f"memorisation check: extra steps undone (valid accuracy {accuracy:.3f} → {after:.3f})")
            return None
        return lambda: keep_best_weights(s.model, before)

    t0 = time.monotonic()
    result = run(
        s.model,
        s.tokenizer,
        s.base.chat_template,
        [e.messages for e in s.data.report.examples],
        refresh=refresh,
        limit=s.cfg.memorization_check,
        rounds=s.cfg.memorization_rounds,
        seed=s.cfg.seed,
    )
    if result:
        cal = result["calibration"]
        say(
            f"memorisation check: {result['passed']}/{result['checked']} training questions answered "
            f"(by round {result['passed_by_round']}); confidence threshold {cal['confidence']} "
            f"(known: {cal['known']}, made-up: {cal['made_up']}); {time.monotonic() - t0:.1f} s"
        )
        for q in result["missed"]:
            say(f"  still missed (never trusted alone): {q}")
    return result


def require_search(cfg: TrainConfig, search: Search | None) -> None:
    if cfg.kb and search is None:
        raise ConfigError(
            f"kb: {cfg.kb!r} is set but no search function was given — call train(cfg, search=...) "
            "with the knowledge base's search (or run `imprint train --kb NAME`)",
            param="kb",
        )


# ── setup ──────────────────────────────────────────────────────────────────────────────────────────────────


def job_config(cfg: TrainConfig) -> TrainConfig:
    """The config ``train(cfg)`` runs with: ``cfg`` itself, or for ``resume`` the job's saved config (with
    this call's ``stop_after_steps`` and ``progress``). A caller building ``search`` from ``kb`` reads it
    here."""
    from training.checkpoint import find_job, saved_config

    if not cfg.resume:
        return cfg
    job = find_job(cfg.resume)
    saved = saved_config(job)
    saved.update(resume=job.name, stop_after_steps=cfg.stop_after_steps, progress=cfg.progress)
    return TrainConfig.build(**saved)


def open_job(cfg: TrainConfig) -> Path:
    """A new job folder (config.json written), or the folder of the job being resumed."""
    from training.checkpoint import find_job, new_job

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    if not cfg.resume:
        _check_output(cfg.output_dir())
        return new_job(cfg.adapter_name(), cfg.model_dump_json(indent=2))
    say(f"resuming job {cfg.resume}")
    return find_job(cfg.resume)


def _check_output(output: Path) -> None:
    if output.exists() and not (output / "imprint.json").exists():
        raise ConfigError(
            f"output: {output} exists and is not an Imprint adapter — choose another --output", param="output"
        )


def prepare_reader(
    cfg: TrainConfig, on_event: OnEvent | None, should_stop: Callable[[], bool] | None
) -> Reader | None:
    """The reading skill a --kb job starts from (training/reader.py): cached, or built now (a job of its
    own; its messages are "reader" events too). A resumed job's checkpoint already holds its weights."""
    from training.models import resolve_base_model

    if not uses_reader(cfg) or cfg.resume:
        return None

    def tell(message: str) -> None:
        say(message)
        if on_event is not None:
            on_event("reader", {"message": message})

    base = resolve_base_model(cfg.base_model)
    return ensure_reader(cfg, base, train=train, say=tell, should_stop=should_stop)


def setup(cfg: TrainConfig, job: Path, search: Search | None, reader: Reader | None = None) -> Setup:
    import torch

    from training.dataset import build_training_set
    from training.encoding import Encoder
    from training.models import load_base_model, resolve_base_model

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    base = resolve_base_model(cfg.base_model)
    model, tokenizer = load_base_model(base, load_in_4bit=cfg.load_in_4bit)
    model = use_kernels(model, kernels := resolve_kernels(cfg.kernels))
    say(f"device: {next(model.parameters()).device}, kernels: {kernels}")
    encoder = Encoder(tokenizer, base.chat_template, max_len=cfg.max_seq_len)
    reading, updates = curriculum(cfg)
    data = build_training_set(
        cfg.training_file,
        count_tokens=encoder.count,
        max_tokens=cfg.max_seq_len,
        seed=cfg.seed,
        validation_file=cfg.validation_file,
        augment=cfg.augment,
        reading_examples=reading,
        updates=updates,
        search=search,
        kb_name=cfg.kb,
    )
    train_rows, valid_rows = encoder.all(data.train), encoder.all(data.valid)
    hp = choose_hyperparameters(cfg, train_rows)
    report_setup(data, train_rows, hp)
    model = add_lora(model, cfg, base, job, reader)
    steps_per_epoch = math.ceil(len(train_rows) / hp.batch_size)
    total_steps = steps_per_epoch * hp.n_epochs
    optimizer, scheduler = make_optimizer(model, hp, total_steps, cfg.lr_schedule)
    return Setup(
        cfg, job, base, model, tokenizer, data, train_rows, valid_rows, hp, optimizer, scheduler,
        steps_per_epoch, total_steps,
    )  # fmt: skip


def choose_hyperparameters(cfg: TrainConfig, rows: list[Encoded]) -> Hyperparameters:
    from training.hparams import auto_hyperparameters

    return auto_hyperparameters(
        len(rows),
        mean_tokens=sum(len(r) for r in rows) / max(1, len(rows)),
        n_epochs=cfg.n_epochs,
        batch_size=cfg.batch_size,
        learning_rate_multiplier=cfg.learning_rate_multiplier,
        step_tokens=cfg.step_tokens or None,
    )


def report_setup(data: TrainingSet, rows: list[Encoded], hp: Hyperparameters) -> None:
    for note in data.notes:
        say(note)
    tokens, trained = sum(len(r) for r in rows), sum(r.trained for r in rows)
    say(
        f"data: {len(data.train)} training examples ({tokens} tokens, {trained} trained), "
        f"{len(data.valid)} validation — {data.split}"
    )
    for key in ("n_epochs", "batch_size", "learning_rate_multiplier", "learning_rate"):
        say(f"  {key} = {getattr(hp, key):g}  ({hp.reasons[key]})")
    if data.report.knowledge:
        say(
            f"  knowledge: {len(data.report.knowledge)} system-only record(s) saved with the adapter "
            "(knowledge.md)"
        )


def add_lora(model: Any, cfg: TrainConfig, base: BaseLLM, job: Path, reader: Reader | None = None) -> Any:
    """LoRA on the base's attention + MLP projections (or the checkpoint's, when resuming), starting from
    the reader's weights when there is one."""
    from peft import LoraConfig, PeftModel, get_peft_model

    from training.checkpoint import checkpoint_dir

    if cfg.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if cfg.resume:
        model = PeftModel.from_pretrained(model, checkpoint_dir(job), is_trainable=True)
    else:
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(base.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
        if reader is not None:
            start_from(model, reader)
    model.train()
    return model


def make_optimizer(
    model: Any, hp: Hyperparameters, total_steps: int, schedule: str = "constant"
) -> tuple[Any, Any]:
    """AdamW on the LoRA weights; a short linear warm-up, then constant or a linear decay to 10 %."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel for all LoRA tensors (8 ms instead of 19–44 ms a step on 2 CPU cores for 5M weights)
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=0.0, fused=True)
    warmup = max(1, total_steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "linear":
            return 1.0 - 0.9 * (step - warmup) / max(1, total_steps - warmup)
        return 1.0

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def restore(s: Setup) -> tuple[Progress, dict[str, Any] | None]:
    """Optimizer, RNG, progress and best weights from the checkpoint; the schedule is fast-forwarded."""
    from training.checkpoint import load_checkpoint

    progress, best = load_checkpoint(s.job, s.optimizer)
    with warnings.catch_warnings():  # fast-forwarding the schedule without optimizer steps is intended
        warnings.simplefilter("ignore")
        for _ in range(progress.step):
            s.scheduler.step()
    return progress, best


# ── save ───────────────────────────────────────────────────────────────────────────────────────────────────


def summarize(
    s: Setup, progress: Progress, stopper: EarlyStopping, *, wall: float, setup: float
) -> dict[str, Any]:
    rows = progress.rows
    kept = (stopper.best_epoch or rows[-1]["epoch"]) if stopper.patience else rows[-1]["epoch"]
    epoch_rows = [r for r in rows if r["epoch"] == kept]
    valid = next((r for r in epoch_rows if r["valid_loss"] != ""), None)
    return {
        "steps": progress.step,
        "epochs_run": rows[-1]["epoch"],
        "best_epoch": stopper.best_epoch or None,  # by validation accuracy
        "kept_epoch": kept,  # whose weights the adapter holds
        "stopped_early": bool(stopper.stopped_epoch),
        "early_stopping": stopper.summary(),
        "train_loss": round(sum(r["train_loss"] for r in epoch_rows) / len(epoch_rows), 5),
        "train_mean_token_accuracy": round(
            sum(r["train_mean_token_accuracy"] for r in epoch_rows) / len(epoch_rows), 5
        ),
        "valid_loss": valid["valid_loss"] if valid else None,
        "valid_mean_token_accuracy": valid["valid_mean_token_accuracy"] if valid else None,
        "train_examples": len(s.train_rows),
        "valid_examples": len(s.valid_rows),
        "trained_tokens_per_epoch": sum(r.trained for r in s.train_rows),
        "useful_tokens": progress.useful_tokens,
        "computed_tokens": progress.computed_tokens,
        "loop_seconds": round(progress.loop_seconds, 2),
        "valid_seconds": round(progress.valid_seconds, 2),
        "useful_tokens_per_second": round(progress.useful_tokens / max(1e-9, progress.loop_seconds), 1),
        "setup_seconds": round(setup, 1),
        "wall_seconds": round(wall, 1),
        **gpu_memory(),
    }


def save_adapter(
    s: Setup,
    rows: list[dict[str, Any]],
    metrics: dict[str, Any],
    stopper: EarlyStopping,
    memorization: dict[str, Any],
) -> Path:
    """Weights, tokenizer, results.csv, metrics.json, loss.png and imprint.json, published in one rename."""
    import csv
    import json
    from datetime import UTC, datetime

    from training.adapter import AdapterInfo, write_metadata
    from training.fileio import publish_dir
    from training.paths import imprint_version
    from training.plots import plot_losses

    cfg, base, hp = s.cfg, s.base, s.hp
    reading, updates = curriculum(cfg)
    output = cfg.output_dir()
    _check_output(output)
    info = AdapterInfo(
        name=cfg.adapter_name(),
        base_model=base.name,
        base_revision=base.revision,
        chat_template=base.chat_template,
        knowledge=s.data.questions,
        knowledge_text=s.data.report.knowledge_text,
        hyperparameters={
            "n_epochs": hp.n_epochs,
            "batch_size": hp.batch_size,
            "learning_rate_multiplier": hp.learning_rate_multiplier,
            "learning_rate": hp.learning_rate,
            "base_learning_rate": BASE_LEARNING_RATE,
            "lora_r": cfg.lora_r,
            "lora_alpha": cfg.alpha,
            "lora_dropout": cfg.lora_dropout,
            "target_modules": list(base.target_modules),
            "seed": cfg.seed,
            "augment": cfg.augment,
            "kb": cfg.kb,
            "reading_examples": reading,
            "raft_updates": updates if cfg.kb or reading else 0,  # RAFT runs with a curriculum too
            "reader": reader_key(cfg, base) if uses_reader(cfg) else None,
            "max_seq_len": cfg.max_seq_len,
            "lr_schedule": cfg.lr_schedule,
            "packing": cfg.packing,
            "kernels": "liger" if fused_ce(s.model.get_base_model()) else "none",
            "load_in_4bit": cfg.load_in_4bit,
            "step_tokens": cfg.step_tokens,
            "early_stopping_patience": cfg.early_stopping_patience,
            "validation": s.data.split,
            "reasons": hp.reasons,
        },
        data_sha256=s.data.report.sha256,
        metrics=metrics,
        memorization=memorization,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        imprint_version=imprint_version(),
    )
    best_step = max((r["step"] for r in rows if r["epoch"] == stopper.best_epoch), default=None)
    with publish_dir(output, replace=True) as tmp:
        # Portable id (not this machine's cache path); embeddings are never trained, so never saved.
        s.model.peft_config["default"].base_model_name_or_path = base.name
        s.model.save_pretrained(tmp, save_embedding_layers=False)
        s.tokenizer.save_pretrained(tmp)
        with (tmp / "results.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        plot_losses(rows, tmp / "loss.png", best_step=best_step if stopper.stopped_epoch else None)
        write_metadata(tmp, info)
    return output


if __name__ == "__main__":
    print(
        train(
            TrainConfig.build(
                training_file=sys.argv[1] if len(sys.argv) > 1 else "eval/examples/family/train.jsonl"
            )
        )
    )
