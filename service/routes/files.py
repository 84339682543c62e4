"""OpenAI Files API for fine-tuning data: ``POST /v1/files`` (multipart ``file`` + ``purpose``),
``GET /v1/files`` (``after``, ``limit``, ``order``, ``purpose``), ``GET /v1/files/{id}``,
``GET /v1/files/{id}/content``, ``DELETE /v1/files/{id}``. The key needs the ``jobs`` right.

    client.files.create(file=open("train.jsonl", "rb"), purpose="fine-tune")

The upload streams to ``$IMPRINT_HOME/files/<id>`` (up to ``files_max_bytes``; the body limit of other routes
does not apply here), named by its id, never by the client's filename. A "fine-tune" file is checked with
the data checker (``imprint data check``'s rules) before it is kept: a file that cannot be trained is
refused naming every bad line and field.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse

from service.deps import JobsDep, allowed
from service.jobs.objects import UPLOAD_PURPOSES, file_object, page
from service.jobs.store import FileRecord, new_id, now
from training.errors import InvalidInput

router = APIRouter(tags=["files"], dependencies=[allowed("jobs")])


def save_upload(source: Any, target: Path) -> int:
    """Copy the spooled upload to ``target`` through a temp file + rename: a crash leaves no partial file."""
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    return target.stat().st_size


def check_training_data(path: Path, filename: str) -> None:
    from training.data import validate_file

    report = validate_file(path)
    if not report.ok:
        lines = "\n".join(f"  {i}" for i in report.errors) or "  no usable training examples"
        raise InvalidInput(
            f"file: {filename} is not usable for fine-tuning:\n{lines}", param="file", code="invalid_file"
        )


@router.post("/v1/files")
async def upload_file(
    jobs: JobsDep, file: UploadFile = File(...), purpose: str = Form(...)
) -> dict[str, Any]:
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidInput(
            f"purpose: {purpose!r} is not supported here; upload fine-tuning data with purpose 'fine-tune' "
            "(or an eval gate's questions with 'user_data')",
            param="purpose",
            code="invalid_purpose",
        )
    file_id = new_id("file")
    target = jobs.store.files_dir / file_id
    filename = Path(file.filename or "upload.jsonl").name[:255]
    size = await asyncio.to_thread(save_upload, file.file, target)
    try:
        if purpose == "fine-tune":  # other purposes are checked by what uses them (an eval gate's questions)
            await asyncio.to_thread(check_training_data, target, filename)
    except InvalidInput:
        target.unlink(missing_ok=True)
        raise
    rec = FileRecord(
        id=file_id, bytes=size, created_at=now(), filename=filename, purpose=purpose, path=str(target)
    )
    await asyncio.to_thread(jobs.store.add_file, rec)
    return file_object(rec)


@router.get("/v1/files")
async def list_files(
    jobs: JobsDep,
    after: str | None = None,
    limit: int = Query(10000, ge=1, le=10000),
    order: Literal["asc", "desc"] = "desc",
    purpose: str | None = None,
) -> dict[str, Any]:
    rows = await asyncio.to_thread(
        jobs.store.list_files, purpose=purpose, after=after, limit=limit + 1, order=order
    )
    return page([file_object(r) for r in rows[:limit]], len(rows) > limit)


@router.get("/v1/files/{file_id}")
async def retrieve_file(file_id: str, jobs: JobsDep) -> dict[str, Any]:
    return file_object(await asyncio.to_thread(jobs.store.get_file, file_id))


@router.get("/v1/files/{file_id}/content")
async def file_content(file_id: str, jobs: JobsDep) -> FileResponse:
    rec = await asyncio.to_thread(jobs.store.get_file, file_id)
    return FileResponse(rec.path, media_type="application/octet-stream", filename=rec.filename)


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, jobs: JobsDep) -> dict[str, Any]:
    rec = await asyncio.to_thread(jobs.store.delete_file, file_id)
    return {"id": rec.id, "object": "file", "deleted": True}
