"""The patch coverage report: what was rewritten, what needs a person and why, as data and Markdown."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tableshift import __version__
from tableshift.engine import Rewrite
from tableshift.model import Kind, Operation
from tableshift.report.escape import md_code, printable
from tableshift.report.render import Entries, EntryLines
from tableshift.rewrite import Fix, Plan
from tableshift.rules import RuleSet

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Selection:
    """Which legacy calls this run may rewrite: the plan's phases, one table or group at a time."""

    only: str | None = None  # "reads" | "writes"
    tables: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def why_not(self, plan: Plan, rules: RuleSet) -> str | None:
        """None when the plan is selected, else why it was left out."""
        if plan.call.suppression:
            return f"suppressed: {plan.call.suppression}"
        # a call is rewritten whole or not at all: every legacy table it touches must be selected
        involved = set(plan.verdict.legacy_tables)
        if self.tables and not involved <= self.tables:
            others = ", ".join(sorted(involved - self.tables))
            return "--table" if not involved & self.tables else f"--table: the call also uses {others}"
        groups = {rule.group for rule in (rules.lookup(t) for t in involved) if rule is not None}
        if self.groups and not groups <= self.groups:
            others = ", ".join(sorted(groups - self.groups))
            return "--group" if not groups & self.groups else f"--group: the call also uses group {others}"
        op = plan.call.operation
        if plan.call.kind is Kind.TYPE:  # a row type follows the rows the code reads
            return "--only writes: a type reference moves with the reads" if self.only == "writes" else None
        if self.only is not None and op is None:
            return f"--only {self.only}: operation unknown (chain continues elsewhere)"
        if self.only == "reads" and op is not Operation.SELECT:
            return "--only reads"
        if self.only == "writes" and op is Operation.SELECT:
            return "--only writes"
        return None

    def describe(self) -> dict[str, Any]:
        return {"only": self.only, "tables": sorted(self.tables), "groups": sorted(self.groups)}


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


_FATE_ORDER = ["kept", "renamed", "missing", "dropped"]  # the most serious fate seen wins


