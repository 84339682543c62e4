"""Scheduled retraining as jobs, on two replicas of the real app sharing one jobs store (SQLite here; the
PostgreSQL variant is tests/service/test_replicas_postgres.py): a tick with changed data creates exactly one
gated job (visible in the jobs list, whichever replica is asked), an unchanged tick creates none; schedules
through HTTP and ``imprint schedule add|list|remove``; bad input names the field. Workers are off: the
jobs stay queued, which is all a tick is responsible for."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
from typer.testing import CliRunner

from service.cli import app as cli_app
from tests.conftest import FAMILY_TRAIN


def jobs_of(url: str) -> list[Any]:
    c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    return [j for j in c.fine_tuning.jobs.list(limit=100).data if (j.metadata or {}).get("schedule")]


def wait_jobs(url: str, n: int, timeout_s: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = jobs_of(url)
        if len(found) >= n:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{n} scheduled jobs expected, got {len(jobs_of(url))}")


def test_a_tick_with_changed_data_makes_one_gated_job_across_two_replicas(serve: Any, tmp_path: Path) -> None:
    data = tmp_path / "data" / "family.jsonl"
    data.parent.mkdir()
    data.write_bytes(FAMILY_TRAIN.read_bytes())
    settings = {"home": tmp_path, "job_poll_s": 0.2, "job_worker": False}
    with ExitStack() as stack:
        a, b = (stack.enter_context(serve(**settings)) for _ in range(2))
        r = httpx.post(
            f"{a}/v1/schedules",
            json={
                "adapter": "family",
                "training_path": "data/family.jsonl",
                "every_s": 1,
                "model": "tiny-phi3",
            },
        )
        assert r.status_code == 200, r.text
        sched = r.json()["id"]

        first = wait_jobs(b, 1)  # the first tick: new data → one job, seen from the other replica too
        time.sleep(2.5)  # two more ticks on each replica's poll: unchanged data, nothing new
        assert len(jobs_of(a)) == 1 and len(jobs_of(b)) == 1
        job = first[0]
        assert job.model_extra["imprint"]["adapter"] == "family"
        assert job.model_extra["imprint"]["promote"] == "if_better" and job.status == "queued"
        events = openai.OpenAI(base_url=a + "/v1", api_key="x").fine_tuning.jobs.list_events(job.id).data
        assert any(f"Created by schedule {sched}: training data changed" in e.message for e in events)

        data.write_text(data.read_text(encoding="utf-8").replace("JIM", "TOM"), encoding="utf-8")
        second = wait_jobs(a, 2)
        time.sleep(2.5)
        assert len(jobs_of(b)) == 2, [j.id for j in jobs_of(b)]
        assert second[0].training_file != job.training_file

        listed = httpx.get(f"{b}/v1/schedules").json()["data"]
        assert [s["id"] for s in listed] == [sched] and listed[0]["last_job"] == second[0].id
        assert httpx.delete(f"{b}/v1/schedules/{sched}").json()["deleted"]
        assert httpx.get(f"{a}/v1/schedules").json()["data"] == []


def test_schedule_cli_and_bad_input(serve: Any, tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_bytes(FAMILY_TRAIN.read_bytes())
    cli = CliRunner()
    with serve(home=tmp_path, job_poll_s=0.2, job_worker=False) as url:
        args = ["--service-url", url]
        added = cli.invoke(
            cli_app,
            [
                "schedule",
                "add",
                "--adapter",
                "family",
                "--training-path",
                "train.jsonl",
                "--cron",
                "0 3 * * *",
                *args,
            ],
        )
        assert added.exit_code == 0 and added.output.startswith("sched-"), added.output
        sid = added.output.strip()
        listed = cli.invoke(cli_app, ["schedule", "list", *args])
        assert listed.exit_code == 0 and sid in listed.output and '"cron": "0 3 * * *"' in listed.output
        assert cli.invoke(cli_app, ["schedule", "remove", sid, *args]).exit_code == 0
        gone = cli.invoke(cli_app, ["schedule", "remove", sid, *args])
        assert gone.exit_code == 2 and "no schedule" in gone.output

        def bad(body: dict[str, Any], param: str) -> None:
            r = httpx.post(
                f"{url}/v1/schedules", json={"adapter": "family", "training_path": "train.jsonl", **body}
            )
            assert r.status_code in (400, 404) and r.json()["error"]["param"] == param, r.text

        bad({"every_s": 60, "training_path": "../../etc/passwd"}, "training_path")
        bad({"every_s": 60, "training_path": "missing.jsonl"}, "training_path")
        bad({"cron": "every day"}, "cron")
        bad({}, "cron")
        bad({"every_s": 60, "adapter": "no/slash"}, "imprint.adapter")
        bad({"every_s": 60, "eval_file": "file-nope"}, "imprint.eval_file")
        assert httpx.get(f"{url}/v1/schedules").json()["data"] == []


def test_stale_facts_make_one_job_with_the_documents_answers(tmp_path: Path) -> None:
    from service.jobs.store import Store
    from service.lifecycle.schedules import ScheduleRequest, add_schedule, create_tables, list_schedules, tick

    store = Store.open(None, tmp_path)
    create_tables(store.engine)
    (tmp_path / "train.jsonl").write_bytes(FAMILY_TRAIN.read_bytes())
    req = ScheduleRequest(
        adapter="family",
        training_path="train.jsonl",
        every_s=60,
        model="tiny-phi3",
        add_document_answers=True,
    )
    add_schedule(store, req, None)

    def fire(stale: list[tuple[str, str]]) -> str | None:
        return tick(store, list_schedules(store)[0], stale)

    assert fire([]) is not None  # new data
    assert fire([]) is None  # unchanged, nothing stale
    pair = ("哥哥几岁?", "哥哥JIM今年11岁。")
    job_id = fire([pair])
    assert job_id is not None
    job = store.get_job(job_id)
    lines = Path(store.get_file(job.training_file).path).read_text(encoding="utf-8").splitlines()
    assert lines[: len(FAMILY_TRAIN.read_text(encoding="utf-8").splitlines())] == (
        FAMILY_TRAIN.read_text(encoding="utf-8").splitlines()
    )
    assert json.loads(lines[-1])["messages"][1]["content"] == "哥哥JIM今年11岁。"
    assert any("1 stale fact(s)" in e.message for e in store.list_events(job_id, after=None, limit=10))
    assert fire([pair]) is None  # the same stale facts are not retrained for twice
