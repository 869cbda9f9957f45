"""The patch command's work past the scan: choose plans, rewrite files, write patches or files.

Streamed like the audit (see `_Patcher`): memory follows the constants shared across files, not
the tree; diffs and the report's long lists are spilled to temporary files."""

from __future__ import annotations

import dataclasses
import json
import pickle
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from tableshift.discover import SourceFile
from tableshift.cache import dumps
from tableshift.engine import FileOutcome, Rewrite, ScanResult, Settled, Slim, rewrite_file, unslim
from tableshift.errors import UsageError
from tableshift.fsutil import atomic_writer, replace_if_unchanged, writable_unchanged
from tableshift.patch import file_diff
from tableshift.report import coverage, render
from tableshift.report.coverage import CoverageBuilder, Selection
from tableshift.report.escape import printable
from tableshift.report.render import Entries, EntryLines, Ordered
from tableshift.rewrite import ConstantEdit, Fix, Plan, shared_binding
from tableshift.rules import RuleSet


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


PlanKey = tuple[str, int, int]


def _key(p: Plan) -> PlanKey:
    return (p.call.file, p.call.span.start, p.call.span.end)


@dataclass(slots=True)
class PatchOutcome:
    report: dict[str, Any]  # its long lists are `Entries`: `coverage.data(report)` for plain lists
    patch: Ordered | None  # every changed file's diff, in path order (unless --apply or --check)
    groups: dict[str, Ordered]  # --split-dir: each group's patch
    changed: list[str]  # the files changed (or, with --check, that would be)
    status: int  # 1 when --apply skipped a file
    applied: bool
    rewrites: list[Rewrite]  # each file's rewrite, in order: only when asked to keep them (tests)

    @property
    def data(self) -> dict[str, Any]:
        return coverage.data(self.report)


class Lines(Protocol):
    """Where the summary lines go: each `print` is one plain line (the command line's writes it to
    stderr as is, without loading rich, and none with -q)."""

    def print(self, line: str, **options: Any) -> None: ...


class _Stderr:
    """`Lines` for a caller that gives none: plain lines on stderr."""

    def print(self, line: str, **options: Any) -> None:
        sys.stderr.write(line + "\n")


def run(
    scanned: ScanResult | tuple[Sequence[SourceFile], Iterable[FileOutcome | bytes], Settled],
    rules: RuleSet,
    chosen: Selection,
    *,
    split: bool = False,
    cache_dir: Path | None = None,
    apply: bool = False,
    diffs: bool = True,
    keep: bool = False,
    err: Lines | None = None,
) -> PatchOutcome:
    """Rewrite every file that has selected `auto` calls, and the modules defining the shared
    constants they move, as the files stream by; build the coverage report the same way.

    `scanned`: a whole scan, or the files, their outcomes (or `PatchPart`s) as they stream, and
    what the link pass settled (the modules whose constants are edited: known before the first
    outcome comes).
    `apply`: write each file in place (its summary line to `err`) instead of keeping its diff;
    `diffs`: keep the whole patch (off for --check); `split`: one patch per rules group; `keep`:
    also return every rewrite whole (tests)."""
    if isinstance(scanned, ScanResult):
        sources, outcomes = scanned.sources, iter(scanned.outcomes)
        settled = Settled(frozenset((p.constant.file, p.constant.path) for p in scanned.plans if p.constant is not None))
    else:
        sources, outcomes, settled = scanned
    patcher = _Patcher(sources, rules, chosen, split=split, cache_dir=cache_dir, apply=apply, diffs=diffs and not apply, keep=keep, err=err)
    return patcher.run(outcomes, settled)