class CoverageBuilder:
    """The coverage report, built one file at a time like the audit: counters per legacy table and
    group, every column's fate, and the long lists (review, dynamic, left out) streamed to disk.

    `add` takes a file's plans in order; files come in path order, so the lists come out sorted
    by file, line and column without holding them."""

    def __init__(self, rules: RuleSet, selection: Selection, *, entries: Callable[[], Entries | EntryLines] = Entries) -> None:
        self.rules = rules
        self.selection = selection
        self.totals: Counter[str] = Counter()
        self.tables = [Counter() for _ in rules.tables]  # type: list[Counter[str]]
        self.groups = {group: Counter() for group in rules.groups}  # type: dict[str, Counter[str]]
        self.group_of = [rule.group for rule in rules.tables]
        self.fates: dict[tuple[str, str], dict[str, Any]] = {}
        self.uses: Counter[tuple[str, str]] = Counter()
        self.review, self.dynamic, self.left_out = entries(), entries(), entries()
        self.refused_files: list[tuple[int, dict[str, Any]]] = []
        self.refused_calls = 0
        self.files_changed = 0
        self.generated_types: list[tuple[int, str]] = []  # `supabase gen types` output: regenerated, not patched

    def add(
        self,
        plans: Sequence[Plan],
        *,
        rewrite: Rewrite | None,
        done: Callable[[Plan], bool],
        refused: Callable[[Plan], bool],
        torn: Sequence[Plan] = (),
        at: int = 0,
        late: bool = False,
    ) -> None:
        """One file: its plans (every legacy or dynamic call), its rewrite, which plans a rewrite
        changed or a refused one held (here or in a module defining their constant), and the
        plans dropped because the selection split a shared constant. Files come in order (`at`,
        their place); a few, decided at the end, come `late` and are put back in their place."""
        if not plans and rewrite is None:
            return
        if rewrite is not None and rewrite.changed:
            self.files_changed += 1
        if rewrite is not None and rewrite.refused is not None:
            self.refused_files.append((at, {"file": rewrite.path, "reason": rewrite.refused, "calls": len(rewrite.plans)}))
        plans = sorted(plans, key=lambda p: (p.call.start.line, p.call.start.column))
        left_out = [(p, self.selection.why_not(p, self.rules)) for p in plans if p.fix is Fix.AUTO]
        left_out = [(p, why) for p, why in left_out if why is not None]
        left_out += [(p, "the constant naming its table also serves calls outside this selection") for p in torn]
        # held back because the constant naming the table has other uses: it is not edited, nor are they
        left_out += [(p, p.held) for p in plans if p.fix is Fix.REVIEW and p.held]
        left_out.sort(key=lambda pw: (pw[0].call.start.line, pw[0].call.start.column))
        for p, why in left_out:
            self.left_out.append(dict(_entry(p), why=why), at, late=late)
        for p in plans:
            self.refused_calls += refused(p)
            if p.fix is Fix.OK:  # an `ok` call involves no legacy table
                continue
            if p.fix is Fix.REVIEW:
                self.review.append(_entry(p), at, late=late)
            elif p.fix is Fix.DYNAMIC:
                self.dynamic.append(_entry(p), at, late=late)
            rewritten = done(p)
            _count(self.totals, p, rewritten)
            groups = set()
            for index, rule in enumerate(self.rules.tables):
                if rule.legacy in p.verdict.legacy_tables or (
                    p.fix is Fix.DYNAMIC and p.call.table is not None and rule.legacy in p.call.table.candidates
                ):
                    _count(self.tables[index], p, rewritten)
                    groups.add(self.group_of[index])
            for group in groups:
                _count(self.groups[group], p, rewritten)
            for fate in p.fates:
                key = (fate.legacy, fate.column)
                self.uses[key] += 1
                if key not in self.fates or _FATE_ORDER.index(fate.fate.value) > _FATE_ORDER.index(self.fates[key]["fate"]):
                    self.fates[key] = {"table": fate.legacy, "column": fate.column, "fate": fate.fate.value, "new": fate.new}

    # -- one file's part: what `add` of it does, made apart (in a worker, or kept in the cache) by a
    # builder with `EntryLines`, and folded in later; `merge(part, at)` does what `add(..., at=at)` does

    def _state(self) -> tuple:  # type: ignore[type-arg]
        lines = (self.review, self.dynamic, self.left_out)
        assert all(isinstance(e, EntryLines) for e in lines), "a part's builder keeps its entries as lines"
        return (
            dict(self.totals),
            {index: dict(c) for index, c in enumerate(self.tables) if c},
            {group: dict(c) for group, c in self.groups.items() if c},
            self.fates,
            dict(self.uses),
            *(e.lines for e in lines),  # type: ignore[union-attr]
            [entry for _, entry in self.refused_files],
            self.refused_calls,
            self.files_changed,
            [path for _, path in self.generated_types],
        )

    def merge(self, state: tuple, at: int) -> None:  # type: ignore[type-arg]
        """Fold in one file's part (its `_state`), in file order (`at`: its place)."""
        totals, tables, groups, fates, uses, review, dynamic, left_out, refused_files, refused_calls, files_changed, generated = state
        self.totals.update(totals)
        for index, counts in tables.items():
            self.tables[index].update(counts)
        for group, counts in groups.items():
            self.groups[group].update(counts)
        for key, fate in fates.items():
            if key not in self.fates or _FATE_ORDER.index(fate["fate"]) > _FATE_ORDER.index(self.fates[key]["fate"]):
                self.fates[key] = fate
        self.uses.update(uses)
        for mine, lines in ((self.review, review), (self.dynamic, dynamic), (self.left_out, left_out)):
            if lines:
                mine.extend(lines, at)  # type: ignore[union-attr]
        self.refused_files.extend((at, entry) for entry in refused_files)
        self.refused_calls += refused_calls
        self.files_changed += files_changed
        self.generated_types.extend((at, path) for path in generated)

    def report(self) -> dict[str, Any]:
        """The report; its long lists are `Entries` (iterable, and `write_json` streams them):
        `data()` for plain lists."""
        rules = self.rules
        groups = []
        for group in rules.groups:
            targets = sorted({r.target for r in rules.tables if r.group == group})
            groups.append({"group": group, "targets": targets, **_stats(self.groups[group])})
        tables = [{"table": r.legacy, "target": r.target, "group": r.group, **_stats(c)} for r, c in zip(rules.tables, self.tables)]
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "tableshift", "version": __version__},
            "rules": {"name": rules.name, "path": rules.path},
            "selection": self.selection.describe(),
            "summary": {**_stats(self.totals), "files_changed": self.files_changed},
            "groups": groups,
            "tables": tables,
            "review": self.review,
            "dynamic": self.dynamic,
            "columns": [dict(v, calls=self.uses[k]) for k, v in sorted(self.fates.items())],
            "left_out": self.left_out,
            "refused_files": [entry for _, entry in sorted(self.refused_files, key=lambda e: e[0])],
            "not_rewritten_because_refused": self.refused_calls,
            # the tables' own declarations: regenerate them (`supabase gen types`) once `expand` has
            # created the targets, then again after `contract`
            "generated_types": [path for _, path in sorted(self.generated_types)],
        }

    def close(self) -> None:
        for entries in (self.review, self.dynamic, self.left_out):
            entries.close()


