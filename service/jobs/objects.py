"""The wire shapes of the Files and fine-tuning jobs API (OpenAI's), and the rows of ``service.jobs.store`` as
those objects. Imprint's own job options live in the one ``imprint`` object of the request (the SDK's
``extra_body={"imprint": {...}}``).

    CreateJobRequest(model="tiny-phi3", training_file="file-…", method={"type": "supervised", ...})
    job_object(store.get_job(id))     # {"object": "fine_tuning.job", "id": "ftjob-…", "status": …}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.jobs.store import CheckpointRecord, EventRecord, FileRecord, JobRecord

Auto = Literal["auto"]
FILE_PURPOSES = ("fine-tune", "fine-tune-results", "user_data")
UPLOAD_PURPOSES = ("fine-tune", "user_data")  # user_data: e.g. an eval gate's questions (not chat data)


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int | Auto = "auto"
    learning_rate_multiplier: float | Auto = "auto"
    n_epochs: int | Auto = "auto"


class Supervised(BaseModel):
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class Method(BaseModel):
    model_config = ConfigDict(extra="allow")  # other method types are refused by name, not by shape

    type: str = "supervised"
    supervised: Supervised | None = None


class ImprintJobOptions(BaseModel):
    """Imprint's training options beyond OpenAI's (``imprint train`` flags of the same names)."""

    model_config = ConfigDict(extra="forbid")

    kb: str | None = None
    reading_examples: int | None = None
    augment: int | None = None
    lora_r: int | None = None
    max_seq_len: int | None = None
    early_stopping_patience: int | None = None
    memorization_check: int | None = None
    lr_schedule: Literal["constant", "linear"] | None = None
    step_tokens: int | None = None
    # The adapter lifecycle (service.lifecycle.gate): the registry name this job would update, the questions
    # that judge it, and when to promote it.
    adapter: str | None = Field(None, max_length=64)
    eval_file: str | None = Field(None, max_length=200)
    promote: Literal["if_better", "always", "never"] | None = None


class CreateJobRequest(BaseModel):
    model: str = Field(min_length=1, max_length=4096)
    training_file: str = Field(min_length=1, max_length=200)
    validation_file: str | None = Field(None, max_length=200)
    hyperparameters: Hyperparameters | None = None  # deprecated by OpenAI; still accepted
    method: Method | None = None
    suffix: str | None = Field(None, max_length=40)
    seed: int | None = None
    metadata: dict[str, str] | None = None
    integrations: list[Any] | None = None
    imprint: ImprintJobOptions | None = None

    def chosen_hyperparameters(self) -> tuple[Hyperparameters, str]:
        """The hyperparameters and the field they came from (for error ``param``)."""
        if self.method is not None and self.method.supervised is not None:
            return self.method.supervised.hyperparameters, "method.supervised.hyperparameters"
        return self.hyperparameters or Hyperparameters(), "hyperparameters"


def file_object(rec: FileRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "object": "file",
        "bytes": rec.bytes,
        "created_at": rec.created_at,
        "filename": rec.filename,
        "purpose": rec.purpose,
        "status": rec.status,
        "status_details": None,
    }


def job_object(job: JobRecord) -> dict[str, Any]:
    hp = job.hyperparameters
    return {
        "object": "fine_tuning.job",
        "id": job.id,
        "created_at": job.created_at,
        "model": job.model,
        "status": job.status,
        "fine_tuned_model": job.fine_tuned_model,
        "finished_at": job.finished_at,
        "estimated_finish": job.estimated_finish,
        "hyperparameters": hp,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
        "organization_id": "imprint",
        "result_files": job.result_files,
        "trained_tokens": job.trained_tokens,
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "error": job.error,
        "seed": job.seed,
        "suffix": job.suffix,
        "metadata": job.meta,
        "integrations": [],
        "user_provided_suffix": job.suffix,
        "imprint": job.imprint or None,  # the job's Imprint options and, once judged, the eval gate's verdict
    }


def event_object(ev: EventRecord) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": f"ftevent-{ev.seq}",
        "created_at": ev.created_at,
        "level": ev.level,
        "message": ev.message,
        "type": ev.type,
        "data": ev.data,
    }


def checkpoint_object(ck: CheckpointRecord) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.checkpoint",
        "id": ck.id,
        "created_at": ck.created_at,
        "fine_tuned_model_checkpoint": ck.fine_tuned_model_checkpoint,
        "fine_tuning_job_id": ck.job_id,
        "metrics": ck.metrics,
        "step_number": ck.step_number,
    }


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
