"""configure_cpu(): the program sets OpenMP's wait policy and torch's threads itself (checked in a fresh
process, since OpenMP reads its environment once, when torch loads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from training.threads import configure_cpu, usable_cores

PROBE = (
    "import json, os; from training.threads import configure_cpu; c = configure_cpu({arg}); import torch; "
    "print(json.dumps({{'threads': torch.get_num_threads(), 'policy': os.environ['OMP_WAIT_POLICY'], "
    "'omp': os.environ['OMP_NUM_THREADS'], 'late': c.too_late}}))"
)


def _probe(arg: str = "", **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "IMPRINT_THREADS"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(arg=arg)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_sets_passive_waiting_and_one_thread_per_usable_core_before_torch_loads() -> None:
    got = _probe()
    assert got == {"threads": usable_cores(), "policy": "PASSIVE", "omp": str(usable_cores()), "late": False}


def test_explicit_thread_counts_and_user_environment_win() -> None:
    assert _probe("1")["threads"] == 1
    assert _probe(IMPRINT_THREADS="1")["threads"] == 1
    assert _probe(OMP_WAIT_POLICY="ACTIVE")["policy"] == "ACTIVE"  # the user's explicit choice is kept


def test_after_torch_is_imported_only_the_thread_count_can_change() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        cfg = configure_cpu(1)
        assert torch.get_num_threads() == 1 and cfg.threads == 1
        assert "1 compute thread" in cfg.describe()
    finally:
        torch.set_num_threads(before)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(before)
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
