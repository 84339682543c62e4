"""The lifecycle in a running service: serve each registry name's promoted version, judge jobs that name
an adapter (the eval gate), promote and roll back — on every replica that shares the jobs store.

    life = await start_lifecycle(settings, jobs)   # in the app's lifespan, after start_jobs
    await life.promote("family", 2, reason="…")    # hot and atomic on this replica; the others within a poll
    await life.close()

Every ``job_poll_s`` a replica: serves what the registry promotes (``RegistryServing.apply``), then gates
each succeeded job that names an adapter and has no verdict yet. A gate is claimed by inserting the job's
row into ``adapter_gates`` (a primary key), so with several replicas exactly one judges a job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from service.config import ServeConfig
from service.jobs.service import JobService
from service.jobs.store import JobRecord
from service.lifecycle import gate, schedules
from service.lifecycle.registry import AdapterNameRecord, Registry
from service.lifecycle.serving import RegistryServing
from training.errors import NotFound

log = logging.getLogger("imprint.lifecycle")


class GateClaim(SQLModel, table=True):
    __tablename__ = "adapter_gates"
    job_id: str = Field(primary_key=True)
    replica: str
    claimed_at: float = Field(default_factory=time.time)


class Lifecycle:
    def __init__(self, settings: ServeConfig, jobs: JobService, metrics: Any = None) -> None:
        import os
        import socket

        from prometheus_client import Gauge

        self.settings, self.jobs, self.store, self.pipeline = settings, jobs, jobs.store, jobs.pipeline
        self.registry = Registry(self.store)
        SQLModel.metadata.create_all(self.store.engine, tables=[GateClaim.__table__])  # type: ignore[attr-defined]
        self.serving = RegistryServing(self.registry, self.pipeline)
        self.replica = f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        schedules.create_tables(self.store.engine)
        self.hooks: list[Any] = [lambda: schedules.run_due(self)]  # more work each poll
        self.stale_gauge = (
            Gauge(
                "imprint_adapter_stale_facts",
                "Trained questions whose answer newer documents contradict (last staleness report)",
                ["adapter"],
                registry=metrics.registry,
            )
            if metrics is not None
            else None
        )
        self.reports: dict[str, dict[str, Any]] = {}  # name → its last staleness report on the served KB
        self._task: asyncio.Task[None] | None = None
        self._gating = asyncio.Lock()

    # ── promotion ──
    async def promote(self, name: str, version: int, *, reason: str) -> AdapterNameRecord:
        rec = await asyncio.to_thread(self.registry.version, name, version)  # 404 naming name or version
        await self.serving.prepare(rec)  # loaded beside what serves; a version that cannot load is a 4xx
        row = await asyncio.to_thread(self.registry.promote, name, version, reason=reason)
        await self.serving.apply()
        return row

    async def rollback(self, name: str, *, reason: str) -> AdapterNameRecord:
        row = await asyncio.to_thread(self.registry.name, name)
        if row.previous:  # load the target first: a rollback that cannot serve changes nothing
            await self.serving.prepare(await asyncio.to_thread(self.registry.version, name, row.previous[-1]))
        row = await asyncio.to_thread(self.registry.rollback, name, reason=reason)
        await self.serving.apply()
        return row

    # ── staleness ──
    async def staleness(self, name: str, kb_name: str, kb: Any) -> dict[str, Any]:
        """The report for a served adapter; against the served KB it also steers the router and /metrics."""
        from service.lifecycle.staleness import staleness

        info = self.pipeline.adapters.get(name)
        if info is None:
            raise NotFound(
                f"name: adapter {name!r} is not served here (served: {sorted(self.pipeline.adapters)})",
                param="name",
                code="adapter_not_found",
            )
        report = await staleness(
            self.pipeline,
            info,
            kb,
            kb_name=kb_name,
            model=f"imprint-adapter:{name}",
            max_tokens=self.settings.gate_max_tokens,
        )
        if kb is self.pipeline.kb:
            self.reports[name] = report
            self.pipeline.stale[name] = {s["question"] for s in report["stale"]}
            if self.stale_gauge is not None:
                self.stale_gauge.labels(adapter=name).set(len(report["stale"]))
        return report

    def stale_pairs(self, name: str) -> list[tuple[str, str]]:
        """(question, the document's answer, citation marks removed) of the last report's stale facts."""
        from service.lifecycle.staleness import CITATION

        report = self.reports.get(name) or {}
        return [
            (s["question"], CITATION.sub("", s["document_answer"]).strip()) for s in report.get("stale", [])
        ]

    # ── the gate ──
    async def gate_pending(self) -> None:
        async with self._gating:
            await self.jobs.sync()  # candidates are served as their fine_tuned_model first
            done = await asyncio.to_thread(self.store.list_jobs, after=None, limit=50, status="succeeded")
            for job in reversed(done):  # oldest first: versions are numbered in training order
                if job.imprint.get("adapter") and "gate" not in job.imprint and await self._claim(job.id):
                    await self.judge(job)

    async def _claim(self, job_id: str) -> bool:
        def insert() -> bool:
            with Session(self.store.engine) as s:
                s.add(GateClaim(job_id=job_id, replica=self.replica))
                try:
                    s.commit()
                    return True
                except IntegrityError:  # another replica judges it
                    return False

        return await asyncio.to_thread(insert)

    async def judge(self, job: JobRecord) -> dict[str, Any]:
        try:
            verdict = await self._judge(job)
        except Exception as exc:  # the job stays succeeded; its version is kept but not promoted
            log.exception("gate of %s failed", job.id)
            verdict = {"promoted": False, "reason": f"the gate failed: {type(exc).__name__}: {exc}"}
        await asyncio.to_thread(self._record, job, verdict)
        return verdict

    async def _judge(self, job: JobRecord) -> dict[str, Any]:
        s = self.settings
        name, policy = job.imprint["adapter"], job.imprint.get("promote", "if_better")
        model = job.fine_tuned_model
        if not model or model not in self.pipeline.aliases:
            return {
                "promoted": False,
                "reason": f"{model} is not served by this server (another base model?)",
            }
        info = self.pipeline.aliases[model]
        version = await asyncio.to_thread(
            self.registry.add_version,
            name,
            str(job.adapter_path),
            engine_name=job.adapter_name,
            job_id=job.id,
            data_sha256=info.data_sha256,
            base_model=info.base_model,
            metrics=info.metrics,
        )
        questions = await asyncio.to_thread(gate.job_questions, self.store, job)
        candidate = await gate.score(self.pipeline, model, questions, max_tokens=s.gate_max_tokens)
        serving = None
        current = await asyncio.to_thread(self.registry.promoted, name)
        if current is not None:
            serving_model = await asyncio.to_thread(self._model_of, current.job_id)
            serving = await gate.score(self.pipeline, serving_model, questions, max_tokens=s.gate_max_tokens)
        promote, reason = gate.verdict(
            policy, candidate, serving, tolerance=s.gate_tolerance, pass_score=s.gate_pass_score
        )
        await asyncio.to_thread(self.registry.set_scores, name, version.version, candidate)
        if promote:
            await self.promote(name, version.version, reason=f"gate ({job.id}): {reason}")
        return {
            "promoted": promote,
            "reason": reason,
            "adapter": name,
            "version": version.version,
            "serving_version": current.version if current else None,
            "candidate": candidate,
            "serving": serving,
        }

    def _model_of(self, job_id: str | None) -> str:
        job = self.store.get_job(job_id) if job_id else None
        if job is None or not job.fine_tuned_model:
            raise RuntimeError(f"the promoted version's job {job_id} has no served model")
        return job.fine_tuned_model

    def _record(self, job: JobRecord, verdict: dict[str, Any]) -> None:
        fresh = self.store.get_job(job.id)
        self.store.update_job(job.id, imprint={**fresh.imprint, "gate": verdict})
        what = "promoted" if verdict["promoted"] else "not promoted"
        where = f"{verdict['adapter']} v{verdict['version']}" if "version" in verdict else job.id
        self.store.add_event(
            job.id, f"Eval gate: {where} {what} — {verdict['reason']}", type="gate", data=verdict
        )

    # ── the loop ──
    async def tick(self) -> None:
        await self.serving.apply()
        await self.gate_pending()
        for hook in self.hooks:
            await hook()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a busy store: the next poll tries again
                log.warning("lifecycle poll failed", exc_info=True)
            await asyncio.sleep(self.settings.job_poll_s)

    async def start(self) -> None:
        await self.serving.apply()
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task


async def start_lifecycle(settings: ServeConfig, jobs: JobService, metrics: Any = None) -> Lifecycle:
    life = await asyncio.to_thread(Lifecycle, settings, jobs, metrics)
    await life.start()
    return life
