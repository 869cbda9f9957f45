"""Processes tableshift starts end with it, even when it is killed with SIGKILL (issue 18)."""

from __future__ import annotations

import pytest

from helpers import write_project


def _children(pid: int) -> list[int]:
    from pathlib import Path

    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def test_workers_die_with_a_run_killed_by_sigkill(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    files = {f"src/m{i}.ts": "".join(f"export const f{j} = () => supabase.from('content_metadata').select('id, status').eq('id', {j});\n" for j in range(40)) for i in range(3000)}
    root = write_project(tmp_path / "big", files)
    proc = subprocess.Popen([sys.executable, "-m", "tableshift", "audit", "src", "--no-cache", "--jobs", "2", "-f", "json"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    for _ in range(400):
        workers = _children(proc.pid)
        if len(workers) >= 2 or proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is not None or not workers:
        pytest.skip("the run ended before its workers could be seen")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for _ in range(100):
        alive = [w for w in workers if os.path.exists(f"/proc/{w}") and "(Z)" not in _state(w)]
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, f"workers outlived their run: {alive}"


def _state(pid: int) -> str:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "(Z)"
    return "(Z)" if state in ("Z", "X") else state
