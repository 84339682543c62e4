"""``POST /v1/data/check`` (Imprint extra): a chat JSONL file checked and previewed as the model will see it,
without keeping it — what the web console's Data panel shows before (or instead of) ``POST /v1/files``.

    curl -H "Authorization: Bearer $KEY" -F file=@train.jsonl -F model=tiny-phi3 -F preview=3 \\
        http://127.0.0.1:8000/v1/data/check

Answers 200 with ``ok: false`` for a broken file (the problems ARE the answer): every issue with its line,
field and fix, token statistics with the base model's tokenizer, and the first examples rendered with its chat
template, cut into trained / not-trained segments (``training.preview``). The key needs the ``jobs`` right.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, UploadFile

from service.deps import JobsDep, allowed
from training.errors import InvalidInput

router = APIRouter(tags=["files"], dependencies=[allowed("jobs")])


def check_upload(source: Any, model: str, preview: int, max_tokens: int) -> dict[str, Any]:
    from training.preview import check_and_preview

    with tempfile.TemporaryDirectory(prefix="imprint-check-") as tmp:
        path = Path(tmp) / "data.jsonl"
        with path.open("wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
        return check_and_preview(path, base_model=model, preview=preview, max_tokens=max_tokens)


@router.post("/v1/data/check")
async def check_data(
    jobs: JobsDep,
    file: UploadFile = File(...),
    model: str | None = Form(None),
    preview: int = Form(3),
    max_tokens: int = Form(1024),
) -> dict[str, Any]:
    if not 0 <= preview <= 20:
        raise InvalidInput(f"preview: {preview} must be between 0 and 20", param="preview")
    if not 16 <= max_tokens <= 1_000_000:
        raise InvalidInput(f"max_tokens: {max_tokens} must be between 16 and 1000000", param="max_tokens")
    base = model or jobs.serving_base()
    try:
        result = await asyncio.to_thread(check_upload, file.file, base, preview, max_tokens)
    except (OSError, ValueError) as exc:  # a base model that cannot be resolved or whose template is odd
        raise InvalidInput(
            f"model: cannot preview with {base!r} ({type(exc).__name__}: {exc}); name a base model this "
            "server can fine-tune, e.g. tiny-phi3 or gemma3-270m",
            param="model",
            code="model_not_found",
        ) from None
    return {**result, "filename": Path(file.filename or "upload.jsonl").name[:255]}