class PatchPart:
    """The patch's product of a file's outcome (`engine.Product`): what `_Patcher` does with the
    file on its own (its rewrite's diffs, its calls' coverage), made where the file is scanned, and
    its slim outcome, for the rare file found to define a constant that others rely on (then
    rewritten with them, at the end). Only for a patch printed or checked: --apply writes in this
    process. Files relying on such a constant, or linked, never come as products."""

    def __init__(self, rules: RuleSet, chosen: Selection, *, split: bool) -> None:
        self.rules = rules
        self.chosen = chosen
        self.split = split
        # what else a part depends on (the rules are in every cache key already)
        self.name = "patch-part:1:" + json.dumps([split, chosen.describe()], sort_keys=True)

    def __call__(self, outcome: FileOutcome, source: SourceFile) -> bytes | None:
        """The part; None when the file, read again to be rewritten, was not what was scanned (or
        could not be read): that refusal is this moment's, never kept with the scanned bytes."""
        slim = Slim.of(outcome)
        patcher = _Patcher((source,), self.rules, self.chosen, split=self.split, cache_dir=None, apply=False, diffs=False, keep=False, err=None, part=True)
        kept, torn = patcher._kept(slim)
        whole, groups = patcher._on_its_own(0, slim, kept)
        if any(rewrite.stale for rewrite in (whole, *groups.values()) if rewrite is not None):
            return None
        patcher._cover(0, slim, whole, torn)
        # with --split-dir only the groups' diffs are printed
        return dumps((Slim.pack(slim), patcher.coverage._state(), *_diffs(whole, groups, whole_diff=not self.split)))


