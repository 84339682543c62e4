"""The console's Adapters panel on the adapter registry (issue 9's ``GET /v1/adapters``, promote, rollback,
staleness), in headless chromium: two versions of "family" trained by real jobs on tiny-phi3, then promote
v1 and roll back to v2 with the page's buttons, and the staleness report against a real KB.

Skipped where the registry (``service.lifecycle``) is not part of the service yet; there the panel shows the
served models and the API's message instead (``test_browser``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.service.console.conftest import KEY, open_console

pytest.importorskip("service.lifecycle", reason="the adapter registry is not in this service yet")
PAIRS = ({"老大是谁?": "老大是哥哥JIM。"}, {"老大是谁?": "老大是弟弟Mike。"})


def train_version(c: openai.OpenAI, path: Path, pairs: dict[str, str]) -> dict[str, Any]:
    lines = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in pairs.items()
    ]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    with path.open("rb") as fh:
        f = c.files.create(file=fh, purpose="fine-tune")
    job = c.fine_tuning.jobs.create(
        model="tiny-phi3",
        training_file=f.id,
        hyperparameters={"n_epochs": 1},
        extra_body={"imprint": {"memorization_check": 0, "adapter": "family", "promote": "always"}},
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        got = c.fine_tuning.jobs.retrieve(job.id)
        assert got.status not in ("failed", "cancelled"), got.error
        gate = (got.model_extra.get("imprint") or {}).get("gate")
        if gate:
            return gate
        time.sleep(0.5)
    raise AssertionError(f"job {job.id} was not judged in time")


def promoted_row(page: Any) -> str | None:
    return page.locator('.adapter[data-name="family"] tr.selected').get_attribute("data-version")


def test_versions_promote_rollback_and_staleness(browser: Any, serve: Any, kb_home: Path, shots: Any) -> None:
    from indexing.registry import get_kb

    kb = get_kb("web", home=kb_home)
    with serve(kb=kb, kb_name="web", home=kb_home, api_keys=[KEY], job_poll_s=0.3) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        assert [
            train_version(c, kb_home.parent / f"v{i}.jsonl", p)["version"] for i, p in enumerate(PAIRS)
        ] == [1, 2]

        page = open_console(browser, url)
        page.wait_for_selector("#app:not([hidden])")
        page.click("#tabs button[data-tab=adapters]")
        page.wait_for_selector('.adapter[data-name="family"] tr[data-version="2"]')
        assert promoted_row(page) == "2"
        page.click('.adapter[data-name="family"] tr[data-version="1"] button.promote')
        page.wait_for_function("() => document.querySelector('#ad-status').textContent.includes('v1')")
        assert promoted_row(page) == "1"
        shots(page, "adapters-promoted")
        page.click('.adapter[data-name="family"] button.rollback')
        page.wait_for_function("() => document.querySelector('#ad-status').textContent.includes('v2')")
        assert promoted_row(page) == "2"

        page.fill("#stale-adapter", "family")
        page.select_option("#stale-kb", "web")
        page.click("#stale-form button")
        page.wait_for_function(
            "() => document.querySelector('#stale-result').textContent.includes('consistent')",
            timeout=120_000,
        )
        shots(page, "adapters-staleness")
