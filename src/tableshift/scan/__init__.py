"""Scanners: one module per language family, each turning source bytes into Calls."""

from __future__ import annotations

from collections.abc import Iterable

from tableshift.model import Edit, FileResult
from tableshift.scan import components  # no parser imported either: it asks the TypeScript scanner per block
from tableshift.scan.components import COMPONENTS
from tableshift.scan.sql import has_sql
from tableshift.scan.shared import PY_CANDIDATE, TS_CANDIDATE, generated_types, has_query_hit, type_hits  # no parser imported to skip a file


def _typescript():  # type: ignore[no-untyped-def]
    from tableshift.scan import typescript

    return typescript


def _python():  # type: ignore[no-untyped-def]
    # LibCST is imported only when a Python file needs it: TypeScript-only runs start faster.
    from tableshift.scan import python

    return python


def candidate_pattern(language: str):  # type: ignore[no-untyped-def]
    """The prefilter of a language: what a line must contain to hold a query call."""
    return PY_CANDIDATE if language == "python" else TS_CANDIDATE


def has_candidates(data: bytes, language: str) -> bool:
    """Cheap byte test: could this file hold a query call at all?"""
    if language == "python":
        return PY_CANDIDATE.search(data) is not None
    # the query calls first: most files that hold anything hold them. `Buffer.from(`, `Array.from(`:
    # the scanner would find the same receiver and drop the call
    if has_query_hit(data):
        return True
    # `in` is memchr-fast; the regex only runs on files that could match at all. Generated types
    # name every table but are regenerated, never scanned for references.
    if b"Tables" in data and type_hits(data) and not generated_types(data):
        return True
    if b"/rest/v1/" in data:
        return True
    return has_sql(data)  # the slowest test last


def scan_source(data: bytes, *, path: str, language: str, candidate: bool = False) -> FileResult:
    """Scan one file's bytes. Never raises: a failure is a FileResult with `error` set. A
    `candidate` is known to pass the prefilter (the first pass read the same bytes): not tested
    again."""
    if not candidate and not has_candidates(data, language):
        return FileResult(path=path, language=language, generated_types=language != "python" and generated_types(data))
    try:
        if language == "python":
            calls, parse_error = _python().scan(data, path=path)
        elif language in COMPONENTS:
            calls, parse_error = components.scan(data, path=path, language=language)
        else:
            calls, parse_error = _typescript().scan(data, path=path, language=language)
    except Exception as exc:  # a scanner bug or an undecodable file must not stop a scan of thousands of files
        return FileResult(path=path, language=language, error=f"{type(exc).__name__}: {exc}")
    generated = language != "python" and generated_types(data)
    return FileResult(path=path, language=language, calls=tuple(calls), parsed=True, parse_error=parse_error, generated_types=generated)


def error_count_edited(old: bytes, new: bytes, edits: Iterable[Edit], language: str) -> int:
    """`error_count(new)` for `old` with `edits` made: TypeScript and JavaScript files just scanned
    are parsed again incrementally, from their tree."""
    if language == "python" or language in COMPONENTS:
        return error_count(new, language)
    return _typescript().error_count_edited(old, new, edits, language=language)


def error_count(data: bytes, language: str) -> int:
    """Syntax errors in a file: a rewrite must never raise this number."""
    if language == "python":
        return _python().error_count(data)
    if language in COMPONENTS:
        return components.error_count(data, language=language)
    return _typescript().error_count(data, language=language)
