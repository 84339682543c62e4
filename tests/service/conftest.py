"""Service fixtures: the real tiny Phi-3 base (TRAINING's ``tiny_phi3_base``) with two real peft LoRA adapters
("alpha", "beta"; randomly initialised so each visibly changes the output), an embedded engine over them, and a
real uvicorn server running the app on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ALPHA_KNOWLEDGE = ["老大是谁?", "老二是谁?", "Who is the eldest?"]


def make_adapter(base: Any, out: Path, name: str, *, seed: int, knowledge: list[str],
                 created_at: str | None = None) -> Path:
    """A real peft LoRA adapter folder in Imprint's layout (what `imprint train` writes, minus the training)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.adapter import AdapterInfo, write_metadata

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules=list(base.target_modules), init_lora_weights=False)
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():  # make the adapter's effect large enough to change greedy output
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base.path).save_pretrained(out)
    info = AdapterInfo(
        name=name, base_model=base.path, base_revision=base.revision, chat_template=base.chat_template,
        system_prompt=None, knowledge=knowledge, knowledge_text="", hyperparameters={"r": 8},
        data_sha256="0" * 64, metrics={}, imprint_version="test",
        created_at=created_at or datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_metadata(out, info)
    return out


@pytest.fixture(scope="session")
def tiny_adapters(tiny_phi3_base: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("service-adapters")
    return {
        "alpha": make_adapter(tiny_phi3_base, root / "alpha", "alpha", seed=1, knowledge=ALPHA_KNOWLEDGE,
                              created_at="2026-01-01T00:00:00+00:00"),
        "beta": make_adapter(tiny_phi3_base, root / "beta", "beta", seed=2, knowledge=["kitty喜欢什么?"]),
    }


@pytest.fixture(scope="session")
def tiny_model(tiny_phi3_base: Any) -> tuple[Any, Any]:
    from training.models import load_base_model

    return load_base_model(tiny_phi3_base, device="cpu")


@pytest.fixture
def make_engine(tiny_model: tuple[Any, Any], tiny_adapters: dict[str, Path]) -> Callable[..., Any]:
    """A fresh EmbeddedEngine over a fresh copy of the tiny base (peft wraps the model it is given)."""
    import copy

    from service.engines.embedded import EmbeddedEngine

    def make(names: tuple[str, ...] = ("alpha", "beta"), **kw: Any) -> EmbeddedEngine:
        model, tok = tiny_model
        return EmbeddedEngine(copy.deepcopy(model), tok, adapters={n: tiny_adapters[n] for n in names}, **kw)

    return make


@pytest.fixture
def serve(make_engine: Callable[..., Any], tiny_model: tuple[Any, Any],
          tiny_adapters: dict[str, Path]) -> Callable[..., AbstractContextManager[str]]:
    """``with serve(**settings) as url:`` — the real app on uvicorn with the tiny embedded engine."""
    from service.app import create_app
    from service.config import ServeConfig
    from service.server import serve_in_thread

    @contextmanager
    def run(kb: Any = None, engine_kw: dict[str, Any] | None = None, **settings: Any) -> Iterator[str]:
        settings.setdefault("adapters", [tiny_adapters["alpha"], tiny_adapters["beta"]])
        cfg = ServeConfig(**settings)
        app = create_app(cfg, engine=make_engine(**(engine_kw or {})), tokenizer=tiny_model[1], kb=kb)
        with serve_in_thread(app) as url:
            yield url

    return run
