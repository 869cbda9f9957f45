"""The committed baseline of legacy usage, and the ratchet that compares code against it."""

from __future__ import annotations

import json
import os
import stat
from functools import lru_cache
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tableshift.errors import UsageError
from tableshift.report.escape import clean_text, json_text
from tableshift.model import Status
from tableshift.rewrite import Plan
from tableshift.rules import RuleSet

SCHEMA_VERSION = 1
DYNAMIC = "(dynamic)"  # the table key of calls whose table is unknown but may be legacy


@dataclass(unsafe_hash=True, slots=True)
class Use:
    """One use of one legacy table by one call (a call that also embeds one counts twice)."""

    key: str  # the file, relative to the baseline's directory, with '/'
    table: str  # a legacy table, or DYNAMIC
    plan: Plan

    @property
    def fingerprint(self) -> str:
        # as the baseline file stores it: bytes that were not UTF-8 become U+FFFD, so they match again
        return clean_text(self.plan.call.chain or self.plan.call.code)


@dataclass(frozen=True, slots=True)
class Allowance:
    allowed: int
    code: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Baseline:
    rules: str
    files: dict[str, dict[str, Allowance]] = field(default_factory=dict)

    def allowance(self, key: str, table: str) -> Allowance:
        return self.files.get(key, {}).get(table, Allowance(0, ()))

    @property
    def total(self) -> int:
        return sum(a.allowed for tables in self.files.values() for a in tables.values())


def file_key(display: str, *, cwd: Path, base: Path) -> str:
    """A file as the baseline names it: relative to the baseline, `/`, and valid Unicode (a name
    that is not UTF-8 is stored with U+FFFD, as JSON must, and matches itself again)."""
    # the caches below are keyed by folder names: a relative one ("." for a baseline in the working
    # folder) would outlive a change of working folder in a process that runs more than once
    return _file_key(display, _absolute(os.fspath(cwd)), _absolute(os.fspath(base)))


def _absolute(path: str) -> str:
    return path if os.path.isabs(path) else os.path.abspath(path)


@lru_cache(maxsize=65536)
def _file_key(display: str, cwd: str, base: str) -> str:
    # one call per query call: each folder is resolved and made relative once (a scanned file is
    # never itself a link: discovery takes regular files only)
    full = os.path.join(cwd, display)
    folder = _folder_key(os.path.dirname(full), base)
    name = clean_text(os.path.basename(full))
    return name if folder == "." else f"{folder}/{name}"


@lru_cache(maxsize=16384)
def _folder_key(folder: str, base: str) -> str:
    return clean_text(Path(os.path.relpath(_real_folder(folder), _real_folder(base))).as_posix())


@lru_cache(maxsize=16384)
def _real_folder(folder: str) -> str:
    """`os.path.realpath` of a folder, from its parent's (resolved once for all its folders): one
    lstat per folder, not one per component of each."""
    parent, name = os.path.split(folder)
    if not name or name in (".", "..") or parent == folder:
        return os.path.realpath(folder)
    candidate = os.path.join(_real_folder(parent), name)
    try:
        if stat.S_ISLNK(os.lstat(candidate).st_mode):
            return os.path.realpath(candidate)
    except OSError:
        return os.path.realpath(folder)
    return candidate


def uses(plans: Iterable[Plan], *, cwd: Path, base: Path) -> list[Use]:
    """Legacy usage: calls certainly on (or embedding) a legacy table, and dynamic calls that may be.

    A call with a `tableshift-ignore: reason` comment is exempt; one without a reason is not.
    """
    out: list[Use] = []
    for plan in plans:
        call = plan.call
        if call.suppression:
            continue
        key = file_key(call.file, cwd=cwd, base=base)
        # certain legacy usage: the call's own legacy table and every legacy embed, even in a
        # call whose own table is dynamic
        out.extend(Use(key, table, plan) for table in plan.verdict.legacy_tables)
        if plan.verdict.status is Status.DYNAMIC:
            out.append(Use(key, DYNAMIC, plan))
    return out


def _grouped(items: Iterable[Any]) -> dict[tuple[str, str], list[Any]]:
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for use in items:
        groups[(use.key, use.table)].append(use)
    return groups


@dataclass(unsafe_hash=True, slots=True)
class Mark:
    """A use as the baseline records it: its file, table and code, without the call behind it."""

    key: str
    table: str
    fingerprint: str


def marks(plans: Iterable[Plan], *, cwd: Path, base: Path) -> list[Mark]:
    return [Mark(u.key, u.table, u.fingerprint) for u in uses(plans, cwd=cwd, base=base)]


