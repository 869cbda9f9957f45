"""One file in, one outcome out: read, scan, classify. Never raises for a single file."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tableshift.classify import classify
from tableshift.discover import SourceFile
from tableshift.model import FileResult, Verdict
from tableshift.rules import RuleSet
from tableshift.scan import scan_source


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Every file's outcome and every call's verdict, in file order."""

    files: tuple[FileResult, ...]
    verdicts: tuple[Verdict, ...]


def scan_file(source: SourceFile) -> FileResult:
    try:
        data = source.path.read_bytes()
    except OSError as exc:
        return FileResult(path=source.display, language=source.language, error=f"cannot read: {exc.strerror}")
    return scan_source(data, path=source.display, language=source.language)


def run(
    sources: Iterable[SourceFile],
    rules: RuleSet | None,
    *,
    on_file: Callable[[FileResult], None] | None = None,
) -> ScanResult:
    """Scan every file and classify every call with the same rules, so all commands agree."""
    files: list[FileResult] = []
    verdicts: list[Verdict] = []
    for source in sources:
        result = scan_file(source)
        files.append(result)
        verdicts.extend(classify(call, rules) for call in result.calls)
        if on_file is not None:
            on_file(result)
    return ScanResult(tuple(files), tuple(verdicts))