class _Patcher:
    """One pass over the scan, in path order. A file is rewritten (and written, or its diff
    spilled) and its calls counted into the coverage report as it comes, unless its fate depends
    on other files: a module defining a shared constant being moved, or a file with calls relying
    on one. Those few are held until the end; their constants' calls are counted as they pass,
    then each module and the files relying on it are rewritten (and, with --apply, written)
    together, and put back in their place in the patch and the report. Memory follows the
    constants shared across files, not the tree."""

    def __init__(
        self,
        sources: Sequence[SourceFile],
        rules: RuleSet,
        chosen: Selection,
        *,
        split: bool,
        cache_dir: Path | None,
        apply: bool,
        diffs: bool,
        keep: bool,
        err: Lines | None,
        part: bool = False,
    ) -> None:
        self.sources = sources
        self.rules = rules
        self.chosen = chosen
        self.split = split
        self.keep = keep
        self.verified = Verified(cache_dir, rules)
        self.held: dict[int, FileOutcome] = {}  # files whose fate depends on others
        self.total: Counter[object] = Counter()  # calls per constant shared across modules
        self.picked: Counter[object] = Counter()  # ... of them selected
        self.users: list[Plan] = []  # selected calls through such a constant
        self.failed: set[str] = set()  # modules whose constants could not be edited
        self.done: set[PlanKey] = set()  # calls changed, or held, by the rewrites of the held files
        self.refused: set[PlanKey] = set()
        self.writer = _Writer(err or _Stderr()) if apply else None
        self.out = _Output(diffs=diffs, split=split)
        self.coverage = CoverageBuilder(rules, chosen, entries=EntryLines if part else Entries)
        self.rewrites: list[tuple[int, Rewrite]] = []
        self.where = _Where(sources)

    def run(self, outcomes: Iterable[FileOutcome | bytes], settled: Settled) -> PatchOutcome:
        count = 0
        modules: set[int] = set()  # the files defining shared constants being moved
        for index, item in enumerate(outcomes):
            if index == 0:
                assert settled.modules is not None, "the link pass settles shared constants before the first outcome"
                # named as the link pass shows them, which need not be as discovery does (a path
                # outside the current folder, a link): matched by resolved path where they differ
                modules = {i for file, path in settled.modules if (i := self.where.index(file, path)) is not None}
            count += 1
            if isinstance(item, bytes):  # its part (`PatchPart`): made on its own, which it is unless it defines a moved constant
                assert self.writer is None and not self.keep, "parts only for a patch printed or checked"
                slim, state, changed, diff, groups = pickle.loads(item)
                if index not in modules:
                    self.coverage.merge(state, index)
                    self.out.merge(index, changed, diff, groups)
                    continue
                item = unslim(slim)
            outcome = item
            relies = False
            for p in outcome.plans:
                if p.constant is None:
                    continue
                relies = True
                key = sharing(p)
                if key is None:
                    continue
                self.total[key] += 1
                if self._selected(p):
                    self.picked[key] += 1
                    self.users.append(p)
            if relies or index in modules:
                self.held[index] = outcome
                continue
            kept, torn = self._kept(outcome)
            whole, groups = self._on_its_own(index, outcome, kept)
            self._account(index, outcome, whole, groups, torn)
        assert count == len(self.sources), "one outcome per file"
        first = self._constants()
        for index, outcome in sorted(self.held.items()):
            kept, torn = self._kept(outcome)
            # held, but none of its calls may move through a constant after all
            whole, groups = first.pop(index) if index in first else self._on_its_own(index, outcome, kept)
            self._account(index, outcome, whole, groups, torn, late=True)
        self.held.clear()
        self.verified.close()
        return PatchOutcome(
            self.coverage.report(),
            self.out.patch,
            self.out.groups,
            [path for _, path in sorted(self.out.changed)],
            self.writer.status if self.writer is not None else 0,
            self.writer is not None,
            [rewrite for _, rewrite in sorted(self.rewrites, key=lambda r: r[0])],
        )

    def _on_its_own(self, index: int, outcome: FileOutcome, kept: list[Plan]) -> tuple[Rewrite | None, dict[str, Rewrite]]:
        """A file that no other file's rewrite waits for: rewritten, and with --apply written."""
        if not kept:
            return None, {}
        whole, groups = self._rewrite(self.sources[index], outcome, kept)
        return (self.writer.write(whole) if self.writer is not None else whole), groups

    def _account(
        self, index: int, outcome: FileOutcome, whole: Rewrite | None, groups: dict[str, Rewrite], torn: list[Plan], *, late: bool = False
    ) -> None:
        """A file's rewrite into the patch, and its calls into the coverage report, in its place."""
        self._cover(index, outcome, whole, torn, late=late)
        self.out.add(index, whole, groups, late=late)
        if self.keep and whole is not None:
            self.rewrites.append((index, whole))

    def _cover(self, index: int, outcome: FileOutcome, whole: Rewrite | None, torn: list[Plan], *, late: bool = False) -> None:
        """A file's calls into the coverage report, in its place."""
        if outcome.result.generated_types:
            self.coverage.generated_types.append((index, outcome.result.path))
        changed = {_key(p) for p in whole.plans} if whole is not None and whole.changed else set()
        refused = {_key(p) for p in whole.plans} if whole is not None and whole.refused is not None else set()
        self.coverage.add(
            outcome.plans,
            rewrite=whole,
            done=lambda p: (k := _key(p)) in changed or k in self.done,
            refused=lambda p: (k := _key(p)) in refused or k in self.refused,
            torn=torn,
            at=index,
            late=late,
        )

    def _selected(self, p: Plan) -> bool:
        return p.fix is Fix.AUTO and self.chosen.why_not(p, self.rules) is None

    def _kept(self, outcome: FileOutcome) -> tuple[list[Plan], list[Plan]]:
        """A file's selected calls to rewrite, and those dropped because the selection split a
        constant they share (it is edited only with all its calls)."""
        picked = [p for p in outcome.plans if self._selected(p)]
        if not picked:
            return [], []
        total, chosen = self.total, self.picked
        if any(p.constant is None and shared_binding(p) is not None for p in outcome.plans):
            # a constant of this file: all its calls are here
            total = total + Counter(k for p in outcome.plans if p.constant is None and (k := sharing(p)) is not None)
            chosen = chosen + Counter(k for p in picked if p.constant is None and (k := sharing(p)) is not None)
        kept: list[Plan] = []
        torn: list[Plan] = []
        for p in picked:
            key = sharing(p)
            (torn if key is not None and chosen[key] != total[key] else kept).append(p)
        return [p for p in kept if p.constant is None or p.constant.path not in self.failed], torn

    def _rewrite(
        self, source: SourceFile, outcome: FileOutcome, plans: list[Plan], defined: dict[ConstantEdit, list[Plan]] | None = None
    ) -> tuple[Rewrite, dict[str, Rewrite]]:
        """A file's rewrite, and with --split-dir one per rules group; `defined`: the shared
        constants this module defines, with the calls elsewhere relying on them."""
        defined = defined or {}
        served = [p for users in defined.values() for p in users]
        whole = rewrite_file(source, outcome, plans, list(defined), served, errors=self.verified)
        groups: dict[str, Rewrite] = {}
        if self.split:
            parts: dict[str, tuple[list[Plan], list[ConstantEdit], list[Plan]]] = defaultdict(lambda: ([], [], []))
            for p in plans:
                parts[_group_of(p, self.rules)][0].append(p)
            for edit, users in defined.items():
                group = _group_of(users[0], self.rules)
                parts[group][1].append(edit)
                parts[group][2].extend(users)
            for group, (mine, edits, users) in parts.items():
                groups[group] = self._compact(rewrite_file(source, outcome, mine, edits, users, errors=self.verified))
        return whole, groups

    def _compact(self, rewrite: Rewrite) -> Rewrite:
        """Only the diff of a rewrite held for later, not its bytes."""
        if self.keep or rewrite.refused is not None:
            return rewrite
        return dataclasses.replace(rewrite, old=b"", new=b"", diff=file_diff(rewrite.path, rewrite.old, rewrite.new))

    def _constants(self) -> dict[int, tuple[Rewrite, dict[str, Rewrite]]]:
        """The modules defining the shared constants being moved and the files relying on them,
        rewritten first, together: a module whose constants cannot be edited takes its calls
        elsewhere with it (never half a move); with --apply, each group is written whole or not."""
        users = [p for p in self.users if self.picked[key := sharing(p)] == self.total[key]]
        if not users:
            return {}
        where = self.where
        defined: dict[int, dict[ConstantEdit, list[Plan]]] = defaultdict(lambda: defaultdict(list))
        for p in users:
            assert p.constant is not None
            module = where.index(p.constant.file, p.constant.path)
            if module is None or module not in self.held:  # not among the scanned files: never edited
                self.failed.add(p.constant.path)
            else:
                defined[module][p.constant].append(p)
        members = {i for p in users if (i := where.index(p.call.file)) is not None and i in self.held} - set(defined)

        def rewrite(index: int, constants: dict[ConstantEdit, list[Plan]] | None = None) -> tuple[Rewrite, dict[str, Rewrite]]:
            outcome = self.held[index]
            return self._rewrite(self.sources[index], outcome, self._kept(outcome)[0], constants)

        results = {index: rewrite(index, defined[index]) for index in sorted(defined)}
        refused = {index for index, (whole, _) in results.items() if whole.refused is not None}
        self.failed |= {next(iter(defined[index])).path for index in refused}
        if refused:  # their calls elsewhere are left out: the other modules again without them (one may hold such calls)
            for index in sorted(defined):
                if index not in refused:
                    results[index] = rewrite(index, defined[index])
                elif self.split:  # its groups as they stand without its constants: none carries an edit of them
                    results[index] = (results[index][0], rewrite(index)[1])
        for index in sorted(members):
            results[index] = rewrite(index)
        if self.writer is not None:
            written = self.writer.together({index: whole for index, (whole, _) in results.items()})
            results = {index: (written[index], groups) for index, (_, groups) in results.items()}
        for whole, _ in results.values():
            if whole.changed:
                self.done.update(_key(p) for p in whole.plans)
            if whole.refused is not None:
                self.refused.update(_key(p) for p in whole.plans)
        return {index: (self._compact(whole), groups) for index, (whole, groups) in sorted(results.items())}


