"""Fine-tuning jobs benchmark, in one run on one machine: (1) `imprint train` on the family data, the local
baseline; (2) `imprint serve` (API + its worker child) — chat latency idle, the same training as a job with no
chat load (job overhead = job wall / `imprint train` wall, goal ≤ 1.1×), then the job again while a client
chats without pause (chat latency p50/p95 while a job trains vs idle).

    python -m eval.bench.jobs                              # gemma3-270m, the family data (~6 min, 2 cores)
    python -m eval.bench.jobs --base-model tiny-phi3 --requests 10     # a quick smoke run

Both trainings are subprocesses started cold (imports, model load), with the same data, seed and auto
hyperparameters; the job's wall is from `jobs.create` until the client sees `succeeded` (worker start, queue,
per-epoch checkpoints, events, serving the adapter included). Writes eval/bench/results/jobs_<base>.json + md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai

from eval.bench.service_bench import pct

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
FAMILY = REPO / "eval" / "examples" / "family" / "train.jsonl"
QUESTION = "老大是谁?"
TERMINAL = ("succeeded", "failed", "cancelled")


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "IMPRINT_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        **extra,
    }


def local_train(base: str, data: Path, home: Path) -> float:
    cmd = [sys.executable, "-m", "service.cli", "train", "--training-file", str(data), "--base-model", base]
    t0 = time.monotonic()
    subprocess.run(cmd, env=env_for(home), cwd=REPO, check=True, capture_output=True)
    return time.monotonic() - t0


def start_service(base: str, home: Path, port: int, log: Any) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "service.cli", "serve", "--base-model", base, "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=env_for(home, IMPRINT_JOB_POLL_S="0.5"), cwd=REPO, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"imprint serve exited during start-up (see {log.name})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise TimeoutError("imprint serve did not become ready in 600 s")


def chat_once(c: openai.OpenAI) -> float:
    t0 = time.perf_counter()
    c.chat.completions.create(
        model="imprint-base", messages=[{"role": "user", "content": QUESTION}], max_tokens=16, temperature=0
    )
    return (time.perf_counter() - t0) * 1000


def run_job(c: openai.OpenAI, file_id: str, base: str, *, chat: bool, max_requests: int) -> dict[str, Any]:
    """One job from create to succeeded; with ``chat``, a client chats back to back while it runs."""
    t0 = time.monotonic()
    job = c.fine_tuning.jobs.create(model=base, training_file=file_id)
    latencies: list[float] = []
    while job.status not in TERMINAL:
        if chat and job.status == "running" and len(latencies) < max_requests:
            latencies.append(chat_once(c))
        else:
            time.sleep(0.25)
        job = c.fine_tuning.jobs.retrieve(job.id)
    wall = time.monotonic() - t0
    if job.status != "succeeded":
        raise RuntimeError(f"job {job.id} {job.status}: {job.error}")
    return {
        "job_id": job.id,
        "wall_s": round(wall, 1),
        "latencies_ms": latencies,
        "hyperparameters": job.hyperparameters.model_dump(),
    }


def summary(latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"n": 0, "p50_ms": None, "p95_ms": None}
    return {
        "n": len(latencies),
        "p50_ms": round(pct(latencies, 0.5), 1),
        "p95_ms": round(pct(latencies, 0.95), 1),
    }


def bench(base: str, requests: int) -> dict[str, Any]:
    from service.background import free_port

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="imprint-jobs-bench-") as tmp:
        root = Path(tmp)
        local_s = local_train(base, FAMILY, root / "local")
        port = free_port()
        with (root / "serve.log").open("wb") as log:
            proc = start_service(base, root / "service", port, log)
            try:
                c = openai.OpenAI(
                    base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=600
                )
                chat_once(c)  # warm-up
                idle = [chat_once(c) for _ in range(requests)]
                with FAMILY.open("rb") as fh:
                    file_id = c.files.create(file=fh, purpose="fine-tune").id
                quiet = run_job(c, file_id, base, chat=False, max_requests=0)
                busy = run_job(c, file_id, base, chat=True, max_requests=500)
            finally:
                proc.terminate()
                proc.wait(60)
    idle_s, busy_s = summary(idle), summary(busy["latencies_ms"])
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "base_model": base,
        "data": str(FAMILY.relative_to(REPO)),
        "cpu_count": os.cpu_count(),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "imprint_train_s": round(local_s, 1),
        "job_s": quiet["wall_s"],
        "job_overhead": round(quiet["wall_s"] / local_s, 3),
        "job_with_chat_s": busy["wall_s"],
        "hyperparameters": quiet["hyperparameters"],
        "chat_idle": idle_s,
        "chat_while_training": busy_s,
        "chat_slowdown_p50": round(busy_s["p50_ms"] / idle_s["p50_ms"], 2) if busy_s["n"] else None,
    }


def markdown(r: dict[str, Any]) -> str:
    idle, busy = r["chat_idle"], r["chat_while_training"]
    return "\n".join(
        [
            f"# Fine-tuning jobs benchmark ({r['created_at']})",
            "",
            f"{r['base_model']} on {r['data']} (auto hyperparameters: {r['hyperparameters']}), "
            f"{r['cpu_count']} CPUs, load average {r['load_average'][0]} → {r['load_average'][1]} "
            "(shared machine: compare within this run only).",
            "",
            "| measure | value |",
            "|---|---|",
            f"| `imprint train` wall (subprocess, cold) | {r['imprint_train_s']} s |",
            f"| job wall, create → succeeded, no chat load | {r['job_s']} s |",
            f"| **job overhead** (job / `imprint train`; goal ≤ 1.1×) | **{r['job_overhead']}×** |",
            f"| job wall while a client chats back to back | {r['job_with_chat_s']} s |",
            f"| chat latency idle p50 / p95 (n={idle['n']}) | {idle['p50_ms']} / {idle['p95_ms']} ms |",
            f"| chat latency while a job trains p50 / p95 (n={busy['n']}) | "
            f"{busy['p50_ms']} / {busy['p95_ms']} ms |",
            f"| chat slowdown while training (p50) | {r['chat_slowdown_p50']}× |",
            "",
            "Chat: `imprint-base`, 16 new tokens, greedy, one request at a time. The job trains in the "
            "worker process, so the API's event loop stays free; on 2 shared cores the slowdown is the "
            "CPU the training takes.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-model", default="gemma3-270m")
    parser.add_argument("--requests", type=int, default=30, help="idle chat requests")
    args = parser.parse_args()
    result = bench(args.base_model, args.requests)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"jobs_{args.base_model}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    stem.with_suffix(".md").write_text(markdown(result) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
