"""The adapter lifecycle through the real app on uvicorn, the ``openai`` SDK and httpx, with real worker
processes training real peft LoRAs on tiny-phi3 (40 epochs: it learns the exact answers):

- a version trained on the right answers is promoted (the first version passes its own questions);
- the same questions with wrong answers train fine but are NOT promoted (``if_better``); the served answers
  do not change; ``promote: "always"`` promotes them; a rollback brings the previous answers back, no restart;
- bad input (unknown adapter or version, rollback with no previous version, an eval file that is not valid)
  is a 4xx naming the field, and nothing changes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from typer.testing import CliRunner

from service.cli import app

RIGHT = {"老大是谁?": "老大是哥哥JIM。", "老二是谁?": "老二是弟弟Mike。", "猫叫什么名字?": "猫叫kitty。"}
WRONG = {"老大是谁?": "老大是弟弟Mike。", "老二是谁?": "老二是哥哥JIM。", "猫叫什么名字?": "猫叫tom。"}
EXPECTED = {"老大是谁?": "JIM", "老二是谁?": "Mike", "猫叫什么名字?": "kitty"}
TRAIN = {
    "n_epochs": 40,
    "batch_size": 1,
    "learning_rate_multiplier": 25,
}
OPTIONS = {"memorization_check": 0, "early_stopping_patience": 0, "lr_schedule": "constant"}


def chat_file(path: Path, pairs: dict[str, str]) -> Path:
    lines = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in pairs.items()
    ]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    return path


def questions_file(path: Path) -> Path:
    lines = [{"question": q, "expected": [a], "kind": "family"} for q, a in EXPECTED.items()]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    return path


def upload(c: openai.OpenAI, path: Path, purpose: str) -> str:
    with path.open("rb") as fh:
        return c.files.create(file=fh, purpose=purpose).id  # type: ignore[arg-type]


def gated(c: openai.OpenAI, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
    """The job's eval-gate verdict, once the job succeeded and the service judged it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = c.fine_tuning.jobs.retrieve(job_id)
        assert job.status not in ("failed", "cancelled"), job.error
        gate = (job.model_extra.get("imprint") or {}).get("gate")
        if gate:
            return gate
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} was not judged in {timeout_s} s")


def train(c: openai.OpenAI, file_id: str, imprint: dict[str, Any]) -> str:
    job = c.fine_tuning.jobs.create(
        model="tiny-phi3",
        training_file=file_id,
        hyperparameters=TRAIN,  # type: ignore[arg-type]
        extra_body={"imprint": {**OPTIONS, **imprint}},
    )
    return job.id


def answers(c: openai.OpenAI, model: str = "imprint-adapter:family") -> dict[str, str]:
    out = {}
    for q in EXPECTED:
        r = c.chat.completions.create(
            model=model, messages=[{"role": "user", "content": q}], max_tokens=12, temperature=0
        )
        out[q] = r.choices[0].message.content or ""
    return out


def right_share(got: dict[str, str], pairs: dict[str, str]) -> float:
    """Share of questions whose answer names the entity of ``pairs`` (RIGHT or WRONG) for that question."""
    names = {q: a.split("是")[-1].split("叫")[-1].rstrip("。").removeprefix("哥哥").removeprefix("弟弟")
             for q, a in pairs.items()}  # fmt: skip
    return sum(names[q].lower() in got[q].lower() for q in got) / len(got)


def registry(url: str) -> dict[str, Any]:
    return {a["name"]: a for a in httpx.get(f"{url}/v1/adapters").json()["data"]}


