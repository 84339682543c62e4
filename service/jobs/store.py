"""The durable store of fine-tuning jobs: files, jobs, events and checkpoints in one SQL database (SQLModel on
SQLAlchemy). By default SQLite in WAL mode at ``$IMPRINT_HOME/jobs.db``, which the API and every worker
process on the machine share; ``database_url`` (e.g. ``postgresql://…``) swaps in a server database.

    store = Store.open(None)                      # $IMPRINT_HOME/jobs.db
    job = store.claim("worker-1", lease_s=30)     # atomically takes the oldest queued (or abandoned) job

Claiming is one conditional ``UPDATE … WHERE status = 'queued' OR lease expired``: of two workers racing for
a job exactly one sees its row updated. A running job's worker renews its lease (``heartbeat``); a job whose
lease ran out (its worker was killed) is claimed again and resumes from its last checkpoint.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, event, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from training.errors import NotFound

TERMINAL = ("succeeded", "failed", "cancelled")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


class FileRecord(SQLModel, table=True):
    __tablename__ = "files"
    id: str = Field(primary_key=True)
    bytes: int
    created_at: int = Field(index=True)
    filename: str
    purpose: str = Field(index=True)
    status: str = "processed"
    path: str  # where the bytes are (named by the id, never by the client's filename)


class JobRecord(SQLModel, table=True):
    __tablename__ = "jobs"
    id: str = Field(primary_key=True)
    created_at: int = Field(index=True)
    # Sub-second creation time: jobs run and list in creation order even within one second.
    queued_at: float = Field(default_factory=time.time, index=True)
    status: str = Field(index=True)
    model: str
    training_file: str
    validation_file: str | None = None
    suffix: str | None = None
    seed: int = 42
    hyperparameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    imprint: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column("metadata", JSON))
    adapter_name: str
    fine_tuned_model: str | None = None  # set when the job succeeds
    adapter_path: str | None = None
    trained_tokens: int | None = None
    result_files: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    finished_at: int | None = None
    estimated_finish: int | None = None
    worker: str | None = None
    lease_until: float = 0.0
    cancel_requested: bool = False
    train_job: str | None = None  # the training job folder (resume from its checkpoint)
    attempts: int = 0


class EventRecord(SQLModel, table=True):
    __tablename__ = "job_events"
    seq: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(index=True)
    created_at: int
    level: str = "info"
    message: str
    type: str = "message"
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class CheckpointRecord(SQLModel, table=True):
    __tablename__ = "job_checkpoints"
    id: str = Field(primary_key=True)
    job_id: str = Field(index=True)
    created_at: int
    step_number: int
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    fine_tuned_model_checkpoint: str
    adapter_name: str
    adapter_path: str


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        cursor.execute("PRAGMA busy_timeout=30000")  # writers from other processes wait, not fail
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def driver_url(url: str) -> str:
    """``postgresql://…`` (the form PostgreSQL's own tools take) → the psycopg 3 driver SQLAlchemy needs."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


