"""The web console in a real browser: Debian's headless ``chromium`` driven by playwright, against the real
app on uvicorn (tiny-phi3 embedded engine, a real KB, a real worker process training a real peft adapter).

    pytest tests/service/console -q      # screenshots land in tests/artifacts/console/

Upload the family file → the preview shows line 2 as the model sees it → start a tiny-phi3 job → the loss
chart gets points → the job succeeds → the playground answers with the new model beside base, RAG and routed;
a broken file shows its line numbers; a wrong key is told so; an API error shows its message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import FAMILY_TRAIN
from tests.service.console.conftest import KEY, open_console

BROKEN = (
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
    '{"messages": [{"role": "user", "content": "hi"}\n'
    '{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}\n'
)


def test_wrong_key_broken_file_and_api_errors_are_shown(
    browser: Any, serve: Any, tmp_path: Path, shots: Any
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(BROKEN, encoding="utf-8")
    with serve(home=tmp_path / "home", api_keys=[KEY], job_poll_s=0.3) as url:
        page = open_console(browser, url, key="not-the-key")
        message = page.locator("#key-message")
        message.wait_for()
        page.wait_for_function("() => document.querySelector('#key-message').textContent.includes('401')")
        assert "Wrong API key" in message.inner_text() and "invalid API key" in message.inner_text()
        assert page.locator("#app").is_hidden()
        shots(page, "wrong-key")

        page.fill("#api-key", KEY)
        page.click("#key-form button")
        page.wait_for_selector("#app:not([hidden])")
        page.fill("#data-model", "tiny-phi3")
        page.set_input_files("#data-file", str(broken))
        page.click("#data-upload")
        page.wait_for_selector("#issues-table")
        errors = page.locator("#issues-table tr.sev-error")
        lines = {errors.nth(i).get_attribute("data-line") for i in range(errors.count())}
        assert {"2", "3"} <= lines, lines
        assert "robot" in page.locator('#issues-table tr[data-line="3"]').first.inner_text()
        assert "Not uploaded" in page.inner_text("#data-status")
        shots(page, "broken-file")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as api:
            assert api.get("/v1/files").json()["data"] == []  # nothing was kept

        # An API error shows its message: a job on a file that does not exist, and the registry not served.
        page.click("#tabs button[data-tab=jobs]")
        # The data tab filled the selects already: wait for the jobs tab's own load, or its refill drops
        # the option added below.
        page.wait_for_selector("#panel-jobs:not([aria-busy])", state="attached")
        page.fill("#job-model", "no-such-base-model")
        page.evaluate(
            "document.querySelector('#job-training').append(new Option('x', 'file-doesnotexist', true, true))"
        )
        page.click("#job-create")
        page.wait_for_selector("#error:not([hidden])")
        assert "file-doesnotexist" in page.inner_text("#error")
        page.reload()  # the key is kept for the browser session: not asked again
        page.wait_for_selector("#app:not([hidden])")
        assert page.locator("#key-panel").is_hidden()

        page.click("#tabs button[data-tab=adapters]")
        page.wait_for_function("() => document.querySelector('#ad-served').children.length > 0")
        assert "imprint-adapter:alpha" in page.inner_text("#ad-served")

        page.click("#lang-toggle")
        assert page.inner_text("#tabs button[data-tab=data]") == "数据"
        shots(page, "adapters-zh")


def test_upload_preview_train_chart_and_playground(
    browser: Any, serve: Any, kb_home: Path, shots: Any
) -> None:
    from indexing.registry import get_kb

    kb = get_kb("web", home=kb_home)
    with serve(kb=kb, kb_name="web", home=kb_home, api_keys=[KEY], job_poll_s=0.3) as url:
        page = open_console(browser, url)
        page.wait_for_selector("#app:not([hidden])")

        page.fill("#data-model", "tiny-phi3")
        page.set_input_files("#data-file", str(FAMILY_TRAIN))
        page.click("#data-upload")
        page.wait_for_function("() => document.querySelector('#data-status').textContent.includes('file-')")
        line2 = page.locator('.example[data-line="2"]')
        assert "line 2 as the model sees it" in line2.inner_text()
        assert "<|im_start|>user<|im_sep|>你家有几个人?" in line2.locator("pre.rendered").inner_text()
        trained = line2.locator(".seg.trained").inner_text()
        assert trained.startswith("我家有4个人") and "<|im_end|>" in trained
        assert "你家有几个人" not in trained  # the question is prompt, never trained
        stats = page.inner_text("#stats-table")
        assert "trained tokens" in stats and "tokens min / mean / max" in stats
        assert page.locator('#issues-table tr[data-line="1"]').count() == 1  # the knowledge record
        shots(page, "data-preview")

        page.click("#tabs button[data-tab=jobs]")
        page.wait_for_function("() => document.querySelector('#job-training').value.startsWith('file-')")
        page.fill("#job-model", "tiny-phi3")
        page.fill("#job-epochs", "3")
        page.fill("#job-batch", "4")
        page.fill("#job-suffix", "fam")
        page.fill("#job-extra", '{"memorization_check": 0}')
        page.click("#job-create")
        page.wait_for_function(
            "() => { const d = document.getElementById('loss-chart').data; return d && d[0].x.length > 0; }",
            timeout=240_000,
        )
        shots(page, "job-running")
        page.wait_for_function(
            "() => ['succeeded', 'failed', 'cancelled'].includes("
            "document.querySelector('#job-status').textContent)",
            timeout=300_000,
        )
        assert page.inner_text("#job-status") == "succeeded", page.inner_text("#job-summary")
        points = page.evaluate("document.getElementById('loss-chart').data.map(s => s.x.length)")
        assert points[0] >= 2 and points[1] >= 1, points  # train loss per step, validation per epoch
        assert page.evaluate("document.getElementById('acc-chart').data[0].y.every(v => v >= 0 && v <= 1)")
        assert "The job has successfully completed" in page.inner_text("#job-events")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as api:
            job = api.get("/v1/fine_tuning/jobs").json()["data"][0]
        model = job["fine_tuned_model"]
        assert model.startswith("ft:tiny-phi3:imprint:fam:")
        assert model in page.inner_text("#job-summary")
        shots(page, "job-succeeded")

        page.click("#tabs button[data-tab=playground]")
        page.wait_for_function(
            f"() => [...document.querySelectorAll('#pg-adapter option')].some(o => o.value === {model!r})"
        )
        assert page.input_value("#pg-adapter") == model  # the newest fine-tuned model is offered first
        page.fill("#pg-question", "退货政策是什么?")
        page.fill("#pg-max", "8")
        page.click("#pg-ask")
        page.wait_for_function(
            "() => document.querySelectorAll('.card.done, .card.failed').length === 4", timeout=120_000
        )
        cards = {m: page.locator(f'.card[data-mode="{m}"]') for m in ("base", "adapter", "rag", "routed")}
        assert page.locator(".card.failed").count() == 0, page.inner_text("#pg-answers")
        assert model in cards["adapter"].inner_text()
        assert "adapter" in cards["adapter"].locator(".route").inner_text()
        assert "base" in cards["base"].locator(".route").inner_text()
        assert "rag" in cards["rag"].locator(".route").inner_text()
        assert cards["rag"].locator(".cite").count() >= 1  # RAG cites its sources
        for card in cards.values():
            assert int(card.locator(".tokens").inner_text().split(": ")[1].split()[0]) > 0
            assert card.locator(".reason").inner_text().strip() not in ("", "reason: —")
        shots(page, "playground")

        page.click("#tabs button[data-tab=kb]")
        page.wait_for_selector("#kb-docs details.doc")
        assert page.locator("#kb-docs details.doc").count() >= 3
        page.fill("#kb-query", "退货")
        page.click("#kb-search-form button")
        page.wait_for_selector("#kb-hits li.hit")
        page.click("#kb-reindex")
        page.wait_for_function("() => document.querySelector('#kb-status').textContent.includes('unchanged')")
        shots(page, "knowledge-base")
        # Cancel: a long job stops, and the live status says so (the worker is warm by now).
        page.click("#tabs button[data-tab=jobs]")
        page.fill("#job-epochs", "100")  # thousands of steps: it is still running when cancelled
        page.fill("#job-batch", "1")
        page.fill("#job-suffix", "")
        page.fill("#job-extra", '{"memorization_check": 0, "early_stopping_patience": 0}')
        page.click("#job-create")
        page.wait_for_function("() => document.querySelector('#job-status').textContent === 'running'")
        page.click("#job-cancel")
        page.wait_for_function(
            "() => document.querySelector('#job-status').textContent === 'cancelled'", timeout=60_000
        )
        assert page.locator("#job-cancel").is_disabled()
        shots(page, "job-cancelled")
        # Only the first request, sent before a key was typed, failed (as it should); no script error,
        # nothing blocked by the Content-Security-Policy.
        assert [e for e in page.console_errors if "status of 401" not in e] == []
