"""Creating a fine-tuning job: every check runs before the job exists, so a bad request leaves nothing queued.

    job = create_job(store, CreateJobRequest(...))   # InvalidInput/NotFound naming the field, or a queued job

Checks, in order: ``method.type`` (only "supervised"), the files (exist, purpose "fine-tune"), the base
``model`` (resolvable: a name ``imprint train --base-model`` takes), the hyperparameters and ``imprint``
options (``TrainConfig``'s own checks), then the data itself with ``training.data.validate_file`` and the base
model's tokenizer — the messages of ``imprint data check``, every bad line and field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from service.jobs.objects import CreateJobRequest
from service.jobs.store import FileRecord, JobRecord, Store, new_id, now
from service.lifecycle.gate import LIFECYCLE_KEYS, check_options
from training.config import ConfigError
from training.errors import InvalidInput

HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")


def create_job(store: Store, req: CreateJobRequest) -> JobRecord:
    if req.method is not None and req.method.type != "supervised":
        raise InvalidInput(
            f"method.type: {req.method.type!r} is not supported here — Imprint trains LoRA adapters with "
            "'supervised' fine-tuning (chat JSONL)",
            param="method.type",
            code="unsupported_method",
        )
    training = training_file(store, req.training_file, "training_file")
    validation = training_file(store, req.validation_file, "validation_file") if req.validation_file else None
    base = resolve_base(req.model)
    cfg = train_config(req, training, validation)
    check_data(training, "training_file", base, cfg.max_seq_len)
    if validation is not None:
        check_data(validation, "validation_file", base, cfg.max_seq_len)
    check_kb(cfg.kb)
    if req.imprint is not None:
        check_options(store, req.imprint.model_dump(exclude_none=True))
    job_id = new_id("ftjob")
    hp, _ = req.chosen_hyperparameters()
    job = JobRecord(
        id=job_id,
        created_at=now(),
        status="queued",
        model=req.model,
        training_file=training.id,
        validation_file=validation.id if validation else None,
        suffix=req.suffix,
        seed=cfg.seed,
        hyperparameters=hp.model_dump(),
        imprint=req.imprint.model_dump(exclude_none=True) if req.imprint else {},
        meta=req.metadata,
        adapter_name=adapter_name(job_id, req.suffix),
    )
    return store.add_job(
        job,
        [
            f"Validating training file: {training.id}"
            + (f" and validation file: {validation.id}" if validation else ""),
            "Files validated, moving job to queued state",
        ],
    )


def adapter_name(job_id: str, suffix: str | None) -> str:
    """The served adapter's name (no ':', unlike the model id)."""
    short = job_id.removeprefix("ftjob-")[:12]
    return f"ft-{suffix}-{short}" if suffix else f"ft-{short}"


def fine_tuned_model(job: JobRecord) -> str:
    """OpenAI's form: ``ft:BASE:ORG:SUFFIX:ID``."""
    return f"ft:{job.model}:imprint:{job.suffix or ''}:{job.id.removeprefix('ftjob-')[:12]}"


def training_file(store: Store, file_id: str, param: str) -> FileRecord:
    rec = store.get_file(file_id, param=param)
    if rec.purpose != "fine-tune":
        raise InvalidInput(
            f"{param}: file {file_id} has purpose {rec.purpose!r}; fine-tuning needs a file uploaded with "
            "purpose 'fine-tune'",
            param=param,
            code="invalid_file_purpose",
        )
    return rec


def resolve_base(model: str) -> Any:
    from training.models import resolve_base_model

    try:
        return resolve_base_model(model)
    except Exception as exc:  # any failure to resolve means: not a base model this server can train
        raise InvalidInput(
            f"model: {model!r} is not a base model this server can fine-tune ({type(exc).__name__}) — use "
            "gemma3-270m, tiny-phi3, a local model folder or a hub id the server has",
            param="model",
            code="model_not_found",
        ) from None


def train_config(req: CreateJobRequest, training: FileRecord, validation: FileRecord | None) -> Any:
    """The job's TrainConfig, built now only to run its checks (the worker builds its own)."""
    from training.train_config import TrainConfig

    hp, where = req.chosen_hyperparameters()
    try:
        return TrainConfig.build(
            **job_train_values(
                req.model,
                training,
                validation,
                hp.model_dump(),
                req.imprint.model_dump(exclude_none=True) if req.imprint else {},
                seed=req.seed,
                suffix=req.suffix,
            )
        )
    except ConfigError as exc:
        raise InvalidInput(
            exc.message, param=_param(exc.message, where), code="invalid_hyperparameters"
        ) from None


def job_train_values(
    model: str,
    training: FileRecord,
    validation: FileRecord | None,
    hyperparameters: dict[str, Any],
    imprint: dict[str, Any],
    *,
    seed: int | None,
    suffix: str | None = None,
) -> dict[str, Any]:
    return {
        "training_file": Path(training.path),
        "validation_file": Path(validation.path) if validation else None,
        "base_model": model,
        **{k: hyperparameters.get(k, "auto") for k in HYPERPARAMETERS},
        "seed": seed,
        "suffix": suffix,
        **{k: v for k, v in imprint.items() if k not in LIFECYCLE_KEYS},  # the gate's, not training's
    }


def _param(message: str, hp_where: str) -> str | None:
    """The request field of the first problem line (``n_epochs: …`` → ``…hyperparameters.n_epochs``)."""
    m = re.search(r"^\s*([a-z_]+)[:.]", message.split("\n", 1)[-1], re.M)
    if not m:
        return None
    field = m.group(1)
    if field in HYPERPARAMETERS:
        return f"{hp_where}.{field}"
    if field in ("training_file", "validation_file", "suffix", "seed"):
        return field
    return f"imprint.{field}"


def check_data(rec: FileRecord, param: str, base: Any, max_tokens: int) -> None:
    """``imprint data check``'s findings; every error line, naming the file id (not the server path)."""
    from transformers import AutoTokenizer

    from training.data import validate_file
    from training.encoding import token_counter

    tokenizer = AutoTokenizer.from_pretrained(base.path)
    report = validate_file(
        rec.path, count_tokens=token_counter(tokenizer, base.chat_template), max_tokens=max_tokens
    )
    if not report.ok:
        lines = "\n".join(f"  {i}" for i in report.errors) or "  no usable training examples"
        raise InvalidInput(
            f"{param}: {rec.id} ({rec.filename}) is not usable for training:\n{lines}",
            param=param,
            code="invalid_training_file",
        )


def check_kb(kb: str | None) -> None:
    if kb is None:
        return
    from indexing.registry import list_kbs

    names = [k.get("name") for k in list_kbs(None)]
    if kb not in names:
        raise InvalidInput(
            f"imprint.kb: knowledge base {kb!r} not found (have: {names or 'none'}); build it with "
            f"`imprint index PATH... --kb {kb}`",
            param="imprint.kb",
            code="kb_not_found",
        )
