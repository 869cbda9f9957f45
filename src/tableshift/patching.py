"""The patch command's work past the scan: choose plans, rewrite files, write patches or files."""

from __future__ import annotations

import dataclasses
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from tableshift.engine import Rewrite, ScanResult, rewrite_file
from tableshift.errors import UsageError
from tableshift.fsutil import replace_if_unchanged, write_atomic
from tableshift.patch import patch_of
from tableshift.report import coverage
from tableshift.report.coverage import Selection
from tableshift.report.escape import json_text, printable
from tableshift.rewrite import Fix, Plan, shared_binding
from tableshift.rules import RuleSet


@dataclass(slots=True)
class PatchOutcome:
    rewrites: tuple[Rewrite, ...]
    by_group: dict[str, tuple[Rewrite, ...]]
    report: dict[str, Any]
    # the report again for other rewrites: after --apply, for what was really written
    rebuild: Callable[[Sequence[Rewrite]], dict[str, Any]]


def selection(rules: RuleSet, *, only: str | None, tables: Sequence[str], groups: Sequence[str]) -> Selection:
    """Validate --table / --group against the rules, so a typo is an error, not an empty patch."""
    legacy = {r.legacy for r in rules.tables}
    for name in tables:
        if name not in legacy:
            raise UsageError(f"--table {name}: not a legacy table in {rules.path} (known: {', '.join(sorted(legacy))})")
    for name in groups:
        if name not in rules.groups:
            raise UsageError(f"--group {name}: not a group in {rules.path} (known: {', '.join(rules.groups)})")
    return Selection(only=only, tables=frozenset(tables), groups=frozenset(groups))


def _group_of(plan: Plan, rules: RuleSet) -> str:
    for table in plan.verdict.legacy_tables:
        rule = rules.lookup(table)
        if rule is not None:
            return rule.group
    return "other"


def run(result: ScanResult, rules: RuleSet, chosen: Selection, *, split: bool) -> PatchOutcome:
    """Rewrite every file that has selected `auto` calls; build the coverage report."""
    sources = {s.display: s for s in result.sources}
    rewrites: list[Rewrite] = []
    by_group: dict[str, list[Rewrite]] = defaultdict(list)
    torn: list[Plan] = []  # left out because the selection splits the constant they share
    for outcome in result.outcomes:
        picked = [p for p in outcome.plans if p.fix is Fix.AUTO and chosen.why_not(p, rules) is None]
        kept = _whole_constants(picked, outcome.plans)
        torn.extend(p for p in picked if p not in kept)
        picked = kept
        if not picked:
            continue
        source = sources[outcome.result.path]
        rewrites.append(rewrite_file(source, outcome, picked))
        if split:
            groups: dict[str, list[Plan]] = defaultdict(list)
            for p in picked:
                groups[_group_of(p, rules)].append(p)
            for group, plans in groups.items():
                by_group[group].append(rewrite_file(source, outcome, plans))
    plans = list(result.plans)
    rebuild = lambda done: coverage.build(plans, list(done), rules, chosen, split=torn)  # noqa: E731
    return PatchOutcome(tuple(rewrites), {g: tuple(r) for g, r in by_group.items()}, rebuild(rewrites), rebuild)


def _whole_constants(picked: list[Plan], plans: Sequence[Plan]) -> list[Plan]:
    """A shared constant is edited only with all its calls: drop a group the selection split."""
    by_binding: dict[object, int] = {}
    for p in plans:
        binding = shared_binding(p)
        if binding is not None:
            by_binding[binding] = by_binding.get(binding, 0) + 1
    chosen: dict[object, int] = {}
    for p in picked:
        binding = shared_binding(p)
        if binding is not None:
            chosen[binding] = chosen.get(binding, 0) + 1
    return [p for p in picked if shared_binding(p) is None or chosen[shared_binding(p)] == by_binding[shared_binding(p)]]


def _changes(rewrites: Sequence[Rewrite]) -> list[tuple[str, bytes, bytes]]:
    return [(r.path, r.old, r.new) for r in rewrites if r.refused is None and r.new != r.old]


def emit(outcome: PatchOutcome, *, output: Path | None, split_dir: Path | None, apply: bool, err: Console) -> int:
    """Print, write or apply; the summary goes to stderr. Returns the exit status."""
    status = 0
    if apply:
        status = _apply(outcome, err)
    elif split_dir is not None:
        try:
            split_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{split_dir}: cannot create directory: {exc.strerror}") from None
        for group, rewrites in sorted(outcome.by_group.items()):
            target = split_dir / f"{group}.patch"
            write_atomic(target, patch_of(_changes(rewrites)))
            err.print(f"wrote {printable(str(target))}", markup=False, highlight=False, soft_wrap=True)
    elif output is not None:
        write_atomic(output, patch_of(_changes(outcome.rewrites)))
    else:
        sys.stdout.buffer.write(patch_of(_changes(outcome.rewrites)))
        sys.stdout.flush()
    for line in coverage.summary_lines(outcome.report):
        err.print(line, highlight=False, markup=False, soft_wrap=True)
    return status


def _apply(outcome: PatchOutcome, err: Console) -> int:
    """Write each changed file under its folder's lock, if it is still what was scanned; skip, never half-write.

    The summary then counts what was written, not what was planned.
    """
    from tableshift.engine import digest

    status = 0
    done: list[Rewrite] = []
    for rewrite in outcome.rewrites:
        why = rewrite.refused
        if why is None and rewrite.new == rewrite.old:
            continue
        if why is None:
            old = digest(rewrite.old)
            why = replace_if_unchanged(rewrite.source, rewrite.new, expected=lambda data: digest(data) == old)
        if why is not None:
            err.print(f"skipped {printable(rewrite.path)}: {why}", markup=False, highlight=False, soft_wrap=True)
            done.append(dataclasses.replace(rewrite, new=rewrite.old, refused=why))
            status = 1
            continue
        done.append(rewrite)
        err.print(f"rewrote {printable(rewrite.path)}", markup=False, highlight=False, soft_wrap=True)
    outcome.report = outcome.rebuild(done)
    return status


def write_report(outcome: PatchOutcome, path: Path | None) -> None:
    if path is None:
        return
    if path.suffix.lower() == ".json":
        text = json_text(outcome.report)
    else:
        text = coverage.to_markdown(outcome.report)
    write_atomic(path, text.encode("utf-8"))
