"""The baseline and check commands' work past the scan: usage, the ratchet, the comparison."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tableshift import baseline as bl
from tableshift.engine import FileOutcome, ScanResult
from tableshift.model import Status
from tableshift.fsutil import write_atomic
from tableshift.report import check as check_report
from tableshift.rules import RuleSet


@dataclass(frozen=True, slots=True)
class GateResult:
    data: dict
    comparison: bl.Comparison
    exit_status: int


def _can_judge(f) -> bool:  # type: ignore[no-untyped-def]
    # a file with syntax errors is judged on what the error-tolerant parse found (Python too:
    # tree-sitter takes the files LibCST cannot), its calls flagged; skipped or unread ones are not
    return not (f.skipped or f.error)


def write_baseline(
    result: ScanResult | Iterable[FileOutcome], rules: RuleSet, path: Path, *, update: bool, cwd: Path
) -> tuple[bl.Baseline, bl.Baseline | None]:
    """Write a baseline from scratch, or (update) lower the existing one to today's usage. The
    outcomes may stream: each file's uses are kept as the baseline records them, not its calls."""
    base = path.parent
    old = bl.load(path, rules) if update else None
    items: list[bl.Mark] = []
    judged: set[str] = set()
    for outcome in result.outcomes if isinstance(result, ScanResult) else result:
        items.extend(bl.marks(outcome.plans, cwd=cwd, base=base))
        if _can_judge(outcome.result):
            judged.add(bl.file_key(outcome.result.path, cwd=cwd, base=base))
    new = bl.ratchet(old, items, judged=lambda key: key in judged or not (base / key).exists()) if old is not None else bl.build(items, rules)
    write_atomic(path, bl.dump(new))
    return new, old


def run_check(
    result: ScanResult | Iterable[FileOutcome], rules: RuleSet, path: Path, *, strict: bool, cwd: Path, baseline: bl.Baseline | None = None
) -> GateResult:
    """The gate. `result` may be the outcomes as they stream: each file is compared with its
    allowances as it comes, and only what will be reported is kept."""
    base = path.parent.resolve()
    baseline = baseline if baseline is not None else bl.load(path, rules)
    comparer = bl.Comparer(baseline, exists=lambda key: _exists(base / key))
    files = []
    for outcome in result.outcomes if isinstance(result, ScanResult) else result:
        files.append(outcome.result)
        relevant = [p for p in outcome.plans if p.verdict.status in (Status.LEGACY, Status.DYNAMIC)]
        if relevant:
            comparer.add(bl.uses(relevant, cwd=cwd, base=base), relevant)
    scanned = {bl.file_key(f.path, cwd=cwd, base=base) for f in files if _can_judge(f)}
    comparison = comparer.finish(scanned)
    display = lambda key: Path(os.path.relpath(base / key, cwd)).as_posix()  # noqa: E731
    data = check_report.build(comparison, rules, strict=strict, files_scanned=len(files), display=display)
    unjudged = [f for f in files if not _can_judge(f)]
    data["not_checked"] = [{"file": f.path, "reason": _why_not(f), "may_hold_calls": _may_hold_calls(f)} for f in unjudged]
    # fail closed: a file the gate could not read that may hold a query call is a finding
    data["unchecked"] = [
        {"file": f.path, "level": "error", "message": check_report.unchecked_message(_why_not(f))}
        for f in unjudged
        if _may_hold_calls(f)
    ]
    summary = data["summary"]
    summary["not_checked"] = len(data["not_checked"])
    summary["unchecked"] = len(data["unchecked"])
    summary["passed"] = summary["passed"] and not data["unchecked"]
    return GateResult(data, comparison, 0 if summary["passed"] else 1)


def _exists(path: Path) -> bool:
    """Whether a file of the baseline that was not scanned still exists (seen by the run memo)."""
    from tableshift.memo import saw

    saw(path)
    return path.exists()


def _why_not(f) -> str:  # type: ignore[no-untyped-def]
    return f.skipped or f.error or "not scanned"


def _may_hold_calls(f) -> bool:  # type: ignore[no-untyped-def]
    """Skipped files were prefiltered; an unreadable file cannot be, so it may."""
    return f.candidates or f.error is not None
