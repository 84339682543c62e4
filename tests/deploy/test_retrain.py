"""Scheduled retraining job logic with REAL training on the tiny Phi-3 and a real running service to
hot-load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.retrain import RetrainConfig, next_version, read_state, run_once
from service.app import create_app
from service.background import serve_in_thread
from service.config import ServeConfig
from service.engines.embedded import EmbeddedEngine

pytestmark = pytest.mark.slow


def test_config_collects_every_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        RetrainConfig(
            training_file=tmp_path / "missing.jsonl",
            adapters_root=tmp_path,
            name="bad name!",
            cron="every day",
            every_s=60,
            service_urls=["localhost:8000"],
        )
    text = str(err.value)
    for part in ("training_file", "name: 'bad name!'", "not both", "cron: 'every day'", "localhost:8000"):
        assert part in text


def test_retrain_versions_hot_loads_and_keeps_old_on_failure(
    tiny_phi3_base: Any, tiny_phi3_adapter: Path, family_train_file: Path, tmp_path: Path
) -> None:
    from training.models import load_base_model

    data = tmp_path / "train.jsonl"
    shutil.copy(family_train_file, data)
    root = tmp_path / "adapters"
    model, tok = load_base_model(tiny_phi3_base, device="cpu")
    app = create_app(
        # Answer checks off: the tiny random adapter fails its memorisation check; this test is about routing.
        ServeConfig(adapters=[tiny_phi3_adapter], adapter_roots=[root], check_answers=False),
        tokenizer=tok,
        engine=EmbeddedEngine(model, tok, adapters={}),
    )
    with serve_in_thread(app) as url:
        cfg = RetrainConfig(
            training_file=data,
            adapters_root=root,
            name="fam",
            base_model="tiny-phi3",
            service_urls=[url],
            train_overrides={"n_epochs": 1},
        )

        first = run_once(cfg)
        assert first.status == "trained" and first.version == root / "fam-v1", first.summary()
        assert first.hot_loaded == [url] and not first.errors
        models = [m["id"] for m in httpx.get(url + "/v1/models").json()["data"]]
        assert "imprint-adapter:fam" in models
        v1_created = json.loads((root / "fam-v1" / "imprint.json").read_text())["created_at"]

        assert run_once(cfg).status == "unchanged"  # same sha256 → no work

        with data.open("a", encoding="utf-8") as fh:
            fh.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": "老三是谁?"},
                            {"role": "assistant", "content": "老三是Tom。"},
                        ]
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
        second = run_once(cfg)
        assert second.status == "trained" and second.version == root / "fam-v2"
        assert json.loads((root / "fam-v2" / "imprint.json").read_text())["knowledge"] != []
        r = httpx.post(
            url + "/v1/chat/completions",
            timeout=60,
            json={
                "model": "imprint",
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "老三是谁?"}],
            },
        )
        # The hot-loaded v2 knows the new question; the routed model uses it without a restart.
        assert r.status_code == 200 and r.json()["imprint"]["route"] == "adapter", r.text
        assert r.json()["imprint"]["adapter"] == "fam"

        data.write_text("{broken json\n", encoding="utf-8")
        failed = run_once(cfg)
        assert failed.status == "failed" and failed.version == root / "fam-v2"
        assert not (root / "fam-v3").exists()  # nothing half-written
        state = read_state(cfg)
        assert state["current"] == str(root / "fam-v2") and len(state["history"]) == 2
        assert next_version(cfg) == root / "fam-v3"
        assert httpx.get(url + "/readyz").status_code == 200  # still serving
    assert v1_created
