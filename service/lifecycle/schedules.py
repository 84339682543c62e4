"""Scheduled retraining as ordinary fine-tuning jobs: a schedule (cron or interval, stored with the jobs)
watches a training file on the server; each tick whose data changed since the last job it made — or whose
adapter has new stale facts (the last staleness report; with ``add_document_answers`` the documents'
answers are added as training pairs) — uploads the file and creates a gated job (``imprint``: ``adapter``,
``eval_file``, ``promote``), visible in ``GET /v1/fine_tuning/jobs``. A tick without a change
creates nothing.

    sched = add_schedule(store, ScheduleRequest(adapter="family", training_path="data/family.jsonl",
                                                 every_s=3600), life)
    await run_due(life)      # every poll of every replica: each due schedule is claimed by ONE of them

Firing once: a tick is claimed with ``UPDATE schedules SET next_due = … WHERE id = … AND next_due = seen``;
of several replicas polling one database exactly one sees its row updated and creates the job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlalchemy import JSON, Column, update
from sqlmodel import Field, Session, SQLModel, col, select

from training.errors import InvalidInput, NotFound


class ScheduleRecord(SQLModel, table=True):
    __tablename__ = "schedules"
    id: str = Field(primary_key=True)
    created_at: int
    adapter: str = Field(index=True)
    model: str
    training_path: str  # the watched file, inside $IMPRINT_HOME
    cron: str | None = None
    every_s: float | None = None
    next_due: float = 0.0
    eval_file: str | None = None
    promote: str = "if_better"
    on_stale: bool = True  # a tick also retrains when the staleness report found (new) stale facts
    add_document_answers: bool = (
        False  # …and adds the documents' answers to those questions as training pairs
    )
    last_stale_sha256: str = ""  # the stale facts the last job was made for (the same ones never again)
    hyperparameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))  # other imprint options
    last_sha256: str = ""
    last_job: str | None = None
    last_tick: float | None = None


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    adapter: str = PField(min_length=1, max_length=64)
    training_path: str = PField(min_length=1, max_length=4096)
    model: str = "gemma3-270m"
    cron: str | None = PField(None, max_length=200)
    every_s: float | None = PField(None, ge=1, le=366 * 86400)
    eval_file: str | None = None
    promote: Literal["if_better", "always", "never"] = "if_better"
    on_stale: bool = True
    add_document_answers: bool = False
    hyperparameters: dict[str, Any] = PField(default_factory=dict)
    options: dict[str, Any] = PField(default_factory=dict)


def create_tables(engine: Any) -> None:
    SQLModel.metadata.create_all(engine, tables=[ScheduleRecord.__table__])  # type: ignore[attr-defined]


def next_time(rec: ScheduleRecord | ScheduleRequest, after: float) -> float:
    if rec.every_s:
        return after + rec.every_s
    from datetime import UTC, datetime

    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(str(rec.cron), timezone="UTC")
    fire = trigger.get_next_fire_time(None, datetime.fromtimestamp(after, UTC))
    return fire.timestamp()


def watched_path(home: Path, raw: str) -> Path:
    """The training file, which must lie inside $IMPRINT_HOME (clients never name other server paths)."""
    root = home.resolve()
    path = (root / raw).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise InvalidInput(
            f"training_path: {raw!r} is not a file inside the service's home folder; put the training data "
            "there (e.g. data/train.jsonl) and name it relative to it",
            param="training_path",
        )
    return path


def add_schedule(store: Any, req: ScheduleRequest, life: Any) -> ScheduleRecord:
    from service.jobs.store import new_id, now
    from service.lifecycle.gate import check_options

    if (req.cron is None) == (req.every_s is None):
        raise InvalidInput("cron: give exactly one of cron (e.g. '0 3 * * *') or every_s", param="cron")
    if req.cron is not None:
        try:
            next_time(req, time.time())
        except ValueError as exc:
            raise InvalidInput(f"cron: {req.cron!r} is not a cron expression ({exc})", param="cron") from None
    watched_path(store.home, req.training_path)
    check_options(store, {"adapter": req.adapter, "eval_file": req.eval_file})
    rec = ScheduleRecord(
        id=new_id("sched"),
        created_at=now(),
        next_due=time.time(),  # the first tick is due at once
        **req.model_dump(),
    )
    with Session(store.engine, expire_on_commit=False) as s:
        s.add(rec)
        s.commit()
    return rec


def list_schedules(store: Any) -> list[ScheduleRecord]:
    with Session(store.engine) as s:
        return list(s.exec(select(ScheduleRecord).order_by(col(ScheduleRecord.created_at))))


def remove_schedule(store: Any, schedule_id: str) -> ScheduleRecord:
    with Session(store.engine) as s:
        rec = s.get(ScheduleRecord, schedule_id)
        if rec is None:
            raise NotFound(
                f"schedule_id: no schedule {schedule_id!r} (GET /v1/schedules)", param="schedule_id"
            )
        s.delete(rec)
        s.commit()
    return rec


def claim_tick(store: Any, rec: ScheduleRecord) -> bool:
    t = time.time()
    with Session(store.engine) as s:
        took = s.execute(
            update(ScheduleRecord)
            .where(col(ScheduleRecord.id) == rec.id, col(ScheduleRecord.next_due) == rec.next_due)
            .values(next_due=next_time(rec, t), last_tick=t)
        )
        s.commit()
    return took.rowcount == 1  # type: ignore[attr-defined]


def stale_digest(pairs: list[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps(sorted(pairs), ensure_ascii=False).encode()).hexdigest() if pairs else ""


def with_pairs(data: bytes, pairs: list[tuple[str, str]]) -> bytes:
    """The training data plus one chat example per (question, the document's answer)."""
    lines = [
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]},
                   ensure_ascii=False)
        for q, a in pairs
    ]  # fmt: skip
    head = data if data.endswith(b"\n") or not data else data + b"\n"
    return head + "".join(line + "\n" for line in lines).encode()


