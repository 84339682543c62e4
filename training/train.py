"""LoRA fine-tuning on chat JSONL: a plain torch loop with peft, checkpoints, resume, self-describing output.

    imprint train --training-file eval/examples/family/train.jsonl --output .imprint/adapters/family
    python -m training.train eval/examples/family/train.jsonl      # same with defaults

Steps: validate data → pick auto hyperparameters (printed with reasons) → split → load base + LoRA → train
(loss on assistant tokens only, logits computed only at those positions) → write the adapter to a temp folder
next to ``--output`` and rename it into place. Each epoch (and on Ctrl-C) a checkpoint goes to
``$IMPRINT_HOME/jobs/<job>/`` and ``imprint train --resume <job>`` continues from it.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from training.chat import split_for_loss
from training.config import CheckedConfig, ConfigError
from training.data import DataError, Messages, auto_split, last_user_question, validate_file
from training.models import DEFAULT_BASE_MODEL, BaseModel
from training.paths import imprint_home, imprint_version

# Effective learning rate = multiplier × BASE_LEARNING_RATE. 2e-4 is the measured sweet spot for LoRA r=16 on
# the 270M model (see the calibration notes): the auto multiplier is 1.0 for small batches.
BASE_LEARNING_RATE = 2e-4
MAX_LORA_RANK = 64  # vLLM's --max-lora-rank in deploy/
IGNORE = -100
Auto = Literal["auto"]


class TrainingInterrupted(RuntimeError):
    def __init__(self, job_dir: Path, step: int, total: int) -> None:
        self.job_dir, self.step, self.total = job_dir, step, total
        super().__init__(
            f"training stopped at step {step}/{total}; checkpoint saved in {job_dir}. "
            f"Continue with: imprint train --resume {job_dir.name}"
        )


class TrainConfig(CheckedConfig):
    """One training job. Field names mirror the OpenAI/Foundry fine-tuning job fields."""

    config_title: ClassVar[str] = "invalid training config"

    training_file: Path
    validation_file: Path | None = None
    base_model: str = DEFAULT_BASE_MODEL
    n_epochs: int | Auto = "auto"
    batch_size: int | Auto = "auto"
    learning_rate_multiplier: float | Auto = "auto"
    suffix: str | None = None
    output: Path | None = None  # default: $IMPRINT_HOME/adapters/<suffix or file stem>
    seed: int = 42
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    augment: int = 0  # paraphrased copies per example (training.augment)
    kb: str | None = None  # knowledge base for RAFT examples (training.raft, owner SERVICE)
    reading_examples: int = 0
    max_seq_len: int = 1024
    resume: str | None = None  # job id (or "last") to continue
    stop_after_steps: int | None = None  # stop early leaving a resumable job (tests, time-boxed runs)
    progress: bool = True

    @field_validator("n_epochs", "batch_size", "learning_rate_multiplier", mode="before")
    @classmethod
    def _auto_or_number(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        if isinstance(v, str):
            try:
                return float(v) if "." in v or "e" in v.lower() else int(v)
            except ValueError:
                return v
        return v

    def problems(self) -> list[str]:
        p: list[str] = []
        if self.resume is None and not self.training_file.is_file():
            p.append(f"training_file: {self.training_file} does not exist — pass a chat JSONL file")
        if self.validation_file is not None and not self.validation_file.is_file():
            p.append(f"validation_file: {self.validation_file} does not exist — fix the path or omit it")
        if self.n_epochs != "auto" and not 1 <= self.n_epochs <= 100:
            p.append(f"n_epochs: {self.n_epochs} is outside 1..100 — use a number in range or auto")
        if self.batch_size != "auto" and not 1 <= self.batch_size <= 256:
            p.append(f"batch_size: {self.batch_size} is outside 1..256 — use a number in range or auto")
        if self.learning_rate_multiplier != "auto" and not 0 < self.learning_rate_multiplier <= 50:
            p.append(
                f"learning_rate_multiplier: {self.learning_rate_multiplier} must be in (0, 50] "
                f"(× {BASE_LEARNING_RATE}) — or use auto"
            )
        if self.suffix is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", self.suffix):
            p.append(f"suffix: {self.suffix!r} must be 1–40 letters, digits, '-' or '_'")
        if not 1 <= self.lora_r <= MAX_LORA_RANK:
            p.append(f"lora_r: {self.lora_r} must be in 1..{MAX_LORA_RANK} (vLLM's --max-lora-rank)")
        if self.lora_alpha <= 0:
            p.append(f"lora_alpha: {self.lora_alpha} must be > 0 (usually 2 × lora_r)")
        if not 0 <= self.lora_dropout < 1:
            p.append(f"lora_dropout: {self.lora_dropout} must be in [0, 1)")
        if not 0 <= self.augment <= 20:
            p.append(f"augment: {self.augment} must be in 0..20 paraphrases per example")
        if self.reading_examples < 0:
            p.append(f"reading_examples: {self.reading_examples} must be ≥ 0")
        if self.max_seq_len < 16:
            p.append(f"max_seq_len: {self.max_seq_len} must be ≥ 16")
        if self.stop_after_steps is not None and self.stop_after_steps < 1:
            p.append(f"stop_after_steps: {self.stop_after_steps} must be ≥ 1")
        return p

    def adapter_name(self) -> str:
        if self.suffix:
            return self.suffix
        if self.output:
            return self.output.name
        # examples/family/train.jsonl → "family": a generic file name says less than its folder.
        stem = self.training_file.stem
        return self.training_file.resolve().parent.name if stem in {"train", "training", "data"} else stem


@dataclass(frozen=True)
class Hyperparameters:
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    learning_rate: float
    reasons: dict[str, str]


def auto_hyperparameters(
    n_examples: int,
    *,
    n_epochs: int | Auto = "auto",
    batch_size: int | Auto = "auto",
    learning_rate_multiplier: float | Auto = "auto",
) -> Hyperparameters:
    """Choose what is ``auto`` from the data size, the way OpenAI/Foundry do, with a reason for each choice.

    epochs: enough passes for ~100 example-visits on small sets (max 25), 3 for mid-size sets, fewer for huge
    sets (≤ 25k visits). batch: ~0.2% of the examples (1..64). lr multiplier: 1.0 up to batch 8, then grows
    with √(batch/8) (larger batches average out noise), capped at 4; effective lr = multiplier × 2e-4.
    """
    n = max(1, n_examples)
    reasons: dict[str, str] = {}
    if n_epochs == "auto":
        if n * 3 < 100:
            n_epochs = min(25, math.ceil(100 / n))
            reasons["n_epochs"] = f"{n} examples: {n_epochs} epochs so each run sees ~100 examples (max 25)"
        elif n * 3 > 25_000:
            n_epochs = max(1, 25_000 // n)
            reasons["n_epochs"] = f"{n} examples: {n_epochs} epoch(s) keeps it under 25k example-visits"
        else:
            n_epochs = 3
            reasons["n_epochs"] = f"{n} examples: the standard 3 epochs"
    else:
        reasons["n_epochs"] = "given"
    if batch_size == "auto":
        batch_size = int(min(64, max(1, round(n * 0.002))))
        reasons["batch_size"] = f"~0.2% of {n} examples, clamped to 1..64 → {batch_size}"
    else:
        reasons["batch_size"] = "given"
    if learning_rate_multiplier == "auto":
        learning_rate_multiplier = round(min(4.0, max(1.0, math.sqrt(batch_size / 8))), 3)
        reasons["learning_rate_multiplier"] = (
            f"batch {batch_size}: {learning_rate_multiplier} (1.0 up to batch 8, √(batch/8) above, max 4)"
        )
    else:
        reasons["learning_rate_multiplier"] = "given"
    lr = float(learning_rate_multiplier) * BASE_LEARNING_RATE
    reasons["learning_rate"] = f"{learning_rate_multiplier} × base {BASE_LEARNING_RATE} = {lr:.2e}"
    return Hyperparameters(int(n_epochs), int(batch_size), float(learning_rate_multiplier), lr, reasons)


# ── tokenisation and the answer-only loss (pure functions on tokenizers/tensors) ──


def encode_example(
    messages: Messages, tokenizer: Any, template: str, *, max_len: int
) -> tuple[list[int], list[int]]:
    """Token ids + labels (IGNORE everywhere except trained assistant turns), segment by segment.

    Each segment is tokenized on its own, exactly as at inference (prompt tokenized, answer generated), so the
    label boundary never depends on merges across the prompt/answer edge.
    """
    bos = tokenizer.bos_token or ""
    ids: list[int] = []
    labels: list[int] = []
    for text, trained in split_for_loss(messages, template, bos_token=bos):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        labels.extend(piece if trained else [IGNORE] * len(piece))
    return ids[:max_len], labels[:max_len]


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def answer_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, int, int]:
    """Mean cross-entropy over labelled next-token positions, plus (#correct, #tokens) for accuracy.

    Runs the decoder, then the output layer only on the hidden states that predict a labelled token: with
    Gemma's 262k vocabulary the full logits tensor would cost more than the rest of the model.
    """
    import torch
    import torch.nn.functional as F

    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = causal.get_decoder() if hasattr(causal, "get_decoder") else causal.model
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    selected = hidden[:, :-1][keep]
    logits = causal.get_output_embeddings()(selected).float()
    softcap = getattr(causal.config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    gold = targets[keep]
    loss = F.cross_entropy(logits, gold)
    correct = int((logits.argmax(-1) == gold).sum())
    return loss, correct, int(gold.numel())


# ── the job ────────────────────────────────────────────────────────────────────────────────────────────────


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _jobs_root() -> Path:
    return imprint_home() / "jobs"


def _find_job(resume: str) -> Path:
    root = _jobs_root()
    if resume == "last":
        jobs = sorted((p for p in root.glob("*/checkpoint/state.json")), key=lambda p: p.stat().st_mtime)
        if not jobs:
            raise ConfigError(f"resume: no resumable job under {root} — start one with `imprint train`")
        return jobs[-1].parent.parent
    job = root / resume
    if not (job / "checkpoint" / "state.json").exists():
        raise ConfigError(f"resume: {job} has no checkpoint — list jobs with `ls {root}`")
    return job


def load_examples(
    cfg: TrainConfig, tokenizer: Any, base: BaseModel
) -> tuple[Any, list[Messages], list[Messages], str, list[str]]:
    """Validate the files, then build (report, train, valid, split description, knowledge questions)."""
    from training.augment import augment_examples, paraphrase

    def count(messages: Messages) -> tuple[int, int]:
        ids, labels = encode_example(messages, tokenizer, base.chat_template, max_len=10**9)
        return len(ids), sum(1 for x in labels if x != IGNORE)

    report = validate_file(cfg.training_file, count_tokens=count, max_tokens=cfg.max_seq_len)
    if not report.ok:
        raise DataError(report)
    for issue in report.issues:
        if issue.severity != "error":
            _say(f"  {issue}")
    train = [e.messages for e in report.examples]
    if cfg.validation_file is not None:
        vreport = validate_file(cfg.validation_file, count_tokens=count, max_tokens=cfg.max_seq_len)
        if not vreport.ok:
            raise DataError(vreport)
        valid, how = [e.messages for e in vreport.examples], f"validation file {cfg.validation_file}"
    else:
        split = auto_split(train, seed=cfg.seed, paraphrase=lambda q, n: paraphrase(q, n, seed=cfg.seed))
        train, valid, how = split.train, split.valid, split.how
    if cfg.augment:
        before = len(train)
        # Validation paraphrases must not leak into training: skip any augmented copy equal to one of them.
        valid_keys = {json.dumps(v, ensure_ascii=False, sort_keys=True) for v in valid}
        augmented = augment_examples(train, cfg.augment, seed=cfg.seed + 1)
        train = [e for e in augmented[:before]] + [
            e
            for e in augmented[before:]
            if json.dumps(e, ensure_ascii=False, sort_keys=True) not in valid_keys
        ]
        _say(f"  --augment {cfg.augment}: {before} → {len(train)} examples (rule-based paraphrases)")
    # What the adapter knows by heart: the user questions it was trained on (with paraphrases), not the
    # synthetic reading examples added below.
    questions = list(dict.fromkeys(q for q in (last_user_question(m) for m in train) if q))
    if cfg.kb or cfg.reading_examples:
        # Contract with training.raft (owner SERVICE): it returns the COMPLETE training set.
        from training.raft import build_retrieval_examples

        extra = build_retrieval_examples(train, kb=cfg.kb, n_reading=cfg.reading_examples, seed=cfg.seed)
        _say(
            f"  retrieval curriculum (kb={cfg.kb}, reading={cfg.reading_examples}): "
            f"{len(train)} → {len(extra)}"
        )
        train = extra
    return report, train, valid, how, questions


def _evaluate(
    model: Any, rows: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int
) -> tuple[float, float]:
    import torch

    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            batch = collate(rows[i : i + batch_size], pad_id)
            batch = {k: v.to(next(model.parameters()).device) for k, v in batch.items()}
            loss, c, n = answer_loss(model, batch)
            total_loss += float(loss) * n
            correct += c
            count += n
    model.train()
    return (total_loss / max(1, count), correct / max(1, count))


def _plot(rows: list[dict[str, Any]], out: Path) -> None:
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
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


CSV_FIELDS = ["step", "train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy"]


def _save_checkpoint(job: Path, model: Any, optimizer: Any, step: int, rows: list[dict[str, Any]]) -> None:
    import torch

    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint.", dir=job))
    model.save_pretrained(tmp)
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        },
        tmp / "optimizer.pt",
    )
    (tmp / "state.json").write_text(json.dumps({"step": step, "rows": rows}))
    final = job / "checkpoint"
    old = job / ".checkpoint.old"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) a fine-tuning job and return the published adapter folder."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from tqdm import tqdm

    from training.adapter import AdapterInfo, write_metadata
    from training.models import load_base_model, resolve_base_model

    # ── setup: job folder, config, data, model ──
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    if cfg.resume:
        job = _find_job(cfg.resume)
        saved = json.loads((job / "config.json").read_text())
        saved.update(resume=job.name, stop_after_steps=cfg.stop_after_steps, progress=cfg.progress)
        cfg = TrainConfig.build(**saved)
        _say(f"resuming job {job.name}")
    else:
        job = (
            _jobs_root()
            / f"ft-{datetime.now(UTC):%Y%m%d-%H%M%S}-{cfg.adapter_name()}-{uuid.uuid4().hex[:4]}"
        )
        job.mkdir(parents=True)
        (job / "config.json").write_text(cfg.model_dump_json(indent=2))
    output = cfg.output or imprint_home() / "adapters" / cfg.adapter_name()
    started = time.monotonic()
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)

    base = resolve_base_model(cfg.base_model)
    model, tokenizer = load_base_model(base)
    report, train_msgs, valid_msgs, split_how, questions = load_examples(cfg, tokenizer, base)
    hp = auto_hyperparameters(
        len(train_msgs),
        n_epochs=cfg.n_epochs,
        batch_size=cfg.batch_size,
        learning_rate_multiplier=cfg.learning_rate_multiplier,
    )
    _say(f"data: {len(train_msgs)} training examples, {len(valid_msgs)} validation — {split_how}")
    for key, reason in hp.reasons.items():
        _say(f"  {key} = {getattr(hp, key)}  ({reason})")
    if report.knowledge:
        _say(
            f"  knowledge: {len(report.knowledge)} system-only record(s) saved with the adapter "
            "(knowledge.md)"
        )

    enc = lambda m: encode_example(m, tokenizer, base.chat_template, max_len=cfg.max_seq_len)  # noqa: E731
    train_rows = [enc(m) for m in train_msgs]
    valid_rows = [enc(m) for m in valid_msgs]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device

    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(base.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    if cfg.resume:
        model = PeftModel.from_pretrained(model, job / "checkpoint", is_trainable=True)
    else:
        model = get_peft_model(model, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(train_rows) / hp.batch_size)
    total_steps = steps_per_epoch * hp.n_epochs
    warmup = max(1, total_steps // 20)
    # Short linear warm-up, then constant: memorising facts wants a steady lr (calibration notes).
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))

    step, rows = 0, []
    if cfg.resume:
        state = json.loads((job / "checkpoint" / "state.json").read_text())
        step, rows = state["step"], state["rows"]
        saved_opt = torch.load(job / "checkpoint" / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(saved_opt["optimizer"])
        torch.set_rng_state(saved_opt["torch_rng"])
        random.setstate(saved_opt["python_rng"])
        with warnings.catch_warnings():  # fast-forwarding the schedule without optimizer steps is intended
            warnings.simplefilter("ignore")
            for _ in range(step):
                scheduler.step()

    # ── work: the loop ──
    bar = tqdm(
        total=total_steps, initial=step, desc="train", unit="step", disable=not cfg.progress, file=sys.stderr
    )
    try:
        while step < total_steps:
            epoch, offset = divmod(step, steps_per_epoch)
            order = list(range(len(train_rows)))
            random.Random(cfg.seed * 1000 + epoch).shuffle(order)  # per-epoch order: identical on resume
            idx = order[offset * hp.batch_size : (offset + 1) * hp.batch_size]
            batch = {k: v.to(device) for k, v in collate([train_rows[i] for i in idx], pad_id).items()}
            loss, correct, count = answer_loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            row: dict[str, Any] = {
                "step": step,
                "train_loss": round(float(loss.detach()), 5),
                "train_mean_token_accuracy": round(correct / max(1, count), 5),
                "valid_loss": "",
                "valid_mean_token_accuracy": "",
            }
            end_of_epoch = step % steps_per_epoch == 0 or step == total_steps
            if end_of_epoch and valid_rows:
                vloss, vacc = _evaluate(model, valid_rows, pad_id, hp.batch_size * 2)
                row.update(valid_loss=round(vloss, 5), valid_mean_token_accuracy=round(vacc, 5))
            rows.append(row)
            bar.set_postfix(
                loss=f"{row['train_loss']:.3f}",
                acc=f"{row['train_mean_token_accuracy']:.2f}",
                epoch=epoch + 1,
            )
            bar.update(1)
            if end_of_epoch and step < total_steps:
                _save_checkpoint(job, model, optimizer, step, rows)
            if cfg.stop_after_steps is not None and step >= cfg.stop_after_steps and step < total_steps:
                _save_checkpoint(job, model, optimizer, step, rows)
                raise TrainingInterrupted(job, step, total_steps)
    except KeyboardInterrupt:
        bar.close()
        _save_checkpoint(job, model, optimizer, step, rows)
        raise TrainingInterrupted(job, step, total_steps) from None
    bar.close()

    # ── save: write everything into a temp folder next to --output, then rename ──
    last_epoch = rows[-steps_per_epoch:]
    final_valid = next((r for r in reversed(rows) if r["valid_loss"] != ""), None)
    metrics = {
        "steps": step,
        "train_loss": round(sum(r["train_loss"] for r in last_epoch) / len(last_epoch), 5),
        "train_mean_token_accuracy": round(
            sum(r["train_mean_token_accuracy"] for r in last_epoch) / len(last_epoch), 5
        ),
        "valid_loss": final_valid["valid_loss"] if final_valid else None,
        "valid_mean_token_accuracy": final_valid["valid_mean_token_accuracy"] if final_valid else None,
        "train_examples": len(train_rows),
        "valid_examples": len(valid_rows),
        "trained_tokens_per_epoch": sum(sum(1 for x in lab if x != IGNORE) for _, lab in train_rows),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        # Portable id (not this machine's cache path); embeddings are never trained, so never saved.
        model.peft_config["default"].base_model_name_or_path = base.name
        model.save_pretrained(tmp, save_embedding_layers=False)
        tokenizer.save_pretrained(tmp)
        with (tmp / "results.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        _plot(rows, tmp / "loss.png")
        info = AdapterInfo(
            name=cfg.adapter_name(),
            base_model=base.name,
            base_revision=base.revision,
            chat_template=base.chat_template,
            system_prompt=None,
            knowledge=questions,
            knowledge_text=report.knowledge_text,
            hyperparameters={
                "n_epochs": hp.n_epochs,
                "batch_size": hp.batch_size,
                "learning_rate_multiplier": hp.learning_rate_multiplier,
                "learning_rate": hp.learning_rate,
                "base_learning_rate": BASE_LEARNING_RATE,
                "lora_r": cfg.lora_r,
                "lora_alpha": cfg.lora_alpha,
                "lora_dropout": cfg.lora_dropout,
                "target_modules": list(base.target_modules),
                "seed": cfg.seed,
                "augment": cfg.augment,
                "max_seq_len": cfg.max_seq_len,
                "validation": split_how,
                "reasons": hp.reasons,
            },
            data_sha256=report.sha256,
            metrics=metrics,
            created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            imprint_version=imprint_version(),
        )
        write_metadata(tmp, info)
        if output.exists():
            if not (output / "imprint.json").exists():
                raise FileExistsError(
                    f"{output} exists and is not an Imprint adapter — choose another --output"
                )
            trash = output.parent / f".{output.name}.old-{random.randrange(16**6):06x}"
            output.rename(trash)
            tmp.rename(output)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (job / "status.json").write_text(json.dumps({"status": "succeeded", "adapter": str(output)}))
    shutil.rmtree(job / "checkpoint", ignore_errors=True)  # a finished job is not resumable
    _say(
        f"adapter written to {output} ({step} steps, {metrics['wall_seconds']} s, "
        f"train loss {metrics['train_loss']}, valid loss {metrics['valid_loss']})"
    )
    return output


if __name__ == "__main__":
    print(
        train(
            TrainConfig.build(
                training_file=sys.argv[1] if len(sys.argv) > 1 else "eval/examples/family/train.jsonl"
            )
        )
    )