def build(items: Iterable[Use | Mark], rules: RuleSet) -> Baseline:
    files: dict[str, dict[str, Allowance]] = defaultdict(dict)
    for (key, table), group in _grouped(items).items():
        files[key][table] = Allowance(len(group), tuple(sorted(u.fingerprint for u in group)))
    return Baseline(rules.name, dict(files))


def ratchet(old: Baseline, items: Iterable[Use | Mark], *, judged) -> Baseline:  # type: ignore[no-untyped-def]
    """Lower every allowance to today's usage; never raise one, never add one.

    Only files this run could judge are lowered (`judged(key)`): a file outside the paths, or one
    that was skipped or did not parse, keeps its allowances.
    """
    now = _grouped(items)
    files: dict[str, dict[str, Allowance]] = {}
    for key, tables in old.files.items():
        if not judged(key):
            files[key] = dict(tables)
            continue
        for table, allowance in tables.items():
            current = now.get((key, table), [])
            if len(current) >= allowance.allowed:
                kept = allowance
            else:
                kept = Allowance(len(current), tuple(sorted(u.fingerprint for u in current)))
            if kept.allowed:
                files.setdefault(key, {})[table] = kept
    return Baseline(old.rules, files)


def dump(baseline: Baseline) -> bytes:
    """Sorted and indented, so that a baseline's diff in review reads as the usage that changed."""
    data = {
        "schema_version": SCHEMA_VERSION,
        "tool": "tableshift",
        "rules": baseline.rules,
        "total": baseline.total,
        "files": {
            key: {table: {"allowed": a.allowed, "code": list(a.code)} for table, a in sorted(tables.items())}
            for key, tables in sorted(baseline.files.items())
        },
    }
    return json_text(data).encode("utf-8")


def load(path: Path, rules: RuleSet) -> Baseline:
    """Read a baseline; a missing, corrupt or foreign one is a UsageError, never trusted."""
    from tableshift.fsutil import read_input

    try:
        raw = read_input(path, "baseline")
    except FileNotFoundError:
        raise UsageError(f"{path}: baseline not found (create it with `tableshift baseline`)") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: corrupt baseline: {exc}") from None
    except (RecursionError, ValueError):  # 100,000 nested arrays; a 5,000-digit number
        raise UsageError(f"{path}: corrupt baseline: nested too deeply or a number too large") from None

    def bad(what: str) -> UsageError:
        return UsageError(f"{path}: corrupt baseline: {what}")

    if not isinstance(data, dict) or data.get("tool") != "tableshift":
        raise bad("not a tableshift baseline")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise bad(f"schema_version {data.get('schema_version')!r} (this tableshift reads {SCHEMA_VERSION})")
    if data.get("rules") != rules.name:
        raise UsageError(
            f"{path}: baseline was made with rules {data.get('rules')!r}, not {rules.name!r}: "
            "run `tableshift baseline` to make a new one"
        )
    files = data.get("files")
    if not isinstance(files, dict):
        raise bad("'files' must be an object")
    out: dict[str, dict[str, Allowance]] = {}
    for key, tables in files.items():
        if not isinstance(tables, dict):
            raise bad(f"files.{key} must be an object")
        for table, entry in tables.items():
            allowed = entry.get("allowed") if isinstance(entry, dict) else None
            code = entry.get("code", []) if isinstance(entry, dict) else None
            if type(allowed) is not int or allowed < 0 or not isinstance(code, list) or not all(isinstance(c, str) for c in code):
                raise bad(f"files.{key}.{table} needs a whole 'allowed' and a 'code' list of strings")
            if table != DYNAMIC and rules.lookup(table) is None:
                raise UsageError(
                    f"{path}: baseline names {table!r}, which is not a legacy table in {rules.path}: "
                    "run `tableshift baseline` to make a new one"
                )
            out.setdefault(key, {})[table] = Allowance(allowed, tuple(code))
    return Baseline(rules.name, out)


@dataclass(frozen=True, slots=True)
class Finding:
    use: Use
    count: int  # calls to this table in this file now
    allowed: int  # what the baseline allows


@dataclass(frozen=True, slots=True)
class Tightenable:
    key: str
    table: str
    count: int
    allowed: int


@dataclass(frozen=True, slots=True)
class Comparison:
    new: tuple[Finding, ...]  # legacy usage beyond the baseline
    warnings: tuple[Finding, ...]  # dynamic calls that may be legacy, beyond the baseline
    tightenable: tuple[Tightenable, ...]
    unreasoned: tuple[Plan, ...]  # tableshift-ignore comments without a reason
    suppressed: int
    total: int
    files: int = 0  # files with at least one use: the same count `baseline` reports