def tick(store: Any, rec: ScheduleRecord, stale: list[tuple[str, str]]) -> str | None:
    """One claimed tick: a gated job when the data changed, or when the adapter has stale facts it was not
    retrained for yet (``stale``: (question, the document's answer) pairs); else nothing."""
    from service.jobs.objects import CreateJobRequest
    from service.jobs.store import FileRecord, new_id, now
    from service.jobs.submit import create_job

    path = watched_path(store.home, rec.training_path)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    digest = stale_digest(stale) if rec.on_stale else ""
    if sha == rec.last_sha256 and digest in ("", rec.last_stale_sha256):
        return None
    if rec.add_document_answers and stale:
        data = with_pairs(data, stale)
    file_id = new_id("file")
    target = store.files_dir / file_id
    target.write_bytes(data)
    store.add_file(
        FileRecord(id=file_id, bytes=len(data), created_at=now(), filename=path.name, purpose="fine-tune",
                   path=str(target))
    )  # fmt: skip
    imprint = {**rec.options, "adapter": rec.adapter, "promote": rec.promote}
    if rec.eval_file:
        imprint["eval_file"] = rec.eval_file
    job = create_job(
        store,
        CreateJobRequest(
            model=rec.model,
            training_file=file_id,
            hyperparameters=rec.hyperparameters or None,
            metadata={"schedule": rec.id},
            imprint=imprint,
        ),
    )
    why = (
        "training data changed"
        if sha != rec.last_sha256
        else f"{len(stale)} stale fact(s) in the staleness report"
    )
    store.add_event(job.id, f"Created by schedule {rec.id}: {why}")
    with Session(store.engine) as s:
        s.execute(
            update(ScheduleRecord)
            .where(col(ScheduleRecord.id) == rec.id)
            .values(last_sha256=sha, last_stale_sha256=digest, last_job=job.id)
        )
        s.commit()
    return job.id


async def run_due(life: Any) -> list[str]:
    """Every due schedule this replica wins the claim for: its tick. The jobs it created."""
    store = life.store
    due = [r for r in await asyncio.to_thread(list_schedules, store) if r.next_due <= time.time()]
    made = []
    for rec in due:
        if not await asyncio.to_thread(claim_tick, store, rec):
            continue  # another replica fired it
        stale = life.stale_pairs(rec.adapter)
        try:
            job_id = await asyncio.to_thread(tick, store, rec, stale)
        except Exception:
            import logging

            logging.getLogger("imprint.lifecycle").warning("schedule %s tick failed", rec.id, exc_info=True)
            continue
        if job_id:
            made.append(job_id)
            life.jobs.ensure_worker()
    return made
