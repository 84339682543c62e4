"""`make bench`: run every benchmark module in eval/bench/ (each prints a table and writes JSON to results/).

    python -m eval.bench.run_all            # all of them, one after another
    python -m eval.bench.run_all train      # only modules whose name contains "train"

Each benchmark runs as its own process (``python -m eval.bench.NAME``) so one failure or memory peak does not
affect the next; the exit code is non-zero if any failed. GPU-only benchmarks are skipped without CUDA.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in {"__init__", "run_all"})
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    failed: list[str] = []
    for name in names:
        print(f"── {name}", flush=True)
        if subprocess.call([sys.executable, "-m", f"eval.bench.{name}"]) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