def compare(
    baseline: Baseline, items: list[Use], plans: Iterable[Plan], *, scanned: set[str], exists
) -> Comparison:  # type: ignore[no-untyped-def]
    """New usage per file and table: more calls than allowed; the unmatched (else last) ones are new.

    `scanned` holds the files this run could judge. Allowances of files that no longer exist
    travel with their code: a moved file's calls match them and are not new.
    """
    comparer = Comparer(baseline, exists=exists)
    comparer.add(items, plans)
    return comparer.finish(scanned)


class Comparer:
    """`compare`, a file at a time: what it keeps is what it will report (the uses beyond their
    allowance, the tightenable counts), not every call of the tree. The result does not depend on
    the order files come in: moved code is matched against deleted files' allowances at the end,
    in file order."""

    def __init__(self, baseline: Baseline, *, exists) -> None:  # type: ignore[no-untyped-def]
        self.baseline = baseline
        self.exists = exists
        self.pending: list[tuple[str, str, list[Use], int, int]] = []  # key, table, beyond, count, allowed
        self.tight: list[Tightenable] = []
        self.seen: set[tuple[str, str]] = set()
        self.keys: set[str] = set()
        self.unreasoned: list[Plan] = []
        self.suppressed = 0
        self.total = 0

    def add(self, items: Iterable[Use], plans: Iterable[Plan]) -> None:
        """Some files' uses (all of each file's at once) and their plans."""
        for (key, table), group in _grouped(items).items():
            self.seen.add((key, table))
            self.keys.add(key)
            self.total += len(group)
            allowance = self.baseline.allowance(key, table)
            group.sort(key=lambda u: (u.plan.call.start.line, u.plan.call.start.column))
            if len(group) > allowance.allowed:
                picked = _pick_new(group, allowance, len(group) - allowance.allowed)
                self.pending.append((key, table, picked, len(group), allowance.allowed))
            elif len(group) < allowance.allowed:
                self.tight.append(Tightenable(key, table, len(group), allowance.allowed))
        for p in plans:
            if p.verdict.status in (Status.LEGACY, Status.DYNAMIC):
                if p.call.suppression == "":
                    self.unreasoned.append(p)
                elif p.call.suppression:
                    self.suppressed += 1

    def finish(self, scanned: set[str]) -> Comparison:
        baseline, exists = self.baseline, self.exists
        orphans: dict[str, Counter[str]] = defaultdict(Counter)  # table -> code of deleted files' calls
        for key, tables in baseline.files.items():
            if key not in scanned and not exists(key):
                for table, allowance in tables.items():
                    orphans[table].update(allowance.code[: allowance.allowed])
        new: list[Finding] = []
        warnings: list[Finding] = []
        for key, table, picked, count, allowed in sorted(self.pending, key=lambda entry: (entry[0], entry[1])):
            moved = [u for u in picked if orphans[table][u.fingerprint] > 0]
            for use in moved:
                orphans[table][use.fingerprint] -= 1
            picked = [u for u in picked if u not in moved]
            into = warnings if table == DYNAMIC else new
            into.extend(Finding(u, count, allowed) for u in picked)
        tight = sorted(self.tight, key=lambda t: (t.key, t.table))
        for key, tables in sorted(baseline.files.items()):
            if key not in scanned and exists(key):
                continue  # outside this run's paths (or --changed-since), skipped, or unparsed: not judged
            for table, allowance in sorted(tables.items()):
                if (key, table) not in self.seen and allowance.allowed:
                    tight.append(Tightenable(key, table, 0, allowance.allowed))
        order = lambda f: (f.use.plan.call.file, f.use.plan.call.start.line, f.use.plan.call.start.column)  # noqa: E731
        return Comparison(
            tuple(sorted(new, key=order)), tuple(sorted(warnings, key=order)), tuple(tight), tuple(self.unreasoned),
            self.suppressed, self.total, len(self.keys),
        )  # fmt: skip


def _pick_new(group: list[Use], allowance: Allowance, excess: int) -> list[Use]:
    """The calls matching no baselined code line; when that does not settle it, the last ones in the file."""
    budget = Counter(allowance.code)
    unmatched: list[Use] = []
    matched: list[Use] = []
    for use in group:
        if budget[use.fingerprint] > 0:
            budget[use.fingerprint] -= 1
            matched.append(use)
        else:
            unmatched.append(use)
    if len(unmatched) >= excess:
        return unmatched[-excess:]
    return sorted(unmatched + matched[len(matched) - (excess - len(unmatched)) :], key=lambda u: group.index(u))
