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
from tableshift.fsutil import replace_if_unchanged, writable_unchanged, write_atomic
from tableshift.patch import file_diff
from tableshift.report import coverage
from tableshift.report.coverage import Selection
from tableshift.report.escape import json_text, printable
from tableshift.rewrite import ConstantEdit, Fix, Plan, shared_binding
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


class Verified:
    """Syntax-error counts of rewritten files, remembered in the cache by the rewrite's digest:
    a second patch of the same tree parses nothing again."""

    def __init__(self, cache_dir: Path | None, rules: RuleSet) -> None:
        self.cache = None
        if cache_dir is not None:
            from tableshift.cache import Cache

            cache = Cache(cache_dir, rules_key="verified")
            self.cache = cache if cache.enabled else None

    def __call__(self, data: bytes, language: str) -> int:
        from tableshift.cache import dumps
        from tableshift.engine import digest
        from tableshift.scan import error_count

        if self.cache is None:
            return error_count(data, language)
        key = self.cache.key(f"\0verified:{language}", digest(data))
        known = self.cache.get(key)
        if isinstance(known, int):
            return known
        count = error_count(data, language)
        self.cache.put(key, dumps(count))
        return count

    def close(self) -> None:
        if self.cache is not None:
            self.cache.prune()  # writes what is new, marks what was used


def run(
    result: ScanResult, rules: RuleSet, chosen: Selection, *, split: bool, cache_dir: Path | None = None, compact: bool = False
) -> PatchOutcome:
    """Rewrite every file that has selected `auto` calls, and the modules defining the shared
    constants they move; build the coverage report."""
    picked = [[p for p in o.plans if p.fix is Fix.AUTO and chosen.why_not(p, rules) is None] for o in result.outcomes]
    kept = _whole_constants(picked, result.plans)
    torn = [p for before, after in zip(picked, kept) for p in before if p not in after]
    verified = Verified(cache_dir, rules)
    rewrites, by_group = _rewrite_all(result, rules, kept, split=split, errors=verified, compact=compact)
    # a module whose constants could not be edited takes its calls elsewhere with it: never half a move
    failed = {str(r.source.resolve()) for r in rewrites if r.refused is not None and _defines(r)}
    if failed:
        kept = [[p for p in plans if p.constant is None or p.constant.path not in failed] for plans in kept]
        again, by_group = _rewrite_all(result, rules, kept, split=split, errors=verified, compact=compact)
        refused = {r.path: r for r in rewrites if r.refused is not None and _defines(r)}
        rewrites = [refused.pop(r.path, r) for r in again] + list(refused.values())
    verified.close()
    all_plans = list(result.plans)
    rebuild = lambda done: coverage.build(all_plans, list(done), rules, chosen, split=torn)  # noqa: E731
    return PatchOutcome(tuple(rewrites), {g: tuple(r) for g, r in by_group.items()}, rebuild(rewrites), rebuild)


def _rewrite_all(
    result: ScanResult,
    rules: RuleSet,
    kept: list[list[Plan]],
    *,
    split: bool,
    errors: Callable[[bytes, str], int] | None = None,
    compact: bool = False,
) -> tuple[list[Rewrite], dict[str, list[Rewrite]]]:
    """Each file's rewrite; `compact`: only its diff is kept, not its bytes (memory follows the
    patch, not the tree), when nothing will be written in place."""

    def made(rewrite: Rewrite) -> Rewrite:
        if not compact or rewrite.refused is not None:
            return rewrite
        return dataclasses.replace(rewrite, old=b"", new=b"", diff=file_diff(rewrite.path, rewrite.old, rewrite.new))

    # the shared constants the kept calls move, by the module that defines them
    constants: dict[str, dict[ConstantEdit, list[Plan]]] = defaultdict(lambda: defaultdict(list))
    for plans in kept:
        for p in plans:
            if p.constant is not None:
                constants[p.constant.path][p.constant].append(p)
    rewrites: list[Rewrite] = []
    by_group: dict[str, list[Rewrite]] = defaultdict(list)
    for source, outcome, plans in zip(result.sources, result.outcomes, kept):
        defined = constants.pop(str(source.path.resolve()), {}) if constants else {}
        if not plans and not defined:
            continue
        served = [p for users in defined.values() for p in users]
        rewrites.append(made(rewrite_file(source, outcome, plans, list(defined), served, errors=errors)))
        if split:
            groups: dict[str, tuple[list[Plan], list[ConstantEdit], list[Plan]]] = defaultdict(lambda: ([], [], []))
            for p in plans:
                groups[_group_of(p, rules)][0].append(p)
            for edit, users in defined.items():
                group = _group_of(users[0], rules)
                groups[group][1].append(edit)
                groups[group][2].extend(users)
            for group, (mine, edits, users) in groups.items():
                by_group[group].append(made(rewrite_file(source, outcome, mine, edits, users, errors=errors)))
    return rewrites, by_group


