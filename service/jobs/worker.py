"""Job workers: processes that take queued fine-tuning jobs from the store and train them, outside the API's
event loop. ``imprint serve`` starts one as a child process (``job_worker: true``); ``imprint worker`` runs
them on their own (e.g. on the GPU machine), sharing the store through ``database_url``.

    imprint worker                          # concurrency: 1 on CPU, one process per GPU
    imprint worker --concurrency 2 --database-url postgresql://jobs-db/imprint
    python -m service.jobs.worker '{"job_lease_s": 5}'     # what `imprint serve` starts (a JSON WorkerConfig)

SIGTERM/SIGINT: the running job stops at its next step with a checkpoint and goes back to the queue. A worker
killed outright (kill -9) stops renewing its lease; after ``job_lease_s`` the next worker takes the job and
resumes it from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from service.jobs.run import JobRun
from service.jobs.store import Store
from training.config import Settings

log = logging.getLogger("imprint.jobs")


class WorkerConfig(Settings):
    """A job worker's settings (``IMPRINT_*`` env, ``--config`` YAML, flags); names as in ServeConfig."""

    config_title: ClassVar[str] = "invalid worker config"

    home: Path | None = Field(None, description="IMPRINT_HOME: files, adapters, training jobs")
    database_url: str | None = Field(None, description="job store (default: SQLite at $IMPRINT_HOME/jobs.db)")
    job_concurrency: int | None = Field(
        None, ge=1, le=64, description="jobs at once (default: 1, or 1 per GPU)"
    )
    job_poll_s: float = Field(1.0, gt=0, le=60, description="how often an idle worker looks for a job")
    job_lease_s: float = Field(
        30.0, ge=2, le=3600, description="a job whose worker stopped renewing for this long is taken over"
    )
    parent_pid: int | None = Field(None, description="exit when this process is gone (set by imprint serve)")
    exit_when_idle: bool = Field(False, description="exit once the queue is empty (batch runs, benchmarks)")


def concurrency(cfg: WorkerConfig) -> int:
    if cfg.job_concurrency:
        return cfg.job_concurrency
    import torch

    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1


class Worker:
    def __init__(self, cfg: WorkerConfig, slot: int = 0) -> None:
        self.cfg = cfg
        self.store = Store.open(cfg.database_url, cfg.home)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{slot}"
        self.stopping = threading.Event()
        self.current: JobRun | None = None

    def stop(self, *_: Any) -> None:
        self.stopping.set()
        if self.current is not None:
            self.current.shutdown.set()

    def parent_gone(self) -> bool:
        return self.cfg.parent_pid is not None and os.getppid() != self.cfg.parent_pid

    def run(self) -> None:
        log.info("job worker %s on %s", self.id, self.store.url.split("@")[-1])
        watcher = threading.Thread(target=self._watch_parent, daemon=True)
        watcher.start()
        while not self.stopping.is_set():
            job = self.store.claim(self.id, lease_s=self.cfg.job_lease_s)
            if job is None:
                if self.cfg.exit_when_idle:
                    return
                self.stopping.wait(self.cfg.job_poll_s)
                continue
            log.info("worker %s took job %s (attempt %d)", self.id, job.id, job.attempts)
            self.current = JobRun(self.store, job, worker_id=self.id, lease_s=self.cfg.job_lease_s)
            if self.stopping.is_set():
                self.current.shutdown.set()
            self.current.run()
            self.current = None

    def _watch_parent(self) -> None:
        while not self.stopping.wait(1.0):
            if self.parent_gone():  # the API died: checkpoint and requeue, never train as an orphan
                log.warning("parent process is gone; worker %s stops", self.id)
                self.stop()


def run_slot(cfg_json: str, slot: int) -> None:
    worker = Worker(WorkerConfig.model_validate_json(cfg_json), slot)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()


def run_workers(cfg: WorkerConfig) -> None:
    """Run ``concurrency(cfg)`` workers: this process alone, or one process per slot (GPU ``slot``)."""
    n = concurrency(cfg)
    if n == 1:
        return run_slot(cfg.model_dump_json(), 0)
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = []
    for slot in range(n):
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot)  # inherited by the spawned child
        procs.append(ctx.Process(target=run_slot, args=(cfg.model_dump_json(), slot), daemon=False))
        procs[-1].start()
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)

    def forward(*_: Any) -> None:
        for p in procs:
            if p.pid:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()


def start_worker_process(cfg: WorkerConfig) -> subprocess.Popen[bytes]:
    """The worker child of ``imprint serve``: same code as ``imprint worker``, in the same process group (a
    kill of the group takes both); it exits by itself when this process is gone."""
    cfg = cfg.model_copy(update={"parent_pid": os.getpid()})
    env = {**os.environ}
    if cfg.home is not None:
        env["IMPRINT_HOME"] = str(cfg.home)
    return subprocess.Popen([sys.executable, "-m", "service.jobs.worker", cfg.model_dump_json()], env=env)


def stop_worker_process(proc: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    if proc.poll() is None:
        proc.terminate()  # the running job checkpoints and goes back to the queue
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = WorkerConfig.model_validate(json.loads(argv[0])) if argv else WorkerConfig.load(None)
    run_workers(cfg)


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(sys.argv[1:])
