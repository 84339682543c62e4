"""Retraining schedules (Imprint extra; ``service.lifecycle.schedules``): each tick creates an ordinary, gated
fine-tuning job when the watched training data changed. The key needs the ``jobs`` right.

    POST   /v1/schedules   {"adapter": "family", "training_path": "data/family.jsonl", "every_s": 3600,
                            "model": "gemma3-270m", "eval_file"?: "file-…", "promote"?: "if_better"}
    GET    /v1/schedules
    DELETE /v1/schedules/{schedule_id}
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from service.deps import LifecycleDep, allowed
from service.lifecycle.schedules import (
    ScheduleRecord,
    ScheduleRequest,
    add_schedule,
    list_schedules,
    remove_schedule,
)

router = APIRouter(tags=["schedules"], dependencies=[allowed("jobs")])


def schedule_object(rec: ScheduleRecord) -> dict[str, Any]:
    return {"object": "schedule", **rec.model_dump()}


@router.post("/v1/schedules")
async def create(body: ScheduleRequest, life: LifecycleDep) -> dict[str, Any]:
    return schedule_object(await asyncio.to_thread(add_schedule, life.store, body, life))


@router.get("/v1/schedules")
async def list_all(life: LifecycleDep) -> dict[str, Any]:
    rows = await asyncio.to_thread(list_schedules, life.store)
    return {"object": "list", "data": [schedule_object(r) for r in rows]}


@router.delete("/v1/schedules/{schedule_id}")
async def delete(schedule_id: str, life: LifecycleDep) -> dict[str, Any]:
    rec = await asyncio.to_thread(remove_schedule, life.store, schedule_id)
    return {"id": rec.id, "object": "schedule", "deleted": True}