def data(report: dict[str, Any]) -> dict[str, Any]:
    """The report with plain lists: what `json.dumps` and tests read."""
    return {key: list(value) if isinstance(value, Entries) else value for key, value in report.items()}


def _count(counter: Counter[str], plan: Plan, rewritten: bool) -> None:
    counter["calls"] += 1
    counter[plan.fix.value] += 1
    counter["rewritten"] += rewritten


def _stats(c: Counter[str]) -> dict[str, Any]:
    return {
        "calls": c["calls"],
        "auto": c["auto"],
        "review": c["review"],
        "dynamic": c["dynamic"],
        "rewritten": c["rewritten"],
        "pct_auto": _pct(c["auto"], c["calls"]),
    }


def _entry(plan: Plan) -> dict[str, Any]:
    call = plan.call
    return {
        "file": call.file,
        "line": call.start.line,
        "column": call.start.column,
        "table": call.table.name if call.table and call.table.certain else None,
        "legacy": list(plan.verdict.legacy_tables),
        "candidates": list(call.table.candidates) if call.table else [],
        "operation": call.operation.value if call.operation else None,
        "code": call.code,
        "reasons": list(plan.reasons),
        "suppressed": call.suppression,
    }


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The short version for stderr."""
    s = report["summary"]
    lines = [
        f"tableshift patch: {s['calls']} legacy or dynamic calls: {s['auto']} auto, {s['review']} review, "
        f"{s['dynamic']} dynamic ({_pct_text(s['pct_auto'])}% auto); rewrote {s['rewritten']} calls in {s['files_changed']} files"
    ]
    for g in report["groups"]:
        lines.append(f"  {g['group']}: {g['calls']} calls, {g['auto']} auto, {g['review']} review, {g['dynamic']} dynamic, {g['rewritten']} rewritten")
    if sum(g["calls"] for g in report["groups"]) != s["calls"]:
        lines.append("  (the groups overlap: a call that may touch several groups, such as a dynamic one, counts in each)")
    if report["left_out"]:
        why = Counter(e["why"] for e in report["left_out"])
        lines.append("  left out: " + ", ".join(f"{n} by {w}" for w, n in sorted(why.items())))
    for refused in report["refused_files"]:
        lines.append(f"  refused {printable(refused['file'])}: {printable(refused['reason'])}")
    if report.get("generated_types"):
        files = ", ".join(printable(f) for f in report["generated_types"])
        lines.append(f"  generated types, not patched: {files}: regenerate them (supabase gen types) after `expand`, and again after `contract`")
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    """What a team pastes into the PR description."""
    return "\n".join(markdown_lines(report)) + "\n"


def markdown_lines(report: dict[str, Any]) -> Iterator[str]:
    """`to_markdown`, line by line: the review list streams from disk."""
    s = report["summary"]
    sel = report["selection"]
    scope = ", ".join(
        part
        for part in (
            f"only {sel['only']}" if sel["only"] else "",
            f"tables {', '.join(sel['tables'])}" if sel["tables"] else "",
            f"groups {', '.join(sel['groups'])}" if sel["groups"] else "",
        )
        if part
    )
    yield from [
        f"# tableshift patch — {report['rules']['name']}",
        "",
        f"Rewrote **{s['rewritten']}** calls in **{s['files_changed']}** files. "
        f"Of {s['calls']} legacy or dynamic calls, {s['auto']} can be rewritten automatically ({_pct_text(s['pct_auto'])}%), "
        f"{s['review']} need review and {s['dynamic']} have a table that is not known statically."
        + (f" Scope of this run: {scope}." if scope else ""),
        "",
        "## Coverage by group",
        "",
        "| group | targets | calls | auto | review | dynamic | rewritten | % auto |",
        "|---|---|---|---|---|---|---|---|",
    ]
    yield from [
        f"| {g['group']} | {', '.join(g['targets'])} | {g['calls']} | {g['auto']} | {g['review']} | {g['dynamic']} | {g['rewritten']} | {_pct_text(g['pct_auto'])} |"
        for g in report["groups"]
    ]
    yield from ["", "## Coverage by legacy table", "", "| legacy table | target | calls | auto | review | dynamic | rewritten | % auto |", "|---|---|---|---|---|---|---|---|"]
    yield from [
        f"| {t['table']} | {t['target']} | {t['calls']} | {t['auto']} | {t['review']} | {t['dynamic']} | {t['rewritten']} | {_pct_text(t['pct_auto'])} |"
        for t in report["tables"]
    ]
    for title, key in (("Calls that need review", "review"), ("Dynamic calls", "dynamic")):
        yield from ["", f"## {title}", ""]
        if not report[key]:
            yield "_none_"
        for e in report[key]:
            note = f" (suppressed: {e['suppressed']})" if e.get("suppressed") else ""
            where = md_code(f"{e['file']}:{e['line']}")
            yield f"- {where} {md_code(e['code'][:160])}{_md(note)}"
            yield from (f"  - {_md(r)}" for r in e["reasons"])
    yield from ["", "## Columns used in code, and their fate", ""]
    if report["columns"]:
        yield from ["| legacy table | column | fate | new name | calls |", "|---|---|---|---|---|"]
        yield from [f"| {c['table']} | {_md(c['column'])} | {c['fate']} | {c['new'] or ''} | {c['calls']} |" for c in report["columns"]]
    else:
        yield "_none_"
    if report["left_out"]:
        by_why: dict[str, list[dict[str, Any]]] = defaultdict(list)  # the first ten of each
        counts: Counter[str] = Counter()
        for e in report["left_out"]:
            counts[e["why"]] += 1
            if counts[e["why"]] <= 10:
                by_why[e["why"]].append(e)
        yield from ["", "## Left out by this run's selection", ""]
        for why, entries in sorted(by_why.items()):
            where = ", ".join(md_code(f"{e['file']}:{e['line']}") for e in entries)
            more = ", …" if counts[why] > 10 else ""
            yield (f"- {why}: {counts[why]} auto calls ({where}{more})")
    if report.get("generated_types"):
        yield ""
        yield "## Generated types"
        yield ""
        yield "Not patched: regenerate them (`supabase gen types`) after `expand` creates the target tables, and again after `contract`."
        yield ""
        yield from [f"- {md_code(f)}" for f in report["generated_types"]]
    if report["refused_files"]:
        yield from ["", "## Files refused", ""]
        yield from [f"- {md_code(r['file'])}: {_md(r['reason'])}" for r in report["refused_files"]]


def _pct_text(value: float | None) -> str:
    return "–" if value is None else f"{value}"


def _md(text: str) -> str:
    return printable(text).replace("|", "\\|")
