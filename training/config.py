"""Self-validating entry-point configs, shared by every package.

Each entry point (train, eval, index, search, serve) has one typed config. ``build(**values)`` checks types
(pydantic), then the config's own ``problems()`` (paths, ranges, combinations), and raises ONE ``ConfigError``
that lists every problem on its own line, each naming the field and how to fix it:

    from training.train import TrainConfig
    TrainConfig.build(training_file="missing.jsonl", n_epochs=0)   # ConfigError: both problems at once
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(ValueError):
    """Every problem with a config, one per line, each with how to fix it."""


def format_problems(title: str, problems: Iterable[str]) -> str:
    return f"{title}:\n  " + "\n  ".join(problems)


def validation_problems(exc: ValidationError) -> list[str]:
    """pydantic's errors as ``field: message (got value)`` lines."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        got = "" if err["type"] == "missing" else f" (got {err.get('input')!r})"
        lines.append(f"{where}: {msg}{got}" if where else msg)
    return lines


class CheckedConfig(BaseModel):
    """Base for entry-point configs: unknown fields are refused, ``None`` means "use the default"."""

    model_config = ConfigDict(extra="forbid")
    config_title: ClassVar[str] = "invalid config"

    def problems(self) -> list[str]:
        """Checks beyond types; each line names the field and the fix."""
        return []

    @classmethod
    def build(cls, **values: Any) -> Self:
        values = {k: v for k, v in values.items() if v is not None}
        try:
            cfg = cls(**values)
        except ValidationError as exc:
            raise ConfigError(format_problems(cls.config_title, validation_problems(exc))) from None
        if problems := cfg.problems():
            raise ConfigError(format_problems(cls.config_title, problems))
        return cfg