class Store:
    def __init__(self, url: str, home: Path) -> None:
        self.url, self.home = url, home
        if url.startswith("sqlite"):
            self.engine = create_engine(url)
            _sqlite_pragmas(self.engine)
        else:  # a server database several replicas share: drop connections the server closed
            self.engine = create_engine(driver_url(url), pool_pre_ping=True)
        try:
            SQLModel.metadata.create_all(self.engine)
        except OperationalError:  # another process created the tables between the check and the CREATE
            SQLModel.metadata.create_all(self.engine)

    @classmethod
    def open(cls, database_url: str | None, home: Path | None = None) -> Store:
        from training.paths import imprint_home

        home = Path(home or imprint_home())
        home.mkdir(parents=True, exist_ok=True)
        return cls(database_url or f"sqlite:///{home / 'jobs.db'}", home)

    @property
    def files_dir(self) -> Path:
        folder = self.home / "files"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _add(self, *rows: SQLModel) -> None:
        with Session(self.engine, expire_on_commit=False) as s:
            s.add_all(rows)
            s.commit()

    # ── files ──
    def add_file(self, rec: FileRecord) -> FileRecord:
        self._add(rec)
        return rec

    def get_file(self, file_id: str, param: str = "file_id") -> FileRecord:
        with Session(self.engine) as s:
            rec = s.get(FileRecord, file_id)
        if rec is None:
            raise NotFound(
                f"{param}: no file with id {file_id!r}; upload it with POST /v1/files (list: GET /v1/files)",
                param=param,
                code="file_not_found",
            )
        return rec

    def list_files(
        self, *, purpose: str | None, after: str | None, limit: int, order: str
    ) -> list[FileRecord]:
        with Session(self.engine) as s:
            q = select(FileRecord)
            if purpose:
                q = q.where(FileRecord.purpose == purpose)
            key = (col(FileRecord.created_at), col(FileRecord.id))
            if after:
                ref = s.get(FileRecord, after)
                if ref is not None:
                    q = q.where(
                        (col(FileRecord.created_at) < ref.created_at)
                        | ((col(FileRecord.created_at) == ref.created_at) & (col(FileRecord.id) < ref.id))
                        if order == "desc"
                        else (col(FileRecord.created_at) > ref.created_at)
                        | ((col(FileRecord.created_at) == ref.created_at) & (col(FileRecord.id) > ref.id))
                    )
            q = q.order_by(*(k.desc() for k in key)) if order == "desc" else q.order_by(*key)
            return list(s.exec(q.limit(limit)))

    def delete_file(self, file_id: str) -> FileRecord:
        with Session(self.engine) as s:
            rec = s.get(FileRecord, file_id)
            if rec is None:
                self.get_file(file_id)  # raises NotFound
            s.delete(rec)
            s.commit()
        assert rec is not None
        Path(rec.path).unlink(missing_ok=True)
        return rec

    # ── jobs ──
    def add_job(self, job: JobRecord, messages: list[str]) -> JobRecord:
        """The job and its first events in one transaction: a job exists whole or not at all."""
        t = now()
        self._add(job, *(EventRecord(job_id=job.id, created_at=t, message=m) for m in messages))
        return job

    def get_job(self, job_id: str) -> JobRecord:
        with Session(self.engine) as s:
            rec = s.get(JobRecord, job_id)
        if rec is None:
            raise NotFound(
                f"fine_tuning_job_id: no job with id {job_id!r} (list: GET /v1/fine_tuning/jobs)",
                param="fine_tuning_job_id",
                code="job_not_found",
            )
        return rec

    def list_jobs(self, *, after: str | None, limit: int, status: str | None = None) -> list[JobRecord]:
        with Session(self.engine) as s:
            q = select(JobRecord)
            if status:
                q = q.where(JobRecord.status == status)
            if after and (ref := s.get(JobRecord, after)) is not None:
                q = q.where(col(JobRecord.queued_at) < ref.queued_at)
            q = q.order_by(col(JobRecord.queued_at).desc()).limit(limit)
            return list(s.exec(q))

    def update_job(self, job_id: str, **fields: Any) -> None:
        with Session(self.engine) as s:
            s.execute(update(JobRecord).where(col(JobRecord.id) == job_id).values(**fields))
            s.commit()

    def request_cancel(self, job_id: str) -> JobRecord:
        """Queued: cancelled at once. Running: flagged; its worker stops at the next step."""
        job = self.get_job(job_id)
        if job.status in TERMINAL:
            return job
        with Session(self.engine) as s:
            done = s.execute(
                update(JobRecord)
                .where(col(JobRecord.id) == job_id, col(JobRecord.status).in_(("validating_files", "queued")))
                .values(status="cancelled", cancel_requested=True, finished_at=now())
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                s.execute(update(JobRecord).where(col(JobRecord.id) == job_id).values(cancel_requested=True))
            s.commit()
        if done.rowcount:  # type: ignore[attr-defined]
            self.add_event(job_id, "Job cancelled before it started")
        return self.get_job(job_id)

    def claim(self, worker: str, *, lease_s: float) -> JobRecord | None:
        """Take the oldest queued job, or a running one whose worker's lease ran out; None if there is none.
        The conditional UPDATE makes the take atomic across processes."""
        t = time.time()
        claimable = (col(JobRecord.status) == "queued") | (
            (col(JobRecord.status) == "running") & (col(JobRecord.lease_until) < t)
        )
        for _ in range(5):  # another worker may win a candidate; try the next one
            with Session(self.engine) as s:
                q = select(JobRecord).where(claimable).order_by(col(JobRecord.queued_at))
                candidate = s.exec(q.limit(1)).first()
                if candidate is None:
                    return None
                took = s.execute(
                    update(JobRecord)
                    .where(col(JobRecord.id) == candidate.id, claimable)
                    .values(
                        status="running",
                        worker=worker,
                        lease_until=t + lease_s,
                        attempts=JobRecord.attempts + 1,
                    )
                )
                s.commit()
                if took.rowcount == 1:  # type: ignore[attr-defined]
                    return self.get_job(candidate.id)
        return None

    def heartbeat(self, job_id: str, worker: str, *, lease_s: float) -> tuple[bool, bool]:
        """Renew the lease; (still ours, cancel requested)."""
        with Session(self.engine) as s:
            took = s.execute(
                update(JobRecord)
                .where(col(JobRecord.id) == job_id, col(JobRecord.worker) == worker)
                .values(lease_until=time.time() + lease_s)
            )
            s.commit()
            job = s.get(JobRecord, job_id)
        return bool(took.rowcount), bool(job and job.cancel_requested)  # type: ignore[attr-defined]

    # ── events, checkpoints ──
    def add_event(
        self, job_id: str, message: str, *, level: str = "info", type: str = "message", data: Any = None
    ) -> None:
        self._add(
            EventRecord(job_id=job_id, created_at=now(), level=level, message=message, type=type, data=data)
        )

    def list_events(self, job_id: str, *, after: int | None, limit: int) -> list[EventRecord]:
        """Newest first, as OpenAI lists them; ``after`` is the sequence number of the last event seen."""
        with Session(self.engine) as s:
            q = select(EventRecord).where(EventRecord.job_id == job_id)
            if after is not None:
                q = q.where(col(EventRecord.seq) < after)
            return list(s.exec(q.order_by(col(EventRecord.seq).desc()).limit(limit)))

    def add_checkpoint(self, rec: CheckpointRecord) -> None:
        self._add(rec)

    def list_checkpoints(
        self, job_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[CheckpointRecord]:
        with Session(self.engine) as s:
            q = select(CheckpointRecord).where(CheckpointRecord.job_id == job_id)
            rows = list(s.exec(q.order_by(col(CheckpointRecord.step_number).desc())))
        if after:
            ids = [r.id for r in rows]
            rows = rows[ids.index(after) + 1 :] if after in ids else rows
        return rows[:limit]

    def servable(self) -> tuple[list[JobRecord], list[CheckpointRecord]]:
        """Every succeeded job and every checkpoint (the API serves those it does not serve yet)."""
        with Session(self.engine) as s:
            jobs = list(s.exec(select(JobRecord).where(JobRecord.status == "succeeded")))
            checkpoints = list(s.exec(select(CheckpointRecord)))
        return jobs, checkpoints
