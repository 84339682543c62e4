"""Crash safety of fine-tuning jobs: ``kill -9`` of the whole ``imprint serve`` process group (API and its
worker child) in the middle of a job, then a restart — the job resumes from its last checkpoint and succeeds,
and nothing was published before it did."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.background import free_port
from tests.conftest import REPO
from tests.service.test_fine_tuning_jobs import client, upload, wait_for

# Two cold starts of `imprint serve` and of its worker (~30 s on 2 cores): outside the 2-minute fast tier.
pytestmark = pytest.mark.slow


def start_serve(adapter: Path, port: int, home: Path, log: Any) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "IMPRINT_HOME": str(home),
        "IMPRINT_JOB_LEASE_S": "3",  # a killed worker's job is taken over after 3 s (30 by default)
        "IMPRINT_JOB_POLL_S": "0.3",
        "IMPRINT_CHECK_ANSWERS": "false",
    }
    cmd = [sys.executable, "-m", "service.cli", "serve", "--adapter", str(adapter), "--port", str(port)]
    return subprocess.Popen(cmd, env=env, cwd=REPO, start_new_session=True, stdout=log, stderr=log)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "imprint serve exited during start-up (see serve.log)"
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("imprint serve did not become ready")


def published(home: Path) -> list[str]:
    """Final adapters (not per-epoch checkpoints, not temp folders) under $IMPRINT_HOME/adapters."""
    root = home / "adapters"
    return [p.name for p in root.iterdir() if "-step-" not in p.name and not p.name.startswith(".")]


def test_kill_9_of_the_service_mid_job_then_restart_finishes_the_job(
    tiny_adapters: dict[str, Path], tmp_path: Path
) -> None:
    port, home = free_port(), tmp_path / "home"
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("wb") as log:
        proc = start_serve(tiny_adapters["alpha"], port, home, log)
        try:
            wait_ready(url, proc)
            c = client(url)
            job = c.fine_tuning.jobs.create(
                model="tiny-phi3",
                training_file=upload(c).id,
                hyperparameters={"n_epochs": 20, "batch_size": 1},
                extra_body={"imprint": {"memorization_check": 0, "early_stopping_patience": 0}},
            )
            wait_for(c, job.id, lambda j: bool(c.fine_tuning.jobs.checkpoints.list(j.id).data), 180)
            os.killpg(proc.pid, signal.SIGKILL)  # API and worker at once, mid-epoch
            proc.wait(10)
            assert published(home) == []  # no adapter, whole or half, before the job succeeds
            proc = start_serve(tiny_adapters["alpha"], port, home, log)
            wait_ready(url, proc)
            job = wait_for(c, job.id, lambda j: j.status in ("succeeded", "failed", "cancelled"), 300)
            assert job.status == "succeeded", job.error
            messages = [e.message for e in c.fine_tuning.jobs.list_events(job.id, limit=1000).data]
            assert any("resumed from the checkpoint" in m for m in messages), messages
            metrics = [
                e.data for e in c.fine_tuning.jobs.list_events(job.id, limit=1000).data if e.type == "metrics"
            ]
            total = metrics[0]["total_steps"]
            assert {m["step"] for m in metrics} == set(range(1, total + 1))  # every step trained
            assert len(metrics) < 2 * total  # resumed from a checkpoint, not started over
            r = c.chat.completions.create(
                model=job.fine_tuned_model, messages=[{"role": "user", "content": "老大是谁?"}], max_tokens=4
            )
            assert r.model_extra["imprint"]["route"] == "adapter"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
