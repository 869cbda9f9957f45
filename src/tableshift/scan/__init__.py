"""Scanners: one module per language family, each turning source bytes into Calls."""

from __future__ import annotations

from tableshift.model import FileResult
from tableshift.scan import typescript


def _python():  # type: ignore[no-untyped-def]
    # LibCST is imported only when a Python file needs it: TypeScript-only runs start faster.
    from tableshift.scan import python

    return python


def has_candidates(data: bytes, language: str) -> bool:
    """Cheap byte test: could this file hold a query call at all?"""
    if language == "python":
        return _python().has_candidates(data)
    return typescript.has_candidates(data)


def scan_source(data: bytes, *, path: str, language: str) -> FileResult:
    """Scan one file's bytes. Never raises: a failure is a FileResult with `error` set."""
    if not has_candidates(data, language):
        return FileResult(path=path, language=language)
    try:
        if language == "python":
            calls, parse_error = _python().scan(data, path=path)
        else:
            calls, parse_error = typescript.scan(data, path=path, language=language)
    except Exception as exc:  # a scanner bug or an undecodable file must not stop a scan of thousands of files
        return FileResult(path=path, language=language, error=f"{type(exc).__name__}: {exc}")
    return FileResult(path=path, language=language, calls=tuple(calls), parsed=True, parse_error=parse_error)


def error_count(data: bytes, language: str) -> int:
    """Syntax errors in a file: a rewrite must never raise this number."""
    if language == "python":
        return _python().error_count(data)
    return typescript.error_count(data, language=language)
