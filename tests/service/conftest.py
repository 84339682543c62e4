"""Service fixtures: the real tiny Phi-3 base (TRAINING's ``tiny_phi3_base``) with two real peft LoRA adapters
("alpha", "beta"; randomly initialised so each visibly changes the output), an embedded engine over them,
and a
real uvicorn server running the app on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.service.factories import make_adapter

ALPHA_KNOWLEDGE = ["老大是谁?", "老二是谁?", "Who is the eldest?"]


@pytest.fixture(scope="session")
def tiny_adapters(tiny_phi3_base: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("service-adapters")
    return {
        "alpha": make_adapter(
            tiny_phi3_base,
            root / "alpha",
            "alpha",
            seed=1,
            knowledge=ALPHA_KNOWLEDGE,
            created_at="2026-01-01T00:00:00+00:00",
        ),
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
def serve(
    make_engine: Callable[..., Any], tiny_model: tuple[Any, Any], tiny_adapters: dict[str, Path]
) -> Callable[..., AbstractContextManager[str]]:
    """``with serve(**settings) as url:`` — the real app on uvicorn with the tiny embedded engine. Answer
    checks are off unless a test turns them on (``check_answers=True``): the tiny adapters' weights are
    random, so a check would turn every routed answer into an abstention and hide the routing under test."""
    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig

    @contextmanager
    def run(
        kb: Any = None, engine_kw: dict[str, Any] | None = None, kb_name: str | None = None, **settings: Any
    ) -> Iterator[str]:
        settings.setdefault("adapters", [tiny_adapters["alpha"], tiny_adapters["beta"]])
        settings.setdefault("check_answers", False)
        settings["kb"] = kb_name
        cfg = ServeConfig(**settings)
        app = create_app(cfg, engine=make_engine(**(engine_kw or {})), tokenizer=tiny_model[1], kb=kb)
        with serve_in_thread(app) as url:
            yield url

    return run


@pytest.fixture(scope="session")
def chatty_base(tiny_phi3_base: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny base model whose answers never end by themselves (``factories.make_chatty_base``)."""
    from tests.service.factories import make_chatty_base
    from training.models import resolve_base_model

    return resolve_base_model(str(make_chatty_base(tiny_phi3_base, tmp_path_factory.mktemp("chatty") / "m")))


@pytest.fixture
def serve_chatty(
    chatty_base: Any, tiny_adapters: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., AbstractContextManager[tuple[str, Any]]]:
    """``with serve_chatty(**settings) as (url, engine):`` — the real app over the never-ending model,
    with the alpha adapter (made for the same architecture); ``engine`` is the EmbeddedEngine itself. The
    operator allows long answers (IMPRINT_MAX_TOKENS_LIMIT=50000) so there is a long generation to stop."""
    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig
    from service.engines.embedded import EmbeddedEngine
    from training.models import load_base_model

    @contextmanager
    def run(**settings: Any) -> Iterator[tuple[str, Any]]:
        model, tok = load_base_model(chatty_base, device="cpu")
        settings.setdefault("adapters", [tiny_adapters["alpha"]])
        settings.setdefault("check_answers", False)  # a never-ending answer is what these tests stop
        monkeypatch.setenv("IMPRINT_MAX_TOKENS_LIMIT", "50000")
        engine = EmbeddedEngine(model, tok, adapters={"alpha": tiny_adapters["alpha"]})
        app = create_app(ServeConfig(**settings), engine=engine, tokenizer=tok)
        with serve_in_thread(app) as url:
            yield url, engine

    return run


@pytest.fixture
def adapter_dir(imprint_home: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh folder inside the default adapter root ($IMPRINT_HOME/adapters), where POST /v1/adapters may
    load from without extra configuration."""
    import re
    import shutil

    folder = imprint_home / "adapters" / re.sub(r"\W+", "-", request.node.name)[:80]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
