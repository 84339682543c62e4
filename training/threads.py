"""CPU threads and the OpenMP wait policy, set by the program itself (not only by the Makefile).

Call :func:`configure_cpu` at process start, BEFORE anything imports torch (or numpy/tokenizers): OpenMP
reads ``OMP_WAIT_POLICY`` / ``OMP_NUM_THREADS`` once, when torch loads its runtime. The CLI does it first
thing; ``training.train.train`` calls it again (harmless) so the thread count is right for library callers,
but by then only the thread count can still change.

    from training.threads import configure_cpu
    configure_cpu()          # PASSIVE waiting, one compute thread per physical core we may use
    import torch

Why: on a shared machine, idle OpenMP threads that spin (the ACTIVE default of some runtimes) steal the other
processes' cores, and hyper-threads add contention, not FLOPs, to matrix multiplications.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuConfig:
    threads: int
    wait_policy: str
    too_late: bool  # torch was already imported: OMP_* environment changes no longer apply

    def describe(self) -> str:
        late = " (torch was imported first: wait policy unchanged)" if self.too_late else ""
        return f"{self.threads} compute thread(s), OMP_WAIT_POLICY={self.wait_policy}{late}"


def _cgroup_cpus() -> float | None:
    """The container's CPU quota in cores (cgroup v2 ``cpu.max``), or None when unlimited/unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def usable_cores() -> int:
    """Physical cores this process may run on: min(physical cores, CPU affinity, cgroup quota), ≥ 1."""
    import psutil

    physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        allowed = os.cpu_count() or 1
    n = min(physical, allowed)
    quota = _cgroup_cpus()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def configure_cpu(threads: int | None = None) -> CpuConfig:
    """Set the OpenMP environment (if not set by the user) and torch's intra-op threads; see the module doc.

    The number of compute threads: ``threads``, else ``$IMPRINT_THREADS``, else ``$OMP_NUM_THREADS``, else
    :func:`usable_cores`.
    """
    env = os.environ
    given = threads or int(env.get("IMPRINT_THREADS", "0") or 0) or int(env.get("OMP_NUM_THREADS", "0") or 0)
    n = given or usable_cores()
    torch_loaded = "torch" in sys.modules
    too_late = torch_loaded and "OMP_WAIT_POLICY" not in env
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("KMP_BLOCKTIME", "0")  # the same for Intel's OpenMP runtime
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(n)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")  # its own thread pool would compete with torch's
    if torch_loaded:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return CpuConfig(threads=n, wait_policy=env["OMP_WAIT_POLICY"], too_late=too_late)