def _defines(rewrite: Rewrite) -> bool:
    """Whether this rewrite edits shared constants that calls in other files rely on."""
    here = str(rewrite.source.resolve())
    return any(p.constant is not None and p.constant.path == here for p in rewrite.plans)


def sharing(p: Plan) -> object | None:
    """What a rewrite of this plan edits that other calls rely on too: a constant, in its file."""
    if p.fix is not Fix.AUTO:
        return None
    if p.constant is not None:
        return ("module", p.constant.path, p.constant.span.start)
    binding = shared_binding(p)
    return ("file", p.call.file, binding.start) if binding is not None else None


def _whole_constants(picked: list[list[Plan]], plans: Sequence[Plan]) -> list[list[Plan]]:
    """A shared constant is edited only with all its calls: drop the calls of one the selection split."""
    total: dict[object, int] = defaultdict(int)
    for p in plans:
        key = sharing(p)
        if key is not None:
            total[key] += 1
    chosen: dict[object, int] = defaultdict(int)
    for group in picked:
        for p in group:
            key = sharing(p)
            if key is not None:
                chosen[key] += 1
    return [[p for p in group if (key := sharing(p)) is None or chosen[key] == total[key]] for group in picked]


def _patch(rewrites: Sequence[Rewrite]) -> bytes:
    """A multi-file patch, files in path order, from each rewrite's diff (or its bytes)."""
    return b"".join(
        r.diff if r.diff is not None else file_diff(r.path, r.old, r.new) for r in sorted(rewrites, key=lambda r: r.path) if r.changed
    )


def emit(outcome: PatchOutcome, *, output: Path | None, split_dir: Path | None, apply: bool, err: Console, check: bool = False) -> int:
    """Print, write or apply; the summary goes to stderr. Returns the exit status.

    `check`: write nothing, list the files the patch would change, status 1 if there are any (a
    gate for "everything rewritable has been rewritten")."""
    status = 0
    if check:
        changed = sorted(r.path for r in outcome.rewrites if r.changed)
        for path in changed:
            sys.stdout.write(f"would rewrite {printable(path)}\n")
        status = 1 if changed else 0
    elif apply:
        status = _apply(outcome, err)
    elif split_dir is not None:
        try:
            split_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{split_dir}: cannot create directory: {exc.strerror}") from None
        for group, rewrites in sorted(outcome.by_group.items()):
            target = split_dir / f"{group}.patch"
            write_atomic(target, _patch(rewrites))
            err.print(f"wrote {printable(str(target))}", markup=False, highlight=False, soft_wrap=True)
    elif output is not None:
        write_atomic(output, _patch(outcome.rewrites))
        err.print(f"wrote {printable(str(output))}", markup=False, highlight=False, soft_wrap=True)
    else:
        sys.stdout.buffer.write(_patch(outcome.rewrites))
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
    failed: set[str] = set()  # modules whose shared constants were not written: their calls elsewhere wait
    # a shared constant and the files of the calls relying on it are written together or not at all:
    # each group is checked (writable, unchanged) before any of its files is written
    groups: dict[str, list[Rewrite]] = defaultdict(list)
    for rewrite in outcome.rewrites:
        for path in {p.constant.path for p in rewrite.plans if p.constant is not None}:
            groups[path].append(rewrite)
    held: dict[str, str] = {}  # rewrite path -> why its group waits
    for module, members in groups.items():
        for member in members:
            why = member.refused
            if why is None and member.changed and member.new != member.old:
                old_digest = digest(member.old)
                why = writable_unchanged(member.source, expected=lambda data, d=old_digest: digest(data) == d)
            if why is not None:
                for other in members:
                    if other.path != member.path:
                        held.setdefault(other.path, f"written only with {member.path}, which cannot be: {why}")
                failed.add(module)
                break
    # modules defining shared constants first: a call elsewhere is written only if its constant was
    for rewrite in sorted(outcome.rewrites, key=lambda r: not _defines(r)):
        why = rewrite.refused
        if why is None and rewrite.new == rewrite.old:
            continue
        if why is None and rewrite.path in held:
            why = held[rewrite.path]
        waiting = next((p.constant.file for p in rewrite.plans if p.constant is not None and p.constant.path in failed), None)
        if why is None and waiting is not None:
            why = f"a constant it relies on was not written ({waiting})"
        if why is None:
            old = digest(rewrite.old)
            why = replace_if_unchanged(rewrite.source, rewrite.new, expected=lambda data: digest(data) == old)
        if why is not None:
            err.print(f"skipped {printable(rewrite.path)}: {why}", markup=False, highlight=False, soft_wrap=True)
            if _defines(rewrite):
                failed.add(str(rewrite.source.resolve()))
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
