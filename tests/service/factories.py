"""Test helpers: real peft adapters in Imprint's folder layout (without training, for speed), a tiny model
whose answers never end, and a real `imprint serve` subprocess."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from service.background import free_port


def make_adapter(
    base: Any, out: Path, name: str, *, seed: int, knowledge: list[str], created_at: str | None = None
) -> Path:
    """A real peft LoRA adapter folder in Imprint's layout (what `imprint train` writes, minus the
    training)."""
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
        name=name,
        base_model=base.name,
        base_revision=base.revision,
        chat_template=base.chat_template,
        system_prompt=None,
        knowledge=knowledge,
        knowledge_text="",
        hyperparameters={"r": 8},
        data_sha256="0" * 64,
        metrics={},
        imprint_version="test",
        created_at=created_at or datetime.now(UTC).isoformat(timespec="seconds"),
    )
    write_metadata(out, info)
    return out


def make_chatty_base(base: Any, out: Path) -> Path:
    """The tiny Phi-3 that never ends its answer: the rows of its special tokens (EOS, end-of-turn) in the
    output layer are zero, so they never win greedy decoding, and its context is 100k tokens. A long
    generation takes minutes on CPU — what cancellation, shutdown and soak tests need to stop."""
    import torch

    from training.models import load_base_model

    model, tok = load_base_model(base, device="cpu")
    with torch.no_grad():
        for i in tok.all_special_ids:
            model.lm_head.weight[i] = 0
    model.config.max_position_embeddings = 100_000
    model.config.original_max_position_embeddings = 100_000
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "chat_template.jinja").write_text(base.chat_template, encoding="utf-8")
    return out


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError("imprint serve did not become ready:\n" + log.read_text(errors="replace")[-3000:])


def start_serve(args: list[str], tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """A real ``imprint serve ARGS`` process of this checkout on a free loopback port, once /readyz is 200."""
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", *args, "--port", str(port)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log)
    except BaseException:
        proc.kill()
        raise
    return proc, url
