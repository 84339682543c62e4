"""ServeConfig: everything ``imprint serve`` needs, validated in one place.

Precedence: code defaults < YAML file (``--config serve.yaml``) < environment (``IMPRINT_*``, e.g.
``IMPRINT_API_KEYS=key1,key2``, ``IMPRINT_ENGINE=vllm``) < command-line flags. Every problem is collected
into one
error that says how to fix it.

    python -m service.config serve.yaml    # prints the resolved config or every problem with it
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.adapters import adapter_problems
from training.config import ConfigError

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServeConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMPRINT_", extra="forbid", validate_default=True)

    adapters: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    kb: str | None = None
    engine: Literal["embedded", "vllm"] = "embedded"
    base_model: str | None = None  # default: the adapters' base model, else training's default
    vllm_url: str | None = None
    start_vllm: bool = False
    vllm_api_key: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    home: Path | None = None
    chroma_url: str | None = None
    retrieval_k: int = Field(default=5, ge=1, le=50)
    # None: the KB embedder's measured threshold (indexing.embeddings.RELEVANCE_THRESHOLDS)
    dense_threshold: float | None = Field(default=None, ge=-1, le=1)
    # None: the KB embedder's measured paraphrase threshold (service.router.SEMANTIC_THRESHOLDS); > 1 disables
    semantic_threshold: float | None = Field(default=None, ge=-1, le=2)
    lexical_threshold: float = Field(default=0.6, ge=0, le=1)
    knowledge_threshold: float = Field(default=0.6, ge=0, le=1)
    max_context_hits: int = Field(default=3, ge=1, le=20)
    default_max_tokens: int = Field(default=256, ge=1)
    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    max_queue: int = Field(default=16, ge=1)
    request_timeout_s: float = Field(default=300.0, gt=0)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("adapters", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> ServeConfig:
        problems: list[str] = []
        for path in self.adapters:
            problems += adapter_problems(Path(path))
        if self.engine == "vllm" and not (self.vllm_url or self.start_vllm):
            problems.append("engine 'vllm' needs --vllm-url URL (a running server) or --start-vllm")
        if self.vllm_url and self.start_vllm:
            problems.append("give either --vllm-url or --start-vllm, not both")
        if self.start_vllm and self.engine != "vllm":
            problems.append("--start-vllm only makes sense with --engine vllm")
        if not self.api_keys and not is_loopback(self.host):
            problems.append(
                f"host {self.host!r} is not loopback but no API keys are configured: set "
                "IMPRINT_API_KEYS=key1,key2 (or api_keys in the config file), or bind 127.0.0.1"
            )
        if problems:
            raise ValueError("\n".join(f"- {p}" for p in problems))
        return self

    @classmethod
    def load(cls, yaml_path: Path | None = None, **overrides: Any) -> ServeConfig:
        """Defaults < YAML < env < ``overrides`` (None values in overrides mean "not given")."""
        data: dict[str, Any] = {}
        if yaml_path is not None:
            try:
                data = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"config file {yaml_path}: {exc}") from exc
            if not isinstance(data, dict):
                raise ConfigError(
                    f"config file {yaml_path}: expected a mapping of settings, got {type(data)}"
                )
        env = _env_values(cls, cls.model_fields.keys())
        merged = {**data, **env, **{k: v for k, v in overrides.items() if v not in (None, [], ())}}
        try:
            # init kwargs beat env in pydantic-settings, so env values were merged above by hand
            return cls(**merged)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, yaml_path)) from None


def _env_values(cls: type[ServeConfig], names: Any) -> dict[str, Any]:
    import os

    prefix = cls.model_config.get("env_prefix", "")
    return {n: os.environ[f"{prefix}{n}".upper()] for n in names if f"{prefix}{n}".upper() in os.environ}


def format_validation_error(exc: ValidationError, source: Path | None = None) -> str:
    where = f" in {source}" if source else ""
    lines = [f"invalid serve config{where}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        # The cross-field check already lists its problems as "- ..." lines.
        lines.append(f"- {loc}: {msg}" if loc else msg)
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        print(ServeConfig.load(Path(sys.argv[1]) if len(sys.argv) > 1 else None).model_dump_json(indent=2))
    except ConfigError as e:
        sys.exit(str(e))
