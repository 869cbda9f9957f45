"""One file in, one outcome out: read, scan, classify, plan. Never raises for a single file."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tableshift.classify import classify
from tableshift.discover import SourceFile
from tableshift.model import FileResult, Verdict
from tableshift.patch import OverlappingEdits, apply_edits
from tableshift.rewrite import Plan, plan
from tableshift.rules import RuleSet
from tableshift.scan import error_count, scan_source


@dataclass(frozen=True, slots=True)
class FileOutcome:
    result: FileResult
    verdicts: tuple[Verdict, ...]
    plans: tuple[Plan, ...]  # one per verdict when rules were given, else none
    digest: str  # of the bytes scanned, to detect a file that changed before --apply


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Every file's outcome, in file order; the same for audit, patch and check."""

    outcomes: tuple[FileOutcome, ...]
    sources: tuple[SourceFile, ...] = ()

    @property
    def files(self) -> tuple[FileResult, ...]:
        return tuple(o.result for o in self.outcomes)

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        return tuple(v for o in self.outcomes for v in o.verdicts)

    @property
    def plans(self) -> tuple[Plan, ...]:
        return tuple(p for o in self.outcomes for p in o.plans)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scan_file(source: SourceFile, rules: RuleSet | None) -> FileOutcome:
    try:
        data = source.path.read_bytes()
    except OSError as exc:
        failed = FileResult(path=source.display, language=source.language, error=f"cannot read: {exc.strerror}")
        return FileOutcome(failed, (), (), "")
    result = scan_source(data, path=source.display, language=source.language)
    verdicts = tuple(classify(call, rules) for call in result.calls)
    plans = tuple(plan(v, rules, data) for v in verdicts) if rules is not None else ()
    return FileOutcome(result, verdicts, plans, digest(data))


def run(
    sources: Iterable[SourceFile],
    rules: RuleSet | None,
    *,
    on_file: Callable[[FileResult], None] | None = None,
) -> ScanResult:
    """Scan every file and classify every call with the same rules, so all commands agree."""
    sources = tuple(sources)
    outcomes = []
    for source in sources:
        outcome = scan_file(source, rules)
        outcomes.append(outcome)
        if on_file is not None:
            on_file(outcome.result)
    return ScanResult(tuple(outcomes), sources)


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One file's rewrite: the new bytes, or why the file was refused."""

    path: str
    source: Path
    old: bytes
    new: bytes
    plans: tuple[Plan, ...]
    refused: str | None = None


def rewrite_file(source: SourceFile, outcome: FileOutcome, chosen: Sequence[Plan]) -> Rewrite:
    """Apply the chosen plans' edits; refuse the file if it changed or would parse worse."""
    path = source.display
    try:
        old = source.path.read_bytes()
    except OSError as exc:
        return Rewrite(path, source.path, b"", b"", tuple(chosen), f"cannot read: {exc.strerror}")
    if digest(old) != outcome.digest:
        return Rewrite(path, source.path, old, old, tuple(chosen), "file changed since it was scanned")
    try:
        new = apply_edits(old, (e for p in chosen for e in p.edits))
    except OverlappingEdits as exc:
        return Rewrite(path, source.path, old, old, tuple(chosen), f"edits overlap: {exc}")
    if error_count(new, source.language) > error_count(old, source.language):
        return Rewrite(path, source.path, old, old, tuple(chosen), "the rewritten file would not parse as well as the original")
    return Rewrite(path, source.path, old, new, tuple(chosen))
