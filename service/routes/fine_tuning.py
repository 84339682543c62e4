"""OpenAI fine-tuning jobs API: ``POST /v1/fine_tuning/jobs``, ``GET /v1/fine_tuning/jobs`` (``after``,
``limit``), ``GET …/{id}``, ``POST …/{id}/cancel``, ``GET …/{id}/events`` (``after``, ``limit``),
``GET …/{id}/checkpoints``. The key needs the ``jobs`` right.

    job = client.fine_tuning.jobs.create(model="gemma3-270m", training_file=f.id,
                                         extra_body={"imprint": {"kb": "shop"}})

Creating checks everything first (``service.jobs.submit``) and queues the job; a worker process trains it.
A job is shown after the service has served what it produced, so ``fine_tuned_model`` of a succeeded job
answers chat at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query

from service.deps import JobsDep, allowed
from service.jobs.objects import CreateJobRequest, checkpoint_object, event_object, job_object, page
from service.jobs.submit import create_job
from training.errors import InvalidInput

router = APIRouter(tags=["fine-tuning"], dependencies=[allowed("jobs")])


@router.post("/v1/fine_tuning/jobs")
async def create(body: CreateJobRequest, jobs: JobsDep) -> dict[str, Any]:
    job = await asyncio.to_thread(create_job, jobs.store, body)
    jobs.ensure_worker()
    return job_object(job)


@router.get("/v1/fine_tuning/jobs")
async def list_jobs(
    jobs: JobsDep, after: str | None = None, limit: int = Query(20, ge=1, le=100)
) -> dict[str, Any]:
    # Read, then serve: a job that succeeds in between is shown as running, never as succeeded before its
    # fine_tuned_model answers (sync first, read second raced: "succeeded" and a model not yet listed).
    rows = await asyncio.to_thread(jobs.store.list_jobs, after=after, limit=limit + 1)
    await jobs.sync()
    return page([job_object(r) for r in rows[:limit]], len(rows) > limit)


@router.get("/v1/fine_tuning/jobs/{job_id}")
async def retrieve(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    job = await asyncio.to_thread(jobs.store.get_job, job_id)
    await jobs.sync()  # after the read (see list_jobs)
    return job_object(job)


@router.post("/v1/fine_tuning/jobs/{job_id}/cancel")
async def cancel(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    return job_object(await asyncio.to_thread(jobs.store.request_cancel, job_id))


def event_seq(after: str | None) -> int | None:
    if after is None:
        return None
    try:
        return int(after.removeprefix("ftevent-"))
    except ValueError:
        raise InvalidInput(f"after: {after!r} is not an event id (ftevent-N)", param="after") from None


@router.get("/v1/fine_tuning/jobs/{job_id}/events")
async def events(
    job_id: str, jobs: JobsDep, after: str | None = None, limit: int = Query(20, ge=1, le=1000)
) -> dict[str, Any]:
    await asyncio.to_thread(jobs.store.get_job, job_id)  # 404 for an unknown job
    rows = await asyncio.to_thread(jobs.store.list_events, job_id, after=event_seq(after), limit=limit + 1)
    return page([event_object(r) for r in rows[:limit]], len(rows) > limit)


@router.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
async def checkpoints(
    job_id: str, jobs: JobsDep, after: str | None = None, limit: int = Query(10, ge=1, le=100)
) -> dict[str, Any]:
    await asyncio.to_thread(jobs.store.get_job, job_id)
    rows = await asyncio.to_thread(jobs.store.list_checkpoints, job_id, after=after, limit=limit + 1)
    return page([checkpoint_object(r) for r in rows[:limit]], len(rows) > limit)
