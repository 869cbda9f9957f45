"""How many cores a run may use (its CPU affinity, capped by a cgroup's CPU quota), and a child
process that ends with its parent: for the engine's workers and the command's entry point, which
imports nothing before it forks."""

from __future__ import annotations

import math
import os
import sys


def usable(quota: float | None) -> int:
    """The cores this process may really run on: its CPU affinity, capped by a cgroup's CPU quota
    `quota` (a container limited to 2 CPUs on a 64-core host sees 64 in `os.cpu_count()`). Rust's
    `available_parallelism`, which ast-grep and ripgrep size their thread pools by, reads the same."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, math.ceil(quota))) if quota is not None else max(1, cores)


def cgroup_quota() -> float | None:
    """CPUs the cgroup may use (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`), or None if unlimited."""
    for path, read in (("/sys/fs/cgroup/cpu.max", v2_quota), ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", v1_quota)):
        try:
            with open(path, encoding="ascii") as handle:
                text = handle.read()
        except OSError:
            continue
        return read(text)
    return None


def v2_quota(text: str) -> float | None:
    quota, _, period = text.strip().partition(" ")
    try:
        return int(quota) / int(period or "100000") if quota != "max" else None
    except (ValueError, ZeroDivisionError):
        return None


def v1_quota(text: str) -> float | None:
    try:
        quota = int(text.strip())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us", encoding="ascii") as handle:
            period = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def die_with(parent: int) -> None:
    """A worker ends when the run that started it does, even one killed with SIGKILL (which no
    handler sees): the kernel's parent-death signal on Linux, a watching thread elsewhere."""
    if sys.platform.startswith("linux"):
        import signal

        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:  # it died before the signal was set
            os._exit(1)
        return
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
