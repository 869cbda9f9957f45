"""Project configuration: `tableshift.toml` or `[tool.tableshift]` in pyproject.toml, found by walking up."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tableshift.errors import UsageError
from tableshift.rules import read_toml

CONFIG_NAME = "tableshift.toml"
DEFAULT_BASELINE = "tableshift-baseline.json"
_KEYS = {"rules", "baseline", "paths", "include", "exclude", "strict", "legacy_schema"}


@dataclass(frozen=True, slots=True)
class Config:
    """Settings from a config file, paths already made absolute against its directory."""

    source: Path | None = None
    root: Path | None = None
    rules: Path | None = None
    baseline: Path | None = None
    paths: tuple[Path, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    strict: bool = False
    legacy_schema: Path | None = None  # the legacy schema (DDL or migrations folder): rpc calls of functions using legacy tables count


def find_config(start: Path) -> Path | None:
    """The nearest tableshift.toml, or pyproject.toml with a [tool.tableshift] table, at or above `start`."""
    for folder in (start, *start.parents):
        own = folder / CONFIG_NAME
        if own.is_file():
            return own
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _mentions_tool(pyproject):
            return pyproject  # loading it reports a broken file instead of hiding it
        if (folder / ".git").exists():
            return None  # the repository root: a config above it belongs to something else
    return None


def _mentions_tool(pyproject: Path) -> bool:
    try:
        return "[tool.tableshift]" in pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _tool_table(pyproject: Path) -> dict[str, Any] | None:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError, ValueError):
        return None
    tool = data.get("tool", {})
    table = tool.get("tableshift") if isinstance(tool, dict) else None
    return table if isinstance(table, dict) else None


def load_config(explicit: Path | None, *, cwd: Path) -> Config:
    """The config named by --config, else the nearest one, else defaults."""
    path = explicit if explicit is not None else find_config(cwd)
    if path is None:
        return Config()
    from tableshift.fsutil import read_input

    try:
        raw = read_input(path, "config file")
    except FileNotFoundError:
        raise UsageError(f"{path}: config file not found") from None
    data = read_toml(raw, str(path), what="config file")
    prefix = ""
    if path.name == "pyproject.toml":
        table = _tool_table(path)
        if table is None:
            raise UsageError(f"{path}: no [tool.tableshift] table")
        data, prefix = table, "tool.tableshift."
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise UsageError(f"{path}: {prefix}{unknown[0]}: unknown key (expected one of: {', '.join(sorted(_KEYS))})")
    base = path.parent.resolve()

    def one_path(key: str) -> Path | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise UsageError(f"{path}: {prefix}{key}: must be a path string")
        return base / value

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{path}: {prefix}{key}: must be a list of strings")
        return tuple(value)

    strict = data.get("strict", False)
    if not isinstance(strict, bool):
        raise UsageError(f"{path}: {prefix}strict: must be true or false")
    return Config(
        source=path,
        root=base,
        rules=one_path("rules"),
        baseline=one_path("baseline"),
        paths=tuple(base / p for p in strings("paths")),
        include=strings("include"),
        exclude=strings("exclude"),
        strict=strict,
        legacy_schema=one_path("legacy_schema"),
    )
