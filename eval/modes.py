"""Pluggable evaluation modes: each answers a list of questions and reports tokens used.

    from eval.modes import MODES, ModeContext
    ctx = ModeContext(adapter=Path(".imprint/adapters/family"))
    answers = MODES["ft"](ctx).answer(["老大是谁?"])

``base`` and ``ft`` live here and share ONE loaded base model (``ft`` is the peft-wrapped model, ``base`` the
same model inside ``disable_adapter()``). Other packages register more modes with ``@register_mode("rag")``;
modules named in ``PLUGIN_MODULES`` are imported on first lookup so ``imprint eval --modes rag`` finds them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

PLUGIN_MODULES: tuple[str, ...] = ("service.eval_modes",)


@dataclass(frozen=True)
class Answer:
    answer: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class ModeContext:
    """What a mode may use. ``cache`` holds loaded models so modes share them within one eval run."""

    adapter: Path | None = None
    kb: str | None = None
    base_model: str | None = None  # default: the adapter's base, else the embedded default
    max_new_tokens: int = 64
    cache: dict[str, Any] = field(default_factory=dict)

    def model(self) -> tuple[Any, Any, str, str | None]:
        """(model, tokenizer, chat_template, system_prompt), loaded once; peft-wrapped with an adapter."""
        if "model" not in self.cache:
            import warnings

            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            from training.adapter import read_adapter
            from training.models import DEFAULT_BASE_MODEL, load_base_model, resolve_base_model

            info = read_adapter(self.adapter) if self.adapter else None
            base = resolve_base_model(self.base_model or (info.base_model if info else DEFAULT_BASE_MODEL))
            model, tokenizer = load_base_model(base)
            template, system = base.chat_template, None
            if info is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(info.path))
                model.eval()
                template, system = info.chat_template, info.system_prompt
            self.cache["model"] = (model, tokenizer, template, system)
        return self.cache["model"]


class Mode(Protocol):
    name: str

    def answer(self, questions: list[str]) -> list[Answer]: ...


ModeFactory = Callable[[ModeContext], Mode]
MODES: dict[str, ModeFactory] = {}


def register_mode(name: str) -> Callable[[ModeFactory], ModeFactory]:
    def deco(factory: ModeFactory) -> ModeFactory:
        MODES[name] = factory
        return factory

    return deco


def get_mode(name: str) -> ModeFactory:
    if name not in MODES:
        for module in PLUGIN_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    if name not in MODES:
        raise KeyError(f"unknown eval mode {name!r}; available: {', '.join(sorted(MODES))}")
    return MODES[name]


def chat_prompts(questions: list[str], template: str, system_prompt: str | None, bos: str) -> list[str]:
    from training.chat import render_chat

    prefix = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [
        render_chat(
            [*prefix, {"role": "user", "content": q}], template, add_generation_prompt=True, bos_token=bos
        )
        for q in questions
    ]


@dataclass
class _ModelMode:
    ctx: ModeContext
    name: str
    use_adapter: bool

    def answer(self, questions: list[str]) -> list[Answer]:
        from contextlib import nullcontext

        from training.generate import generate

        model, tok, template, system = self.ctx.model()
        if self.use_adapter and self.ctx.adapter is None:
            raise ValueError("mode 'ft' needs --adapter DIR")
        # The base mode answers with the same chat template, without the adapter's weights.
        off = (
            model.disable_adapter() if (not self.use_adapter and hasattr(model, "disable_adapter")) else None
        )
        with off or nullcontext():
            gens = generate(
                model,
                tok,
                chat_prompts(questions, template, system, tok.bos_token or ""),
                max_new_tokens=self.ctx.max_new_tokens,
            )
        return [Answer(g.text, g.prompt_tokens, g.completion_tokens) for g in gens]


@register_mode("base")
def base_mode(ctx: ModeContext) -> Mode:
    return _ModelMode(ctx, "base", use_adapter=False)


@register_mode("ft")
def ft_mode(ctx: ModeContext) -> Mode:
    return _ModelMode(ctx, "ft", use_adapter=True)
