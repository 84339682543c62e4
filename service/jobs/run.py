"""One fine-tuning job on a worker: build its TrainConfig, call ``training.train.train`` with the event and
stop hooks, and record the outcome (succeeded with its model, results file and checkpoints; failed with an
OpenAI-shaped ``error``; cancelled; or back to the queue when the worker shuts down mid-job).

    JobRun(store, job, worker_id="host-123-0", lease_s=30).run()

A heartbeat thread renews the job's lease once a second and reads its cancel flag, so ``should_stop`` is a
plain attribute read between two training steps: a cancel lands within about a second plus one step.
"""

from __future__ import annotations

import csv
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from service.jobs.store import CheckpointRecord, FileRecord, JobRecord, Store, new_id, now
from service.jobs.submit import fine_tuned_model, job_train_values
from training.errors import ImprintError

log = logging.getLogger("imprint.jobs")
HEARTBEAT_S = 1.0


class JobRun:
    def __init__(self, store: Store, job: JobRecord, *, worker_id: str, lease_s: float) -> None:
        self.store, self.job, self.worker_id, self.lease_s = store, job, worker_id, lease_s
        self.cancelled = False
        self.lost = False  # another worker took the job over (our lease ran out)
        self.shutdown = threading.Event()  # the worker is stopping: checkpoint and requeue
        self._done = threading.Event()
        self._started = time.monotonic()
        self._first_step: int | None = None
        self._base: Any = None

    # ── hooks ──
    def should_stop(self) -> bool:
        return self.cancelled or self.lost or self.shutdown.is_set()

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(data)

    def _on_job(self, data: dict[str, Any]) -> None:
        self.store.update_job(self.job.id, train_job=data["job"])

    def _on_hyperparameters(self, data: dict[str, Any]) -> None:
        resolved = {k: data[k] for k in ("batch_size", "learning_rate_multiplier", "n_epochs")}
        self.store.update_job(self.job.id, hyperparameters=resolved)
        for key, reason in data["reasons"].items():
            self.store.add_event(self.job.id, f"{key} = {data[key]} ({reason})", data={key: data[key]})
        self.store.add_event(
            self.job.id,
            f"Training on {data['train_examples']} examples "
            f"({data['trained_tokens_per_epoch']} trained tokens per epoch), "
            f"validating on {data['valid_examples']}; {data['total_steps']} steps",
            data={k: data[k] for k in ("train_examples", "valid_examples", "total_steps")},
        )

    def _on_metrics(self, row: dict[str, Any]) -> None:
        step, total = row["step"], row["total_steps"]
        metrics = {
            "step": step,
            "total_steps": total,
            "epoch": row["epoch"],
            "train_loss": row["train_loss"],
            "train_mean_token_accuracy": row["train_mean_token_accuracy"],
            "valid_loss": row["valid_loss"] if row["valid_loss"] != "" else None,
            "valid_mean_token_accuracy": (
                row["valid_mean_token_accuracy"] if row["valid_mean_token_accuracy"] != "" else None
            ),
        }
        self.store.add_event(
            self.job.id, f"Step {step}/{total}: training loss={row['train_loss']:.4f}", type="metrics",
            data=metrics,
        )  # fmt: skip
        self._estimate_finish(step, total)

    def _estimate_finish(self, step: int, total: int) -> None:
        if self._first_step is None:
            self._first_step, self._started = step, time.monotonic()
            return
        done = step - self._first_step
        per_step = (time.monotonic() - self._started) / max(1, done)
        self.store.update_job(self.job.id, estimated_finish=int(time.time() + per_step * (total - step)))

    def _on_checkpoint(self, row: dict[str, Any]) -> None:
        """Each epoch's checkpoint becomes a servable adapter folder of its own (``NAME-step-N``)."""
        step = row["step"]
        name = f"{self.job.adapter_name}-step-{step}"
        path = self.publish_checkpoint(Path(row["path"]), name)
        self.store.add_checkpoint(
            CheckpointRecord(
                id=new_id("ftckpt"),
                job_id=self.job.id,
                created_at=now(),
                step_number=step,
                metrics=checkpoint_metrics(row),
                fine_tuned_model_checkpoint=f"{fine_tuned_model(self.job)}:ckpt-step-{step}",
                adapter_name=name,
                adapter_path=str(path),
            )
        )
        self.store.add_event(self.job.id, f"Checkpoint created at step {step}")

    def publish_checkpoint(self, checkpoint: Path, name: str) -> Path:
        from datetime import UTC, datetime

        from training.adapter import WEIGHT_FILES, AdapterInfo, write_metadata
        from training.fileio import publish_dir

        base = self.base()
        target = self.store.home / "adapters" / name
        with publish_dir(target, replace=True) as tmp:
            for f in WEIGHT_FILES:
                shutil.copy2(checkpoint / f, tmp / f)
            info = AdapterInfo(
                name=name,
                base_model=base.name,
                chat_template=base.chat_template,
                base_revision=base.revision,
                created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            )
            write_metadata(tmp, info)
        return target

    def base(self) -> Any:
        if self._base is None:
            from training.models import resolve_base_model

            self._base = resolve_base_model(self.job.model)
        return self._base

    # ── the run ──
    def run(self) -> None:
        from training.train import TrainingInterrupted, train

        beat = threading.Thread(target=self._heartbeat, name=f"lease-{self.job.id}", daemon=True)
        beat.start()
        try:
            cfg = self.train_config()
            verb = f"resumed from the checkpoint of {cfg.resume}" if cfg.resume else "started"
            self.store.add_event(self.job.id, f"Fine-tuning job {verb} (attempt {self.job.attempts})")
            path = train(cfg, search=self.search(cfg), on_event=self.on_event, should_stop=self.should_stop)
        except TrainingInterrupted:
            self.interrupted()
        except ImprintError as exc:
            self.fail(exc.message, exc.param, exc.code)
        except Exception as exc:  # a bug or a resource problem: the job fails, the worker goes on
            log.exception("job %s failed", self.job.id)
            self.fail(f"training failed: {type(exc).__name__}: {exc}", None, "training_failed")
        else:
            if self.cancelled:
                shutil.rmtree(path, ignore_errors=True)  # never served
                self.finish("cancelled", "Job cancelled")
            elif not self.lost:
                self.succeed(path)
        finally:
            self._done.set()
            beat.join(timeout=5)

    def train_config(self) -> Any:
        from training.train_config import TrainConfig

        job = self.job
        training = self.store.get_file(job.training_file, param="training_file")
        validation = (
            self.store.get_file(job.validation_file, param="validation_file") if job.validation_file else None
        )
        values = job_train_values(
            job.model, training, validation, job.hyperparameters, job.imprint, seed=job.seed
        )
        values.update(
            output=self.store.home / "adapters" / job.adapter_name,
            progress=False,
            checkpoint_interval_s=0.0,  # a checkpoint at every epoch's end: OpenAI's per-epoch checkpoints
            resume=resumable(job.train_job),
        )
        return TrainConfig.build(**values)

    def search(self, cfg: Any) -> Any:
        if not cfg.kb:
            return None
        from indexing.registry import get_kb

        kb = get_kb(cfg.kb)
        return lambda q: kb.search(q, k=3)

    def _heartbeat(self) -> None:
        while not self._done.wait(HEARTBEAT_S):
            try:
                ours, cancel = self.store.heartbeat(self.job.id, self.worker_id, lease_s=self.lease_s)
            except Exception:  # a busy database: try again next beat, the lease has slack
                log.warning("heartbeat failed for %s", self.job.id, exc_info=True)
                continue
            self.lost = self.lost or not ours
            self.cancelled = self.cancelled or cancel

    # ── outcomes ──
    def interrupted(self) -> None:
        if self.cancelled:
            self.finish("cancelled", "Job cancelled")
        elif self.lost:
            log.warning("job %s was taken over by another worker", self.job.id)
        else:  # shutting down: the checkpoint is saved, the next worker resumes from it
            self.store.update_job(self.job.id, status="queued", worker=None, lease_until=0.0)
            self.store.add_event(self.job.id, "Worker stopped; job re-queued and resumes from its checkpoint")

    def fail(self, message: str, param: str | None, code: str) -> None:
        self.store.update_job(
            self.job.id,
            status="failed",
            finished_at=now(),
            error={"code": code, "message": message, "param": param},
        )
        self.store.add_event(self.job.id, f"Job failed: {message}", level="error")

    def finish(self, status: str, message: str) -> None:
        self.store.update_job(self.job.id, status=status, finished_at=now())
        self.store.add_event(self.job.id, message)

    def succeed(self, path: Path) -> None:
        from training.adapter import read_adapter

        info = read_adapter(path)
        metrics = info.metrics
        model = fine_tuned_model(self.job)
        results = self.store_results(path / "results.csv")
        steps = int(metrics.get("steps") or 0)
        self.store.add_checkpoint(
            CheckpointRecord(
                id=new_id("ftckpt"),
                job_id=self.job.id,
                created_at=now(),
                step_number=steps,
                metrics=checkpoint_metrics({"step": steps, **metrics}),
                fine_tuned_model_checkpoint=f"{model}:ckpt-step-{steps}",
                adapter_name=info.name,
                adapter_path=str(path),
            )
        )
        self.store.update_job(
            self.job.id,
            status="succeeded",
            finished_at=now(),
            fine_tuned_model=model,
            adapter_path=str(path),
            trained_tokens=int(metrics.get("trained_tokens_per_epoch", 0))
            * int(metrics.get("epochs_run", 1)),
            result_files=[results.id],
            estimated_finish=None,
        )
        self.store.add_event(self.job.id, f"New fine-tuned model created: {model}")
        self.store.add_event(self.job.id, "The job has successfully completed")

    def store_results(self, csv_path: Path) -> FileRecord:
        file_id = new_id("file")
        target = self.store.files_dir / file_id
        shutil.copy2(csv_path, target)
        with csv_path.open() as fh:
            rows = sum(1 for _ in csv.reader(fh))
        log.info("job %s: results.csv with %d rows stored as %s", self.job.id, rows, file_id)
        return self.store.add_file(
            FileRecord(
                id=file_id,
                bytes=target.stat().st_size,
                created_at=now(),
                filename="step_metrics.csv",
                purpose="fine-tune-results",
                path=str(target),
            )
        )


def checkpoint_metrics(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("step", "train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy")
    return {k: (row.get(k) if row.get(k) != "" else None) for k in keys}


def resumable(train_job: str | None) -> str | None:
    """The training job folder to resume, when an earlier attempt left a checkpoint in it."""
    from training.checkpoint import CHECKPOINT, STATE, jobs_root

    if train_job and (jobs_root() / train_job / CHECKPOINT / STATE).exists():
        return train_job
    return None
