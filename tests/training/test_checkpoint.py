"""Job folders and checkpoints: atomic save, exact restore, finding jobs, TrainingInterrupted."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.checkpoint import (
    Progress,
    TrainingInterrupted,
    checkpoint_dir,
    find_job,
    finish_job,
    load_checkpoint,
    new_job,
    save_checkpoint,
)
from training.config import ConfigError
from training.errors import ImprintError


def test_save_then_load_restores_optimizer_rng_progress_and_best(tiny_phi3_base, imprint_home: Path) -> None:
    import random

    import torch
    from peft import LoraConfig, get_peft_model

    from training.models import load_base_model

    model, _ = load_base_model(tiny_phi3_base, device="cpu")
    model = get_peft_model(model, LoraConfig(r=4, target_modules=list(tiny_phi3_base.target_modules)))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    sum(p.sum() for p in params).backward()
    opt.step()
    job = new_job("ckpt-test", "{}")
    best = {"w": torch.arange(4.0)}
    progress = Progress(step=7, rows=[{"step": 7}], early_stop={"patience": 2}, useful_tokens=99)
    save_checkpoint(job, model, opt, progress, best)
    save_checkpoint(job, model, opt, progress, best)  # a second save replaces the first atomically
    assert sorted(p.name for p in job.iterdir()) == ["checkpoint", "config.json"]  # no temp folders left
    assert (checkpoint_dir(job) / "adapter_model.safetensors").exists()
    expected_next = random.random()
    random.random()  # move the RNG on; loading must put it back
    fresh = torch.optim.AdamW(params, lr=1e-3)
    got, got_best = load_checkpoint(job, fresh)
    assert got == progress and torch.equal(got_best["w"], best["w"])
    assert fresh.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert random.random() == expected_next
    assert find_job(job.name) == job and find_job("last") == job
    finish_job(job, Path("/x/adapter"))
    assert not checkpoint_dir(job).exists() and (job / "status.json").exists()


def test_find_job_explains_what_is_missing(imprint_home: Path) -> None:
    with pytest.raises(ConfigError, match="has no checkpoint"):
        find_job("no-such-job")


def test_training_interrupted_is_not_an_error_of_the_request(tmp_path: Path) -> None:
    exc = TrainingInterrupted(tmp_path / "ft-1", 5, 18)
    assert not isinstance(exc, ImprintError)
    assert "--resume ft-1" in str(exc) and "5/18" in str(exc)
