"""The adapter registry: named adapters with numbered versions, one *promoted* version per name, every
promotion and rollback recorded with its time and reason — tables in the jobs store's database (SQLModel), so
every replica on one database sees the same registry.

    reg = Registry(store)                                  # store: service.jobs.store.Store
    v = reg.add_version("family", path, job_id="ftjob-…", data_sha256="…", metrics={})
    reg.promote("family", v.version, reason="gate: not worse on any kind")
    reg.rollback("family", reason="bad data")              # back to the previously promoted version

A name's row holds the promoted version, the stack of versions promoted before it (rollback pops it) and a
``revision`` that every change bumps: a change is one conditional ``UPDATE … WHERE revision = seen`` (two
replicas promoting at once: one wins, the other retries on the new state), and replicas compare revisions
to know what to re-serve.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from training.errors import Conflict, NotFound

RETRIES = 20


class AdapterVersionRecord(SQLModel, table=True):
    __tablename__ = "adapter_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: int
    path: str  # the published adapter folder
    engine_name: str  # the name the engine serves this folder under (unique per folder)
    job_id: str | None = None
    data_sha256: str = ""
    base_model: str = ""
    created_at: float = Field(default_factory=time.time)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    scores: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))  # the gate's {kind: score}


class AdapterNameRecord(SQLModel, table=True):
    __tablename__ = "adapter_names"
    name: str = Field(primary_key=True)
    promoted: int | None = None
    previous: list[int] = Field(default_factory=list, sa_column=Column(JSON))  # rollback pops the last
    revision: int = 0
    updated_at: float = Field(default_factory=time.time)


class PromotionRecord(SQLModel, table=True):
    __tablename__ = "adapter_promotions"
    seq: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    action: str  # "promote" | "rollback"
    version: int
    from_version: int | None = None
    reason: str = ""
    created_at: float = Field(default_factory=time.time)


TABLES = [AdapterVersionRecord.__table__, AdapterNameRecord.__table__, PromotionRecord.__table__]  # type: ignore[attr-defined]


class Registry:
    def __init__(self, store: Any) -> None:
        self.engine = store.engine
        SQLModel.metadata.create_all(self.engine, tables=TABLES)

    # ── reading ──
    def names(self) -> list[AdapterNameRecord]:
        with Session(self.engine) as s:
            return list(s.exec(select(AdapterNameRecord).order_by(col(AdapterNameRecord.name))))

    def name(self, name: str) -> AdapterNameRecord:
        with Session(self.engine) as s:
            row = s.get(AdapterNameRecord, name)
        if row is None:
            known = [n.name for n in self.names()]
            raise NotFound(
                f"name: no adapter named {name!r} in the registry (have: {known or 'none'}); a fine-tuning "
                'job with imprint: {"adapter": NAME} creates it',
                param="name",
                code="adapter_not_found",
            )
        return row

    def versions(self, name: str | None = None) -> list[AdapterVersionRecord]:
        with Session(self.engine) as s:
            q = select(AdapterVersionRecord)
            if name is not None:
                q = q.where(AdapterVersionRecord.name == name)
            return list(s.exec(q.order_by(col(AdapterVersionRecord.name), col(AdapterVersionRecord.version))))

    def version(self, name: str, version: int) -> AdapterVersionRecord:
        self.name(name)
        with Session(self.engine) as s:
            q = select(AdapterVersionRecord).where(
                AdapterVersionRecord.name == name, AdapterVersionRecord.version == version
            )
            row = s.exec(q).first()
        if row is None:
            have = [v.version for v in self.versions(name)]
            raise NotFound(
                f"version: adapter {name!r} has no version {version} (versions: {have})",
                param="version",
                code="version_not_found",
            )
        return row

    def version_of_job(self, job_id: str) -> AdapterVersionRecord | None:
        with Session(self.engine) as s:
            return s.exec(select(AdapterVersionRecord).where(AdapterVersionRecord.job_id == job_id)).first()

    def promoted(self, name: str) -> AdapterVersionRecord | None:
        row = self.name(name)
        return None if row.promoted is None else self.version(name, row.promoted)

    def history(self, name: str) -> list[PromotionRecord]:
        with Session(self.engine) as s:
            q = select(PromotionRecord).where(PromotionRecord.name == name)
            return list(s.exec(q.order_by(col(PromotionRecord.seq))))

    def revisions(self) -> dict[str, int]:
        """name → revision: what a replica compares with what it serves (one small query per poll)."""
        with Session(self.engine) as s:
            rows = s.exec(select(AdapterNameRecord.name, AdapterNameRecord.revision))
            return {n: r for n, r in rows}

    # ── writing ──
    def add_version(self, name: str, path: str, *, engine_name: str, **fields: Any) -> AdapterVersionRecord:
        """The next version number of ``name`` (the name is created with its first version)."""
        for _ in range(RETRIES):
            with Session(self.engine, expire_on_commit=False) as s:
                if s.get(AdapterNameRecord, name) is None:
                    s.add(AdapterNameRecord(name=name))
                    try:
                        s.commit()
                    except IntegrityError:  # another replica created it first
                        s.rollback()
                top = s.exec(
                    select(func.max(AdapterVersionRecord.version)).where(AdapterVersionRecord.name == name)
                ).one()
                rec = AdapterVersionRecord(
                    name=name, version=(top or 0) + 1, path=path, engine_name=engine_name, **fields
                )
                s.add(rec)
                try:
                    s.commit()
                    return rec
                except IntegrityError:  # the same number taken concurrently: take the next one
                    s.rollback()
        raise Conflict(f"name: could not add a version to {name!r}; try again", param="name")

    def set_scores(self, name: str, version: int, scores: dict[str, Any]) -> None:
        with Session(self.engine) as s:
            s.execute(
                update(AdapterVersionRecord)
                .where(col(AdapterVersionRecord.name) == name, col(AdapterVersionRecord.version) == version)
                .values(scores=scores)
            )
            s.commit()

    def promote(self, name: str, version: int, *, reason: str) -> AdapterNameRecord:
        self.version(name, version)  # NotFound naming the name or the version
        return self._change(name, "promote", reason, lambda row: _promoted(row, version))

    def rollback(self, name: str, *, reason: str) -> AdapterNameRecord:
        return self._change(name, "rollback", reason, _rolled_back)

    def _change(self, name: str, action: str, reason: str, step: Any) -> AdapterNameRecord:
        for _ in range(RETRIES):
            row = self.name(name)
            target, previous = step(row)
            with Session(self.engine) as s:
                done = s.execute(
                    update(AdapterNameRecord)
                    .where(
                        col(AdapterNameRecord.name) == name, col(AdapterNameRecord.revision) == row.revision
                    )
                    .values(
                        promoted=target, previous=previous, revision=row.revision + 1, updated_at=time.time()
                    )
                )
                if done.rowcount == 1:  # type: ignore[attr-defined]
                    s.add(
                        PromotionRecord(
                            name=name, action=action, version=target, from_version=row.promoted, reason=reason
                        )
                    )
                    s.commit()
                    return self.name(name)
                s.rollback()  # another replica changed it first: redo the step on its state
        raise Conflict(f"name: {name!r} is being changed by others; try again", param="name")


def _promoted(row: AdapterNameRecord, version: int) -> tuple[int, list[int]]:
    if row.promoted is None or row.promoted == version:
        return version, list(row.previous)
    return version, [*row.previous, row.promoted]


def _rolled_back(row: AdapterNameRecord) -> tuple[int, list[int]]:
    if not row.previous:
        raise Conflict(
            f"name: adapter {row.name!r} has no previously promoted version to roll back to "
            f"(promoted: {row.promoted}); promote a version by number instead",
            param="name",
            code="no_previous_version",
        )
    return row.previous[-1], list(row.previous[:-1])
