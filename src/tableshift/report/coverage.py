"""The patch coverage report: what was rewritten, what needs a person and why, as data and Markdown."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tableshift import __version__
from tableshift.engine import Rewrite
from tableshift.model import Operation
from tableshift.report.escape import md_code, printable
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


def build(
    plans: list[Plan], rewrites: list[Rewrite], rules: RuleSet, selection: Selection, *, split: Sequence[Plan] = ()
) -> dict[str, Any]:
    """Coverage per legacy table and group, the calls that need a person, and every column's fate."""
    plans = sorted(plans, key=lambda p: (p.call.file, p.call.start.line, p.call.start.column))
    done = {id(p) for r in rewrites if r.changed for p in r.plans}
    refused = {id(p) for r in rewrites if r.refused is not None for p in r.plans}
    left_out = [(p, selection.why_not(p, rules)) for p in plans if p.fix is Fix.AUTO]
    left_out = [(p, why) for p, why in left_out if why is not None]
    left_out += [(p, "the constant naming its table also serves calls outside this selection") for p in split]
    # held back because the constant naming the table has other uses: it is not edited, nor are they
    left_out += [(p, p.held) for p in plans if p.fix is Fix.REVIEW and p.held]
    left_out.sort(key=lambda pw: (pw[0].call.file, pw[0].call.start.line, pw[0].call.start.column))

    involved = [p for p in plans if p.fix is not Fix.OK]  # an `ok` call involves no legacy table

    def stats(match) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        mine = [p for p in involved if match(p)]
        fixes = Counter(p.fix.value for p in mine)
        found = len(mine)
        return {
            "calls": found,
            "auto": fixes["auto"],
            "review": fixes["review"],
            "dynamic": fixes["dynamic"],
            "rewritten": sum(1 for p in mine if id(p) in done),
            "pct_auto": _pct(fixes["auto"], found),
        }

    def involves(table: str):  # type: ignore[no-untyped-def]
        return lambda p: table in p.verdict.legacy_tables or (
            p.fix is Fix.DYNAMIC and p.call.table is not None and table in p.call.table.candidates
        )

    tables = [{"table": r.legacy, "target": r.target, "group": r.group, **stats(involves(r.legacy))} for r in rules.tables]
    groups = []
    for group in rules.groups:
        members = [r.legacy for r in rules.tables if r.group == group]
        targets = sorted({r.target for r in rules.tables if r.group == group})
        groups.append({"group": group, "targets": targets, **stats(lambda p, m=members: any(involves(t)(p) for t in m))})

    relevant = [p for p in plans if p.fix is not Fix.OK]
    fates: dict[tuple[str, str], dict[str, Any]] = {}
    uses: Counter[tuple[str, str]] = Counter()
    for p in relevant:
        for fate in p.fates:
            key = (fate.legacy, fate.column)
            uses[key] += 1
            # the most serious fate seen wins: dropped / missing over renamed over kept
            order = ["kept", "renamed", "missing", "dropped"]
            if key not in fates or order.index(fate.fate.value) > order.index(fates[key]["fate"]):
                fates[key] = {"table": fate.legacy, "column": fate.column, "fate": fate.fate.value, "new": fate.new}
    columns = [dict(v, calls=uses[k]) for k, v in sorted(fates.items())]

    totals = stats(lambda p: p.fix is not Fix.OK)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "tableshift", "version": __version__},
        "rules": {"name": rules.name, "path": rules.path},
        "selection": selection.describe(),
        "summary": {**totals, "files_changed": sum(1 for r in rewrites if r.changed)},
        "groups": groups,
        "tables": tables,
        "review": [_entry(p) for p in plans if p.fix is Fix.REVIEW],
        "dynamic": [_entry(p) for p in plans if p.fix is Fix.DYNAMIC],
        "columns": columns,
        "left_out": [dict(_entry(p), why=why) for p, why in left_out],
        "refused_files": [{"file": r.path, "reason": r.refused, "calls": len(r.plans)} for r in rewrites if r.refused],
        "not_rewritten_because_refused": sum(1 for p in plans if id(p) in refused),
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
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    """What a team pastes into the PR description."""
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
    out = [
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
    out += [
        f"| {g['group']} | {', '.join(g['targets'])} | {g['calls']} | {g['auto']} | {g['review']} | {g['dynamic']} | {g['rewritten']} | {_pct_text(g['pct_auto'])} |"
        for g in report["groups"]
    ]
    out += ["", "## Coverage by legacy table", "", "| legacy table | target | calls | auto | review | dynamic | rewritten | % auto |", "|---|---|---|---|---|---|---|---|"]
    out += [
        f"| {t['table']} | {t['target']} | {t['calls']} | {t['auto']} | {t['review']} | {t['dynamic']} | {t['rewritten']} | {_pct_text(t['pct_auto'])} |"
        for t in report["tables"]
    ]
    for title, key in (("Calls that need review", "review"), ("Dynamic calls", "dynamic")):
        out += ["", f"## {title}", ""]
        if not report[key]:
            out.append("_none_")
        for e in report[key]:
            note = f" (suppressed: {e['suppressed']})" if e.get("suppressed") else ""
            where = md_code(f"{e['file']}:{e['line']}")
            out.append(f"- {where} {md_code(e['code'][:160])}{_md(note)}")
            out += [f"  - {_md(r)}" for r in e["reasons"]]
    out += ["", "## Columns used in code, and their fate", ""]
    if report["columns"]:
        out += ["| legacy table | column | fate | new name | calls |", "|---|---|---|---|---|"]
        out += [f"| {c['table']} | {_md(c['column'])} | {c['fate']} | {c['new'] or ''} | {c['calls']} |" for c in report["columns"]]
    else:
        out.append("_none_")
    if report["left_out"]:
        by_why = defaultdict(list)
        for e in report["left_out"]:
            by_why[e["why"]].append(e)
        out += ["", "## Left out by this run's selection", ""]
        for why, entries in sorted(by_why.items()):
            where = ", ".join(md_code(f"{e['file']}:{e['line']}") for e in entries[:10])
            more = ", …" if len(entries) > 10 else ""
            out.append(f"- {why}: {len(entries)} auto calls ({where}{more})")
    if report["refused_files"]:
        out += ["", "## Files refused", ""]
        out += [f"- {md_code(r['file'])}: {_md(r['reason'])}" for r in report["refused_files"]]
    return "\n".join(out) + "\n"


def _pct_text(value: float | None) -> str:
    return "–" if value is None else f"{value}"


def _md(text: str) -> str:
    return printable(text).replace("|", "\\|")