class _Where:
    """A scanned file's index by its display path (and, to be sure, its resolved path)."""

    def __init__(self, sources: Sequence[SourceFile]) -> None:
        self.sources = sources
        self.by_display: dict[str, int] | None = None  # built when first asked
        self.by_path: dict[str, int] | None = None

    def index(self, display: str, path: str | None = None) -> int | None:
        if self.by_display is None:
            self.by_display = {s.display: i for i, s in enumerate(self.sources)}
        found = self.by_display.get(display)
        if found is not None and (path is None or str(self.sources[found].path.resolve()) == path):
            return found
        if path is None:
            return None
        if self.by_path is None:
            self.by_path = {str(s.path.resolve()): i for i, s in enumerate(self.sources)}
        return self.by_path.get(path)


class _Output:
    """What the patch prints or writes, spilled to temporary files as files stream by (the files
    held until the end put back in their place)."""

    def __init__(self, *, diffs: bool, split: bool) -> None:
        self.patch: Ordered | None = Ordered() if diffs and not split else None
        self.groups: dict[str, Ordered] = {}
        self.changed: list[tuple[int, str]] = []

    def add(self, index: int, whole: Rewrite | None, groups: dict[str, Rewrite], *, late: bool = False) -> None:
        self.merge(index, *_diffs(whole, groups, whole_diff=self.patch is not None), late=late)

    def merge(self, index: int, changed: str | None, diff: bytes | None, groups: dict[str, bytes | None], *, late: bool = False) -> None:
        """A file's rewrite as `_diffs` gives it (made here, or apart: `PatchPart`), in its place."""
        if changed is not None:
            self.changed.append((index, changed))
            if self.patch is not None:
                assert diff is not None
                self.patch.add(diff, index, late=late)
        for group, part in groups.items():
            spool = self.groups.get(group)
            if spool is None:
                spool = self.groups[group] = Ordered()
            if part is not None:
                spool.add(part, index, late=late)


