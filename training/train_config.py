"""TrainConfig: one fine-tuning job's settings, on the one config mechanism (``training.config``): defaults
< YAML (``imprint train --config``) < ``IMPRINT_TRAIN_*`` env < flags. Field names mirror the OpenAI/Foundry
fine-tuning job fields where they exist; every problem is reported at once with its fix.

    from training.train_config import TrainConfig
    TrainConfig.load(None, training_file="eval/examples/family/train.jsonl", n_epochs="auto")
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from training.config import Settings
from training.hparams import BASE_LEARNING_RATE, DEFAULT_STEP_TOKENS, Auto
from training.kernels import Kernels, kernel_problems
from training.models import DEFAULT_BASE_MODEL

MAX_LORA_RANK = 64  # vLLM's --max-lora-rank in deploy/


def _bitsandbytes_installed() -> bool:
    try:
        import bitsandbytes  # noqa: F401 — only whether the optional extra is there
    except ImportError:
        return False
    return True


class TrainConfig(Settings):
    """One training job. Field names mirror the OpenAI/Foundry fine-tuning job fields where they exist."""

    model_config = SettingsConfigDict(env_prefix="IMPRINT_TRAIN_")
    config_title: ClassVar[str] = "invalid training config"

    training_file: Path = Field(description="chat JSONL training file (check it with `imprint data check`)")
    validation_file: Path | None = Field(None, description="chat JSONL validation file; default: auto split")
    base_model: str = Field(DEFAULT_BASE_MODEL, description="gemma3-270m, tiny-phi3, a hub id or a folder")
    n_epochs: int | Auto = Field("auto", description="passes over the data (a maximum), or auto")
    batch_size: int | Auto = Field("auto", description="examples per optimizer step, or auto")
    learning_rate_multiplier: float | Auto = Field(
        "auto", description=f"learning rate = this × {BASE_LEARNING_RATE}, or auto"
    )
    suffix: str | None = Field(None, description="adapter name (default: the training file's name)")
    output: Path | None = Field(None, description="adapter folder (default $IMPRINT_HOME/adapters/NAME)")
    seed: int = Field(42, description="seed for the split, shuffling, augmentation and LoRA init")
    lora_r: int = Field(16, description=f"LoRA rank (1..{MAX_LORA_RANK}, vLLM's limit)")
    lora_alpha: int | None = Field(None, description="LoRA alpha (default: 2 × lora_r)")
    lora_dropout: float = Field(0.0, description="LoRA dropout")
    augment: int = Field(0, description="rule-based paraphrased copies per example (0..20)")
    kb: str | None = Field(
        None, description="knowledge base for retrieval-aware (RAFT) examples; the caller passes its search"
    )
    reading_examples: int = Field(
        0, description="synthetic reading examples to add (with --kb if 0: 8 after the reader, else 64)"
    )
    reader: bool = Field(
        True,
        description="with --kb: start from the reading skill learned once per base model and LoRA shape "
        "(training/reader.py, cached); false: learn it in this job",
    )
    max_seq_len: int = Field(1024, description="tokens per example; longer examples are an error")
    lr_schedule: Literal["constant", "linear"] = Field(
        "linear", description="after a short warm-up: linear decay to 10 % at the last step, or constant"
    )
    packing: bool = Field(True, description="pack examples into rows (no padding); false: pad each row")
    step_tokens: int = Field(
        DEFAULT_STEP_TOKENS,
        description="auto batch size: useful tokens per step for small sets (0: ~0.2 % of the examples)",
    )
    early_stopping_patience: int = Field(
        2, description="stop after this many epochs without a better valid accuracy, keep the best (0: off)"
    )
    checkpoint_interval_s: float = Field(
        60.0, description="save a resumable checkpoint at an epoch's end when this many seconds passed"
    )
    gradient_checkpointing: bool = Field(False, description="recompute activations (less memory, slower)")
    kernels: Kernels = Field(
        "auto",
        description="fused training kernels: liger (Triton, CUDA GPUs; pip install 'imprint[gpu]'), none, or "
        "auto (liger when both are there)",
    )
    load_in_4bit: bool = Field(
        False, description="QLoRA: frozen base in 4-bit NF4 (needs bitsandbytes; for GPUs, slow on CPU)"
    )
    memorization_check: int = Field(
        200,
        ge=0,
        description="after training, ask up to this many training questions (0: off); misses get more "
        "steps, what still misses is recorded so the router never trusts the adapter on it",
    )
    memorization_rounds: int = Field(2, ge=0, le=10, description="extra-training rounds for missed questions")
    threads: int | None = Field(None, description="CPU compute threads (default: physical cores)")
    resume: str | None = Field(None, description="job id under $IMPRINT_HOME/jobs (or 'last') to continue")
    stop_after_steps: int | None = Field(None, description="stop early, leaving a resumable job")
    progress: bool = Field(True, description="show a progress bar")

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

    @property
    def alpha(self) -> int:
        """The LoRA alpha in effect: ``lora_alpha``, or 2 × ``lora_r`` when not given (the one place)."""
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r

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
        if self.lora_alpha is not None and self.lora_alpha <= 0:
            p.append(f"lora_alpha: {self.lora_alpha} must be > 0 (or omit it for 2 × lora_r)")
        if not 0 <= self.lora_dropout < 1:
            p.append(f"lora_dropout: {self.lora_dropout} must be in [0, 1)")
        if not 0 <= self.augment <= 20:
            p.append(f"augment: {self.augment} must be in 0..20 paraphrases per example")
        if self.reading_examples < 0:
            p.append(f"reading_examples: {self.reading_examples} must be ≥ 0")
        if self.max_seq_len < 16:
            p.append(f"max_seq_len: {self.max_seq_len} must be ≥ 16")
        if self.step_tokens < 0:
            p.append(f"step_tokens: {self.step_tokens} must be ≥ 0 (0 = the ~0.2 % rule for every size)")
        if self.early_stopping_patience < 0:
            p.append(f"early_stopping_patience: {self.early_stopping_patience} must be ≥ 0 (0 = off)")
        if self.load_in_4bit and not _bitsandbytes_installed():
            p.append("load_in_4bit: needs bitsandbytes — pip install 'imprint[qlora]' (or drop the flag)")
        p.extend(kernel_problems(self.kernels))
        if self.threads is not None and self.threads < 1:
            p.append(f"threads: {self.threads} must be ≥ 1")
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

    def output_dir(self) -> Path:
        from training.paths import imprint_home

        return self.output or imprint_home() / "adapters" / self.adapter_name()
