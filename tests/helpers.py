"""Helpers for tests: run the CLI in a subprocess, the way users run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path | str | None = None) -> subprocess.CompletedProcess[str]:
    """Run tableshift; stdout and stderr as text (line endings normalised)."""
    return subprocess.run([sys.executable, "-m", "tableshift", *args], capture_output=True, text=True, cwd=cwd)


def run_cli_bytes(*args: str, cwd: Path | str | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run tableshift; stdout as the exact bytes written (patches keep their CRLF)."""
    return subprocess.run([sys.executable, "-m", "tableshift", *args], capture_output=True, cwd=cwd)


def write_project(root: Path, files: dict[str, str], *, add: bool = False) -> Path:
    """A git repository of `files` (relative path -> text); `add`: also staged."""
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    if add:
        subprocess.run(["git", "add", "."], cwd=root, check=True)
    return root


def run_in_process(*args: str) -> int:
    """Run tableshift in this process (faster than a subprocess; monkeypatches reach it); its exit
    status. The global flags (-v) it sets last for the process: they are put back after."""
    from tableshift import cli

    argv, ui = sys.argv, dict(cli._UI)
    sys.argv = ["tableshift", *args]
    try:
        cli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = argv
        cli._UI.update(ui)
    return 0