def _diffs(whole: Rewrite | None, groups: dict[str, Rewrite], *, whole_diff: bool = True) -> tuple[str | None, bytes | None, dict[str, bytes | None]]:
    """What the patch keeps of a file's rewrite: its path if it changed, its diff (with
    `whole_diff`), and each group's diff, None for a group it leaves as it is."""
    changed = whole is not None and whole.changed
    return (
        whole.path if changed else None,  # type: ignore[union-attr]
        _diff(whole) if changed and whole_diff else None,  # type: ignore[arg-type]
        {group: _diff(rewrite) if rewrite.changed else None for group, rewrite in groups.items()},
    )


def _diff(rewrite: Rewrite) -> bytes:
    return rewrite.diff if rewrite.diff is not None else file_diff(rewrite.path, rewrite.old, rewrite.new)


class _Writer:
    """--apply: each changed file written under its folder's lock, if it is still what was scanned;
    skipped, never half-written. What the report counts is what was written."""

    def __init__(self, err: Lines) -> None:
        self.err = err
        self.status = 0

    def write(self, rewrite: Rewrite, why: str | None = None) -> Rewrite:
        from tableshift.engine import digest

        why = why or rewrite.refused
        if why is None and rewrite.new == rewrite.old:
            return rewrite
        if why is None:
            old = digest(rewrite.old)
            why = replace_if_unchanged(rewrite.source, rewrite.new, expected=lambda data: digest(data) == old)
        if why is not None:
            self.err.print(f"skipped {printable(rewrite.path)}: {why}", markup=False, highlight=False, soft_wrap=True)
            self.status = 1
            return dataclasses.replace(rewrite, new=rewrite.old, refused=why)
        self.err.print(f"rewrote {printable(rewrite.path)}", markup=False, highlight=False, soft_wrap=True)
        return rewrite

    def together(self, rewrites: dict[int, Rewrite]) -> dict[int, Rewrite]:
        """A shared constant and the files of the calls relying on it are written together or not
        at all: each group is checked (writable, unchanged) before any of its files is written,
        and the modules defining the constants are written first. Groups that share a file (a
        file relying on constants of two modules) are one group."""
        from tableshift.engine import digest

        failed: set[str] = set()  # modules whose constants were not written: their calls elsewhere wait
        held: dict[int, str] = {}  # why a file of a group waits
        for modules, members in _groups(rewrites):
            for member in members:
                rewrite = rewrites[member]
                why = rewrite.refused
                if why is None and rewrite.changed:
                    old_digest = digest(rewrite.old)
                    why = writable_unchanged(rewrite.source, expected=lambda data, d=old_digest: digest(data) == d)
                if why is not None:
                    held[member] = why
                    for other in members:
                        if other != member:
                            held.setdefault(other, f"written only with {rewrite.path}, which cannot be: {why}")
                    failed |= modules
                    break
        done: dict[int, Rewrite] = {}
        for index in sorted(rewrites, key=lambda i: (not _defines(rewrites[i]), i)):
            rewrite = rewrites[index]
            why = rewrite.refused or held.get(index)
            waiting = next((p.constant.file for p in rewrite.plans if p.constant is not None and p.constant.path in failed), None)
            if why is None and waiting is not None and rewrite.changed:
                why = f"a constant it relies on was not written ({waiting})"
            if why is not None and rewrite.refused is None and not rewrite.changed:
                why = None  # nothing to write: nothing to hold
            done[index] = result = self.write(rewrite, why)
            if result.refused is not None and _defines(rewrite):
                failed.add(str(rewrite.source.resolve()))
        return done


