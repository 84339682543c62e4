"""End to end on the embedded default model (gemma3-270m): the family data uploaded and fine-tuned as a job
through the openai SDK with auto hyperparameters, then its training questions asked through the served
``fine_tuned_model`` of the same running service — no restart, no adapter on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.service.test_fine_tuning_jobs import client, upload, wait_for

pytestmark = pytest.mark.slow


def test_family_job_on_gemma3_answers_its_training_questions(
    tmp_path: Path, family_questions_file: Path
) -> None:
    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig

    seen = [
        q
        for q in map(json.loads, family_questions_file.read_text("utf-8").splitlines())
        if q["kind"] == "seen"
    ]
    with serve_in_thread(create_app(ServeConfig(home=tmp_path, job_poll_s=0.5))) as url:
        c = client(url)
        job = c.fine_tuning.jobs.create(model="gemma3-270m", training_file=upload(c).id, suffix="family")
        job = wait_for(c, job.id, lambda j: j.status in ("succeeded", "failed", "cancelled"), 1200)
        assert job.status == "succeeded", job.error
        assert job.fine_tuned_model in [m.id for m in c.models.list().data]
        right = []
        for q in seen:
            r = c.chat.completions.create(
                model=job.fine_tuned_model,
                messages=[{"role": "user", "content": q["question"]}],
                max_tokens=32,
                temperature=0,
            )
            answer = r.choices[0].message.content or ""
            right.append(any(e.lower() in answer.lower() for e in q["expected"]))
        assert sum(right) >= 8, f"{sum(right)}/{len(seen)} training questions answered"
