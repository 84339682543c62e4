"""ServeConfig: everything ``imprint serve`` needs, on the one config mechanism (``training.config``).

Precedence: code defaults < YAML file (``--config serve.yaml``) < environment (``IMPRINT_*``, e.g.
``IMPRINT_API_KEYS=key1,key2``, ``IMPRINT_ENGINE=vllm``) < command-line flags. Every problem is collected
into one ``ConfigError`` that says how to fix it.

    python -m service.config serve.yaml    # prints the resolved config or every problem with it
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import NoDecode

from training.adapter import adapter_problems
from training.config import ConfigError, Settings

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",")]
    return value


class ScopedKey(BaseModel):
    """A bearer key with limited rights (``api_keys`` hold full-access keys). In YAML::

        scoped_keys:
          - {key: k-support, kbs: [shop]}                              # chat + search the shop KB
          - {key: k-ops, kbs: ["*"], reindex: true, load_adapters: true}

    or ``IMPRINT_SCOPED_KEYS='[{"key": "k-support", "kbs": ["shop"]}]'`` (JSON). ``kbs`` names the
    knowledge bases the key may read (search, and chat that retrieves from them); ``"*"`` is every KB this
    server exposes.
    """

    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="the bearer token")
    kbs: list[str] = Field(default_factory=lambda: ["*"], description="KBs it may read; '*' = all exposed")
    reindex: bool = Field(False, description="may re-index the KBs it may read")
    load_adapters: bool = Field(False, description="may hot-load adapters (POST /v1/adapters)")
    jobs: bool = Field(False, description="may run jobs (training, evaluation)")

    @field_validator("key")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()  # the header's token is compared stripped too


class ServeConfig(Settings):
    config_title: ClassVar[str] = "invalid serve config"

    adapters: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="adapter folders from `imprint train` (repeat --adapter)"
    )
    kb: str | None = Field(None, description="knowledge base to retrieve from (`imprint index`)")
    engine: Literal["embedded", "vllm"] = Field("embedded", description="embedded (in-process) or vllm")
    base_model: str | None = Field(None, description="default: the adapters' base model")
    vllm_url: str | None = Field(None, description="a running vLLM OpenAI server")
    start_vllm: bool = Field(False, description="launch vLLM with the adapters")
    vllm_api_key: str | None = None
    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8000, ge=1, le=65535, description="port")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="full-access bearer keys (IMPRINT_API_KEYS=k1,k2)"
    )
    scoped_keys: list[ScopedKey] = Field(
        default_factory=list, description="bearer keys limited to some KBs/actions (see ScopedKey)"
    )
    exposed_kbs: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="KBs besides the served one that /v1/kb routes may search or re-index ('*' = all)",
    )
    adapter_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="folders POST /v1/adapters may load from [default: $IMPRINT_HOME/adapters]",
    )
    docs: Literal["keyed", "open", "off"] = Field(
        "keyed", description="/docs, /redoc, /openapi.json: behind the API key, open, or off"
    )
    # Browser origins allowed to call the API (CORS); none by default, "*" for any (IMPRINT_CORS_ORIGINS=a,b).
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins browsers may call from (CORS)"
    )
    home: Path | None = None
    chroma_url: str | None = None
    retrieval_k: int = Field(default=5, ge=1, le=50)
    # None: the KB embedder's measured threshold (indexing.embeddings.RELEVANCE_THRESHOLDS)
    dense_threshold: float | None = Field(default=None, ge=-1, le=1)
    semantic_threshold: float | None = Field(
        default=None,
        ge=-1,
        le=2,
        description="cosine to a training question that counts as that question in other words (default: "
        "calibrated per adapter on its own training set; > 1 turns matching by meaning off)",
    )
    lexical_threshold: float = Field(default=0.6, ge=0, le=1)
    knowledge_threshold: float = Field(default=0.6, ge=0, le=1)
    max_context_hits: int = Field(default=3, ge=1, le=20)
    paraphrase_wording: Literal["trained", "original"] = Field(
        "trained", description="ask the adapter a paraphrased question in its trained wording, or as asked"
    )
    check_answers: bool = Field(
        True, description="check routed answers (confidence, document support) before sending them"
    )
    adapter_confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="adapter-alone answers below this token probability are not "
        "trusted (default: the adapter's calibrated threshold)",
    )
    default_max_tokens: int = Field(default=256, ge=1)
    max_tokens_limit: int = Field(
        default=4096, ge=1, description="most new tokens one request may ask for (max_tokens)"
    )
    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    max_queue: int = Field(default=16, ge=1)
    request_timeout_s: float = Field(default=300.0, gt=0)
    shutdown_grace_s: float = Field(
        default=5.0, ge=0, description="on SIGTERM, how long in-flight requests may finish before they stop"
    )
    # Fine-tuning jobs (service.jobs): the store, the worker imprint serve starts, upload limits.
    database_url: str | None = Field(None, description="job store (default: SQLite at $IMPRINT_HOME/jobs.db)")
    job_worker: bool = Field(True, description="start a job worker child process (false: `imprint worker`)")
    job_concurrency: int | None = Field(
        None, ge=1, le=64, description="jobs at once (default: 1, or 1 per GPU)"
    )
    job_poll_s: float = Field(1.0, gt=0, le=60, description="how often workers and the API look at the store")
    job_lease_s: float = Field(
        30.0, ge=2, le=3600, description="a job whose worker stopped renewing for this long is taken over"
    )
    files_max_bytes: int = Field(512 * 1024 * 1024, ge=1024, description="largest upload to POST /v1/files")
    # The adapter lifecycle's eval gate (service.lifecycle.gate).
    gate_tolerance: float = Field(
        0.0, ge=0, le=1, description="how much lower a kind's score may be and still count as not worse"
    )
    gate_pass_score: float = Field(
        0.8, ge=0, le=1, description="score on every kind a name's first version needs to be promoted"
    )
    gate_max_tokens: int = Field(64, ge=1, le=4096, description="new tokens per gate question")

    @field_validator("api_keys", "adapters", "cors_origins", "exposed_kbs", "adapter_roots", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("api_keys")
    @classmethod
    def _no_empty_keys(cls, value: list[str]) -> list[str]:
        # An empty string is never a key: "Authorization: Bearer" with no token must not get in.
        return [k.strip() for k in value if k and k.strip()]

    @property
    def keyed(self) -> bool:
        """Whether requests must carry a key (no keys at all: open, which only loopback allows)."""
        return bool(self.api_keys or self.scoped_keys)

    def allowed_adapter_roots(self) -> list[Path]:
        """Where POST /v1/adapters may load from: ``adapter_roots``, else ``$IMPRINT_HOME/adapters``."""
        from training.paths import imprint_home

        roots = self.adapter_roots or [(self.home or imprint_home()) / "adapters"]
        return [Path(r).expanduser().resolve() for r in roots]

    def problems(self) -> list[str]:
        problems: list[str] = []
        for i, scoped in enumerate(self.scoped_keys):
            if not scoped.key.strip():
                problems.append(
                    f"scoped_keys.{i}.key: empty — an empty key would let 'Authorization: Bearer' in; "
                    "give it a long random token or remove the entry"
                )
        for path in self.adapters:
            problems += adapter_problems(Path(path))
        if self.engine == "vllm" and not (self.vllm_url or self.start_vllm):
            problems.append("engine: 'vllm' needs --vllm-url URL (a running server) or --start-vllm")
        if self.vllm_url and self.start_vllm:
            problems.append("vllm_url: give either --vllm-url or --start-vllm, not both")
        if self.start_vllm and self.engine != "vllm":
            problems.append("start_vllm: only makes sense with --engine vllm")
        both = set(self.api_keys) & {k.key for k in self.scoped_keys}
        if both:
            problems.append(
                f"scoped_keys: {len(both)} key(s) also listed in api_keys (full access); list each key once"
            )
        if not self.keyed and not is_loopback(self.host):
            problems.append(
                f"host: {self.host!r} is not loopback but no API keys are configured: set "
                "IMPRINT_API_KEYS=key1,key2 (or api_keys in the config file), or bind 127.0.0.1"
            )
        return problems


if __name__ == "__main__":
    try:
        print(ServeConfig.load(Path(sys.argv[1]) if len(sys.argv) > 1 else None).model_dump_json(indent=2))
    except ConfigError as e:
        sys.exit(str(e))
