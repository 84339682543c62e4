"""The job folder: ``$IMPRINT_HOME/jobs/<job>/`` holds ``config.json``, the resumable ``checkpoint/`` and,
when done, ``status.json``. Checkpoints are written through :func:`training.fileio.publish_dir`, so a crash
leaves the previous checkpoint or the new one, never a mix.

    imprint train --resume <job>     # or --resume last
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.config import ConfigError
from training.fileio import atomic_write, atomic_write_json, publish_dir
from training.paths import imprint_home

CHECKPOINT = "checkpoint"
STATE = "state.json"
OPTIMIZER = "optimizer.pt"
BEST = "best.safetensors"


class TrainingInterrupted(RuntimeError):  # an outcome of the job, not an error of the request
    """The job stopped before its last step (Ctrl-C, ``stop_after_steps``); the checkpoint can resume it."""

    def __init__(self, job_dir: Path, step: int, total: int) -> None:
        self.job_dir, self.step, self.total = job_dir, step, total
        super().__init__(
            f"training stopped at step {step}/{total}; checkpoint saved in {job_dir}. "
            f"Continue with: imprint train --resume {job_dir.name}"
        )


@dataclass
class Progress:
    """Everything the loop needs to continue where it stopped (besides weights and optimizer)."""

    step: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # results.csv rows so far
    early_stop: dict[str, Any] = field(default_factory=dict)
    useful_tokens: int = 0  # non-padding tokens the loop has run through the model
    computed_tokens: int = 0  # token slots computed (useful + padding)
    loop_seconds: float = 0.0  # time inside training steps (not validation, checkpoints, loading)
    valid_seconds: float = 0.0  # time validating at epoch ends


def jobs_root() -> Path:
    return imprint_home() / "jobs"


def new_job(name: str, config_json: str) -> Path:
    job = jobs_root() / f"ft-{datetime.now(UTC):%Y%m%d-%H%M%S}-{name}-{uuid.uuid4().hex[:4]}"
    job.mkdir(parents=True)
    atomic_write(job / "config.json", config_json)
    return job


def find_job(resume: str) -> Path:
    """The job folder for ``resume`` (a job id, or ``last``: the most recent resumable one)."""
    root = jobs_root()
    if resume == "last":
        jobs = sorted(root.glob(f"*/{CHECKPOINT}/{STATE}"), key=lambda p: p.stat().st_mtime)
        if not jobs:
            raise ConfigError(f"resume: no resumable job under {root} — start one with `imprint train`")
        return jobs[-1].parent.parent
    job = root / resume
    if not (job / CHECKPOINT / STATE).exists():
        raise ConfigError(f"resume: {job} has no checkpoint — list jobs with `ls {root}`", param="resume")
    return job


def saved_config(job: Path) -> dict[str, Any]:
    return json.loads((job / "config.json").read_text(encoding="utf-8"))


def save_checkpoint(
    job: Path, model: Any, optimizer: Any, progress: Progress, best: dict[str, Any] | None
) -> None:
    """LoRA weights, optimizer, RNG states, progress and the best epoch's weights, published atomically."""
    import torch
    from safetensors.torch import save_file

    with publish_dir(job / CHECKPOINT, replace=True) as tmp:
        model.save_pretrained(tmp, save_embedding_layers=False)
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "python_rng": random.getstate(),
            },
            tmp / OPTIMIZER,
        )
        if best is not None:
            save_file({k: v.contiguous() for k, v in best.items()}, str(tmp / BEST))
        atomic_write_json(tmp / STATE, progress.__dict__, indent=None)


def load_checkpoint(job: Path, optimizer: Any) -> tuple[Progress, dict[str, Any] | None]:
    """Restore optimizer + RNG states from ``job``'s checkpoint; return the progress and best weights (the
    LoRA weights themselves are loaded with the model: ``PeftModel.from_pretrained(..., checkpoint_dir)``)."""
    import torch
    from safetensors.torch import load_file

    folder = job / CHECKPOINT
    progress = Progress(**json.loads((folder / STATE).read_text(encoding="utf-8")))
    saved = torch.load(folder / OPTIMIZER, weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    torch.set_rng_state(saved["torch_rng"])
    random.setstate(saved["python_rng"])
    best = load_file(str(folder / BEST)) if (folder / BEST).exists() else None
    return progress, best


def checkpoint_dir(job: Path) -> Path:
    return job / CHECKPOINT


def finish_job(job: Path, adapter: Path) -> None:
    """Mark the job done; a finished job is not resumable, so its checkpoint goes."""
    import shutil

    atomic_write_json(job / "status.json", {"status": "succeeded", "adapter": str(adapter)})
    shutil.rmtree(job / CHECKPOINT, ignore_errors=True)