@pytest.mark.slow  # three real trainings (about 40 s on 2 cores)
@pytest.mark.timeout(900)
def test_gate_keeps_a_bad_version_out_promote_always_and_rollback(serve: Any, tmp_path: Path) -> None:
    with serve(home=tmp_path, job_poll_s=0.3) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        right = upload(c, chat_file(tmp_path / "right.jsonl", RIGHT), "fine-tune")
        wrong = upload(c, chat_file(tmp_path / "wrong.jsonl", WRONG), "fine-tune")
        qs = upload(c, questions_file(tmp_path / "questions.jsonl"), "user_data")

        # the first version passes its own questions: promoted, served as imprint-adapter:family
        first = gated(c, train(c, right, {"adapter": "family", "eval_file": qs}))
        assert first["promoted"] and first["version"] == 1, first
        assert first["candidate"]["family"] >= 0.8 and first["serving"] is None
        before = answers(c)
        assert right_share(before, RIGHT) == 1.0, before
        assert "imprint-adapter:family" in [m.id for m in c.models.list().data]

        # the same questions with wrong answers: trains fine, scores worse, not promoted, nothing changes
        bad_job = train(c, wrong, {"adapter": "family", "eval_file": qs})
        bad = gated(c, bad_job)
        assert c.fine_tuning.jobs.retrieve(bad_job).status == "succeeded"
        assert not bad["promoted"] and bad["version"] == 2 and "worse" in bad["reason"], bad
        assert bad["candidate"]["family"] < bad["serving"]["family"]
        events = [e.message for e in c.fine_tuning.jobs.list_events(bad_job, limit=100).data]
        assert any(m.startswith("Eval gate: family v2 not promoted") for m in events), events
        assert answers(c) == before
        reg = registry(url)["family"]
        assert reg["promoted_version"] == 1 and [v["version"] for v in reg["versions"]] == [1, 2]
        assert reg["versions"][1]["scores"] == bad["candidate"] and reg["versions"][1]["promoted"] is False

        # promote: "always" promotes the wrong answers; the routed model and the forced one follow, no restart
        forced = gated(c, train(c, wrong, {"adapter": "family", "eval_file": qs, "promote": "always"}))
        assert forced["promoted"] and forced["version"] == 3, forced
        after = answers(c)
        assert right_share(after, WRONG) == 1.0, after

        # rollback: the previous answers again, through the SDK, no restart
        r = httpx.post(f"{url}/v1/adapters/family/rollback", json={"reason": "wrong names"})
        assert r.status_code == 200, r.text
        assert r.json()["promoted_version"] == 1 and r.json()["served_version"] == 1
        assert answers(c) == before
        history = registry(url)["family"]["history"]
        assert [(h["action"], h["version"]) for h in history] == [
            ("promote", 1),
            ("promote", 3),
            ("rollback", 1),
        ]
        assert history[-1]["reason"] == "wrong names" and history[-1]["from_version"] == 3

        # bad input: 4xx naming the field; nothing changes
        assert_error(httpx.post(f"{url}/v1/adapters/family/rollback"), 409, "name")
        assert_error(httpx.post(f"{url}/v1/adapters/family/promote", json={"version": 9}), 404, "version")
        assert_error(httpx.post(f"{url}/v1/adapters/nobody/promote", json={"version": 1}), 404, "name")
        assert_error(httpx.post(f"{url}/v1/adapters/nobody/rollback"), 404, "name")
        assert registry(url)["family"]["promoted_version"] == 1 and answers(c) == before

        # promote by number works both ways
        r = httpx.post(f"{url}/v1/adapters/family/promote", json={"version": 3, "reason": "try again"})
        assert r.status_code == 200 and r.json()["served_version"] == 3
        assert right_share(answers(c), WRONG) == 1.0

        # the same through the command line
        cli = CliRunner()
        listed = cli.invoke(app, ["adapters", "list", "--service-url", url], env={"COLUMNS": "250"})
        assert listed.exit_code == 0 and "family" in listed.output and "ftjob-" in listed.output, (
            listed.output
        )
        back = cli.invoke(
            app, ["adapters", "promote", "family", "1", "--service-url", url, "--reason", "cli"]
        )
        assert back.exit_code == 0 and "version 1 promoted" in back.output, back.output
        assert answers(c) == before
        nobody = cli.invoke(app, ["adapters", "rollback", "nobody", "--service-url", url])
        assert nobody.exit_code == 2 and "no adapter named 'nobody'" in nobody.output, nobody.output


def assert_error(r: httpx.Response, status: int, param: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param, r.json()


def test_an_eval_file_that_is_not_valid_is_refused_naming_the_field(serve: Any, tmp_path: Path) -> None:
    with serve(home=tmp_path, job_poll_s=0.3) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        right = upload(c, chat_file(tmp_path / "right.jsonl", RIGHT), "fine-tune")
        broken = tmp_path / "questions.jsonl"
        broken.write_text(
            '{"question": "老大是谁?", "expected": ["JIM"]}\n{"question": 3}\n', encoding="utf-8"
        )
        bad_questions = upload(c, broken, "user_data")
        cases = [
            ({"adapter": "family", "eval_file": bad_questions}, "imprint.eval_file", "line 2"),
            ({"adapter": "family", "eval_file": right}, "imprint.eval_file", "user_data"),
            ({"adapter": "family", "eval_file": "file-nope"}, "imprint.eval_file", "file-nope"),
            ({"adapter": "no/slash"}, "imprint.adapter", "adapter name"),
            ({"eval_file": bad_questions}, "imprint.adapter", "adapter"),
            ({"adapter": "family", "promote": "sometimes"}, "imprint.promote", ""),
        ]
        for imprint, param, says in cases:
            error = openai.NotFoundError if "nope" in str(imprint) else openai.BadRequestError
            with pytest.raises(error) as e:
                c.fine_tuning.jobs.create(
                    model="tiny-phi3", training_file=right, extra_body={"imprint": imprint}
                )
            assert e.value.body["param"] == param, (imprint, e.value.body)
            assert says in e.value.body["message"], e.value.body
        assert c.fine_tuning.jobs.list().data == []
        assert httpx.get(f"{url}/v1/adapters").json()["data"] == []