def _groups(rewrites: dict[int, Rewrite]) -> list[tuple[set[str], list[int]]]:
    """The files written together: each module defining shared constants with the files relying
    on them, groups that share a file merged into one."""
    parent: dict[str, str] = {}

    def root(module: str) -> str:
        while parent.setdefault(module, module) != module:
            parent[module] = parent[parent[module]]
            module = parent[module]
        return module

    uses: dict[int, set[str]] = {}
    for index, rewrite in sorted(rewrites.items()):
        mine = {p.constant.path for p in rewrite.plans if p.constant is not None}
        if mine:
            uses[index] = mine
            first, *rest = sorted(mine)
            for other in rest:
                parent[root(other)] = root(first)
    groups: dict[str, tuple[set[str], list[int]]] = {}
    for index, mine in uses.items():
        modules, members = groups.setdefault(root(next(iter(mine))), (set(), []))
        modules |= mine
        members.append(index)
    return list(groups.values())


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


def emit(outcome: PatchOutcome, *, output: Path | None, split_dir: Path | None, err: Lines, check: bool = False) -> int:
    """Print or write the patch (unless it was applied); the summary goes to stderr. Returns the
    exit status.

    `check`: write nothing, list the files the patch would change, status 1 if there are any (a
    gate for "everything rewritable has been rewritten")."""
    status = outcome.status
    if check:
        for path in outcome.changed:
            sys.stdout.write(f"would rewrite {printable(path)}\n")
        status = 1 if outcome.changed else 0
    elif outcome.applied:
        pass
    elif split_dir is not None:
        try:
            split_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{split_dir}: cannot create directory: {exc.strerror}") from None
        written = []
        for group, spool in sorted(outcome.groups.items()):
            target = split_dir / f"{group}.patch"
            with atomic_writer(target) as handle:
                _copy(spool, handle)
            written.append(target.name)
            err.print(f"wrote {printable(str(target))}", markup=False, highlight=False, soft_wrap=True)
        _remove_stale(split_dir, written, err)
    elif output is not None:
        with atomic_writer(output) as handle:
            _copy(outcome.patch, handle)
        err.print(f"wrote {printable(str(output))}", markup=False, highlight=False, soft_wrap=True)
    else:
        sys.stdout.flush()
        _copy(outcome.patch, sys.stdout.buffer)
        sys.stdout.flush()
    for line in coverage.summary_lines(outcome.report):
        err.print(line, highlight=False, markup=False, soft_wrap=True)
    return status


SPLIT_MANIFEST = ".tableshift-split"  # the patches the last run wrote into a --split-dir


def _remove_stale(split_dir: Path, written: list[str], err: Lines) -> None:
    """The patches an earlier run wrote here for groups that have no change now are removed, so
    `git apply split/*.patch` never applies stale hunks; a file tableshift did not write is never
    touched (only the names its manifest lists, regular files ending in .patch)."""
    manifest = split_dir / SPLIT_MANIFEST
    try:
        before = manifest.read_text(encoding="utf-8").splitlines() if manifest.is_file() and not manifest.is_symlink() else []
    except (OSError, UnicodeDecodeError):
        before = []
    for name in before:
        if name in written or not name.endswith(".patch") or "/" in name or "\\" in name or name.startswith("."):
            continue
        stale = split_dir / name
        if stale.is_file() and not stale.is_symlink():
            try:
                stale.unlink()
            except OSError:
                continue
            err.print(f"removed {printable(str(stale))} (its group has no change now)", markup=False, highlight=False, soft_wrap=True)
    with atomic_writer(manifest) as handle:
        handle.write("".join(f"{name}\n" for name in written).encode())


def _copy(spool: Ordered | None, out: BinaryIO) -> None:
    if spool is not None:
        for chunk in spool.chunks():
            out.write(chunk)


def patch_bytes(outcome: PatchOutcome) -> bytes:
    """The whole patch (tests, and small trees)."""
    return _read(outcome.patch)


def _read(spool: Ordered | None) -> bytes:
    return b"".join(spool.chunks()) if spool is not None else b""


def write_report(outcome: PatchOutcome, path: Path | None) -> None:
    if path is None:
        return
    with atomic_writer(path) as handle:
        if path.suffix.lower() == ".json":
            render.write_json(outcome.report, handle)
        else:
            for line in coverage.markdown_lines(outcome.report):
                handle.write(line.encode("utf-8") + b"\n")
