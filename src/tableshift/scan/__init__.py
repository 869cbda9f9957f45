"""Scanners: one module per language family, each turning source bytes into Calls."""

from __future__ import annotations

from tableshift.model import FileResult
from tableshift.scan import typescript


def scan_source(data: bytes, *, path: str, language: str) -> FileResult:
    """Scan one file's bytes. Never raises: a failure is a FileResult with `error` set."""
    if not typescript.has_candidates(data):
        return FileResult(path=path, language=language)
    try:
        calls, parse_error = typescript.scan(data, path=path, language=language)
    except Exception as exc:  # a scanner bug must not stop a scan of thousands of files
        return FileResult(path=path, language=language, error=f"scanner failed: {type(exc).__name__}: {exc}")
    return FileResult(path=path, language=language, calls=tuple(calls), parsed=True, parse_error=parse_error)


def error_count(data: bytes, language: str) -> int:
    """Syntax error and missing nodes in a file: a rewrite must never raise this number."""
    return typescript.error_count(data, language=language)
