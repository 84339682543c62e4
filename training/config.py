"""One config mechanism for every command: defaults in code < YAML file < ``IMPRINT_*`` environment < flags.

Each entry point (train, eval, index, search, serve, retrain, demo) has one typed ``Settings`` subclass.
``load(yaml_path, **flags)`` merges the four sources with pydantic-settings (flags given as ``None`` mean "not
given"), checks the types, then the config's own ``problems()`` (paths, ranges, combinations), and raises ONE
``ConfigError`` listing every problem on its own line, each naming the field and the fix:

    from training.train import TrainConfig
    TrainConfig.load(training_file="missing.jsonl", n_epochs=0)   # ConfigError: both problems at once
    IMPRINT_TRAIN_SEED=7 imprint train --config train.yaml ...     # env beats the YAML, flags beat both
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml
from pydantic import ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from training.errors import InvalidInput

# The YAML file of the load() in progress (pydantic-settings builds sources per class, not per call).
_YAML: contextvars.ContextVar[Path | None] = contextvars.ContextVar("imprint_yaml", default=None)


class ConfigError(InvalidInput):
    """Every problem with a command's settings, one per line, each with how to fix it."""

    default_code = "invalid_config"


def format_problems(title: str, problems: Iterable[str]) -> str:
    return f"{title}:\n  " + "\n  ".join(problems)


def validation_problems(exc: ValidationError) -> list[str]:
    """pydantic's errors as ``field: message (got value)`` lines; cross-field problems as written."""
    lines: list[str] = []
    for err in exc.errors():
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _Problems):
            lines += ctx_error.problems
            continue
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        got = "" if err["type"] in ("missing", "value_error") else f" (got {err.get('input')!r})"
        lines.append(f"{where}: {msg}{got}" if where else msg)
    return lines


class _Problems(ValueError):
    """Raised by the after-validator so cross-field problems reach load() as a list."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """Base of every command's config. Unknown fields are refused; subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(
        env_prefix="IMPRINT_", extra="forbid", validate_default=True, env_ignore_empty=True
    )
    config_title: ClassVar[str] = "invalid settings"

    def problems(self) -> list[str]:
        """Checks beyond types; each line names the field and the fix."""
        return []

    @model_validator(mode="after")
    def _check_problems(self) -> Self:
        if problems := self.problems():
            raise _Problems(problems)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_path = _YAML.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)

    @classmethod
    def load(cls, yaml_path: Path | str | None = None, **flags: Any) -> Self:
        """Defaults < YAML < env < ``flags`` (``None`` flags are "not given"); one ConfigError for all."""
        where = f" ({yaml_path})" if yaml_path else ""
        if yaml_path is not None:
            _check_yaml(Path(yaml_path), cls.config_title)
        token = _YAML.set(Path(yaml_path) if yaml_path is not None else None)
        try:
            return cls(**{k: v for k, v in flags.items() if v is not None})
        except ValidationError as exc:
            raise ConfigError(format_problems(cls.config_title + where, validation_problems(exc))) from None
        finally:
            _YAML.reset(token)

    # Kept for callers that build a config from values in code: same checks, no YAML, env still applies.
    @classmethod
    def build(cls, **values: Any) -> Self:
        return cls.load(None, **values)


def _check_yaml(path: Path, title: str) -> None:
    """A YAML config must exist and be a mapping; say so before pydantic-settings reads it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{title}: config file {path}: {exc.strerror} — fix the --config path") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{title}: config file {path} is not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"{title}: config file {path} must be a mapping of settings (key: value), "
            f"got {type(data).__name__}"
        )


def field_help(cls: type[Settings], name: str) -> str:
    """A flag's help text from the config field's description and default (written once, in the config)."""
    info = cls.model_fields[name]
    default = info.get_default(call_default_factory=True)
    shown = "" if default in (None, [], {}) else f" [default: {default}]"
    return f"{info.description or name}{shown}"
