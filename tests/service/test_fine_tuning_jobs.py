"""Fine-tuning as a service, driven by the unchanged ``openai`` SDK against the real app on uvicorn: Files
API, jobs create/list/retrieve/list_events/cancel, checkpoints, then chat with the job's
``fine_tuned_model`` — trained by a real worker process (real peft on tiny-phi3) and served by the running
service, no restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import FAMILY_TRAIN

TERMINAL = ("succeeded", "failed", "cancelled")
FAST = {"memorization_check": 0}  # tiny-phi3 is random: asking it its questions proves nothing here


def client(url: str, key: str = "x") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def wait_for(c: openai.OpenAI, job_id: str, done: Any, timeout_s: float = 300) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = c.fine_tuning.jobs.retrieve(job_id)
        if done(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not get there in {timeout_s} s: {job.status} {job.error}")


def upload(c: openai.OpenAI, path: Path = FAMILY_TRAIN) -> Any:
    with path.open("rb") as fh:
        return c.files.create(file=fh, purpose="fine-tune")


def test_files_jobs_checkpoints_then_chat_with_the_fine_tuned_model(serve: Any, tmp_path: Path) -> None:
    with serve(home=tmp_path, job_poll_s=0.3) as url:
        c = client(url)
        f = upload(c)
        assert f.id.startswith("file-") and f.bytes == FAMILY_TRAIN.stat().st_size
        assert (f.filename, f.purpose, f.object) == ("train.jsonl", "fine-tune", "file")
        assert c.files.retrieve(f.id).bytes == f.bytes
        assert f.id in [x.id for x in c.files.list(purpose="fine-tune").data]
        assert c.files.content(f.id).read() == FAMILY_TRAIN.read_bytes()

        job = c.fine_tuning.jobs.create(
            model="tiny-phi3",
            training_file=f.id,
            suffix="fam",
            seed=7,
            metadata={"round": "1"},
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
            extra_body={"imprint": FAST},
        )
        assert job.id.startswith("ftjob-") and job.status == "queued" and job.metadata == {"round": "1"}
        job = wait_for(c, job.id, lambda j: j.status in TERMINAL)
        assert job.status == "succeeded", job.error
        assert job.fine_tuned_model.startswith("ft:tiny-phi3:imprint:fam:")
        hp = job.method.supervised.hyperparameters
        assert (
            hp.n_epochs == 2
            and isinstance(hp.batch_size, int)
            and isinstance(hp.learning_rate_multiplier, float)
        )
        assert job.trained_tokens > 0 and job.finished_at >= job.created_at and job.seed == 7
        assert job.id in [j.id for j in c.fine_tuning.jobs.list(limit=5).data]

        events = c.fine_tuning.jobs.list_events(job.id, limit=1000).data
        messages = [e.message for e in events]
        assert any(m.startswith("n_epochs = 2") for m in messages), messages
        assert any(m.startswith("batch_size = ") and "(" in m for m in messages)  # the auto value's reason
        metrics = [e.data for e in events if e.type == "metrics"]
        assert {"step", "train_loss", "train_mean_token_accuracy", "valid_loss"} <= set(metrics[0])
        assert sum(1 for m in metrics if m["valid_loss"] is not None) == 2  # one per epoch
        assert "The job has successfully completed" in messages
        page = c.fine_tuning.jobs.list_events(job.id, limit=2)
        assert page.has_more and len(page.data) == 2
        older = c.fine_tuning.jobs.list_events(job.id, after=page.data[-1].id, limit=1).data
        assert older and older[0].id not in [e.id for e in page.data]

        checkpoints = c.fine_tuning.jobs.checkpoints.list(job.id).data
        assert len(checkpoints) == 2  # epoch 1 and the final model
        assert all(
            ck.fine_tuned_model_checkpoint.startswith(job.fine_tuned_model + ":ckpt-step-")
            for ck in checkpoints
        )
        assert checkpoints[0].metrics.train_loss is not None
        results = c.files.content(job.result_files[0]).text
        assert results.startswith("step,epoch,train_loss") and c.files.retrieve(
            job.result_files[0]
        ).purpose == ("fine-tune-results")

        served = [m.id for m in c.models.list().data]
        assert job.fine_tuned_model in served
        assert all(ck.fine_tuned_model_checkpoint in served for ck in checkpoints)
        for model in (job.fine_tuned_model, checkpoints[-1].fine_tuned_model_checkpoint):
            r = c.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "老大是谁?"}], max_tokens=4
            )
            assert r.model == model and r.model_extra["imprint"]["route"] == "adapter"
            assert r.model_extra["imprint"]["adapter"].startswith("ft-fam-")

        # a results file is not training data
        with pytest.raises(openai.BadRequestError) as e:
            c.fine_tuning.jobs.create(model="tiny-phi3", training_file=job.result_files[0])
        assert e.value.body["param"] == "training_file"
        assert c.files.delete(f.id).deleted
        with pytest.raises(openai.NotFoundError):
            c.files.retrieve(f.id)


def test_cancel_stops_a_running_job_and_serves_nothing(serve: Any, tmp_path: Path) -> None:
    with serve(home=tmp_path, job_poll_s=0.3) as url:
        c = client(url)
        f = upload(c)
        job = c.fine_tuning.jobs.create(
            model="tiny-phi3",
            training_file=f.id,
            hyperparameters={"n_epochs": 50, "batch_size": 1},
            extra_body={"imprint": {**FAST, "early_stopping_patience": 0}},
        )
        wait_for(c, job.id, lambda j: j.status == "running" and j.estimated_finish is not None, 120)
        asked = time.monotonic()
        assert c.fine_tuning.jobs.cancel(job.id).id == job.id
        job = wait_for(c, job.id, lambda j: j.status in TERMINAL, 30)
        assert job.status == "cancelled" and job.fine_tuned_model is None
        assert time.monotonic() - asked < 15
        time.sleep(1)
        assert not [m.id for m in c.models.list().data if m.id.startswith("ft:")]


def test_bad_requests_name_the_field_and_queue_nothing(serve: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
        '{"messages": [{"role": "user", "content": "hi"}\n'
        '{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}\n',
        encoding="utf-8",
    )
    with serve(home=tmp_path, job_poll_s=0.3) as url:
        c = client(url)
        with pytest.raises(openai.BadRequestError) as e:
            upload(c, broken)
        assert e.value.body["param"] == "file"
        assert "line 2" in e.value.body["message"] and "line 3" in e.value.body["message"]
        assert "role" in e.value.body["message"]
        with pytest.raises(openai.BadRequestError) as e, broken.open("rb") as fh:
            c.files.create(file=fh, purpose="assistants")
        assert e.value.body["param"] == "purpose"
        good = upload(c).id

        def refused(error: type[Exception], param: str, **kw: Any) -> None:
            with pytest.raises(error) as e:
                c.fine_tuning.jobs.create(**{"model": "tiny-phi3", "training_file": good, **kw})
            assert e.value.body["param"] == param, e.value.body  # type: ignore[attr-defined]
            assert param.split(".")[-1] in e.value.body["message"]  # type: ignore[attr-defined]

        refused(openai.NotFoundError, "training_file", training_file="file-doesnotexist")
        refused(openai.NotFoundError, "validation_file", validation_file="file-doesnotexist")
        refused(
            openai.BadRequestError,
            "method.supervised.hyperparameters.n_epochs",
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": -1}}},
        )
        refused(openai.BadRequestError, "hyperparameters.batch_size", hyperparameters={"batch_size": 0})
        refused(openai.BadRequestError, "model", model="no-such-base-model")
        refused(openai.BadRequestError, "method.type", method={"type": "dpo", "dpo": {}})
        refused(openai.BadRequestError, "imprint.augment", extra_body={"imprint": {"augment": 99}})
        assert c.fine_tuning.jobs.list().data == []


def test_the_jobs_right_is_required(serve: Any, tmp_path: Path) -> None:
    keys = [{"key": "k-chat", "kbs": ["*"]}, {"key": "k-ops", "kbs": ["*"], "jobs": True}]
    with serve(home=tmp_path, scoped_keys=keys, job_poll_s=0.3) as url:
        with pytest.raises(openai.PermissionDeniedError) as e:
            client(url, "k-chat").files.list()
        assert e.value.body["code"] == "jobs_not_allowed"
        with pytest.raises(openai.PermissionDeniedError):
            client(url, "k-chat").fine_tuning.jobs.list()
        assert client(url, "k-ops").fine_tuning.jobs.list().object == "list"


def test_uploads_have_their_own_size_limit(serve: Any, tmp_path: Path) -> None:
    line = FAMILY_TRAIN.read_text("utf-8").splitlines()[2] + "\n"
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small.write_text(line * (8000 // len(line.encode())), encoding="utf-8")  # over max_request_bytes
    big.write_text(line * (40000 // len(line.encode())), encoding="utf-8")  # over files_max_bytes
    with serve(home=tmp_path / "home", max_request_bytes=2048, files_max_bytes=20000, job_poll_s=0.3) as url:
        c = client(url)
        assert upload(c, small).bytes == small.stat().st_size
        with pytest.raises(openai.APIStatusError) as e:
            upload(c, big)
        assert e.value.status_code == 413 and "20000" in e.value.body["message"]
        assert [f.filename for f in c.files.list().data] == ["small.jsonl"]
        with pytest.raises(openai.APIStatusError) as e:  # other routes keep max_request_bytes
            c.chat.completions.create(model="imprint", messages=[{"role": "user", "content": "x" * 4000}])
        assert e.value.status_code == 413
