"""How to run a scan, in a module of its own: the command line reads it without loading the engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_FILE_SIZE = 2_000_000


@dataclass(frozen=True, slots=True)
class Options:
    """How to run a scan: parallelism, cache and limits."""

    jobs: int = 0  # 0: one process per core
    cache_dir: Path | None = None  # None: no cache
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    skip_minified: bool = True
    root: Path | None = None  # the project the link pass resolves modules in (default: the repository)
    verify: bool = False  # patch: parse each file's rewrite where the file is parsed, in parallel
