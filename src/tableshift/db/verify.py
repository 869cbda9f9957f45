"""Every call to a legacy table (and to a target table), before and after its rewrite, checked by
PostgreSQL: the statement PostgREST would run is planned with EXPLAIN in a rolled-back
transaction, once as the code is now and once as `patch` would rewrite it."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from tableshift.db import statement
from tableshift.engine import FileOutcome, ScanResult
from tableshift.model import Call, Status
from tableshift.patch import OverlappingEdits, apply_edits
from tableshift.patching import sharing
from tableshift.rewrite import Fix, Plan
from tableshift.rules import RuleSet
from tableshift.scan import scan_source

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 2  # 2: `sql` has $n placeholders, and `params` their values
REJECTED = "PostgreSQL rejects the rewritten call: "


@dataclasses.dataclass(slots=True)
class Checked:
    plan: Plan
    before: dict[str, Any]
    after: dict[str, Any]
    fix: Fix


def run(
    result: ScanResult, rules: RuleSet, conn: psycopg.Connection, *, legacy_loaded: bool | set[str], aggregates: bool = False
) -> list[Checked]:
    """`legacy_loaded`: the legacy tables the database has (True: all of them); `aggregates`: the
    project's PostgREST has db-aggregates-enabled on."""
    fks = statement.relationships(conn)
    types = statement.column_types(conn)
    targets = {r.target for r in rules.tables}
    out: list[Checked] = []
    for source, outcome in zip(result.sources, result.outcomes):
        relevant = [p for p in outcome.plans if _relevant(p, targets)]
        if not relevant:
            continue
        rewritten = _rewritten(source, outcome)
        for p in relevant:
            call = p.call
            table = _table(call)
            missing = not legacy_loaded if isinstance(legacy_loaded, bool) else not set(p.verdict.legacy_tables) <= legacy_loaded
            if p.verdict.status is Status.LEGACY and missing:
                before = _skipped("no legacy schema: pass --legacy-schema, or --database-url of a database that has the legacy tables")
            else:
                before = _check(conn, call, table, fks, aggregates, types)
            if p.fix is Fix.AUTO:
                after_call = rewritten.get(id(p))
                after = (
                    _check(conn, after_call, p.verdict.target or table, fks, aggregates, types)
                    if after_call is not None
                    else _skipped("the rewritten call could not be found again in the rewritten file")
                )
            elif p.fix is Fix.OK:
                after = dict(before)  # patch leaves it as it is
            else:
                after = _skipped(f"not rewritten: {p.fix.value}")
            # a server setting that refuses the call as it was refuses it the same way rewritten:
            # the rewrite did not break it, so it stays `auto` (the error is still reported)
            setting = (after["error"] or "").startswith("server setting:") and before.get("error") == after["error"]
            fix = Fix.REVIEW if p.fix is Fix.AUTO and after["status"] == "error" and not setting else p.fix
            out.append(Checked(p, before, after, fix))
    return out


def _relevant(p: Plan, targets: set[str]) -> bool:
    if p.verdict.status is Status.LEGACY:
        return True
    table = p.call.table
    return table is not None and table.certain and table.name in targets


def _table(call: Call) -> str:
    name = call.table.name if call.table is not None and call.table.name else ""
    return f"{call.schema}.{name}" if call.schema and call.schema != "public" else name


def _skipped(why: str) -> dict[str, Any]:
    return {"status": "skipped", "error": why, "sql": None, "params": None}


def _check(conn: psycopg.Connection, call: Call, table: str, fks: list, aggregates: bool = False, types: dict | None = None) -> dict[str, Any]:  # type: ignore[type-arg]
    try:
        built = statement.build(call, table, fks, aggregates=aggregates, types=types)
    except statement.Unchecked as exc:
        return _skipped(str(exc))
    except statement.PostgrestError as exc:
        return {"status": "error", "error": f"PostgREST: {exc}", "sql": None, "params": None}
    except statement.ServerSetting as exc:  # a server setting refuses it, whatever the schema
        return {"status": "error", "error": f"server setting: {exc}", "sql": None, "params": None}
    except ValueError as exc:  # a name or key holding a NUL byte: no request can carry it
        return {"status": "error", "error": str(exc), "sql": None, "params": None}
    error = statement.check(conn, built)
    out = {"status": "error" if error else "ok", "error": error, "sql": built.sql, "params": built.params}
    if built.partial:  # what stayed unchecked is said, not hidden behind "ok"
        out["partial"] = built.partial
    return out


def _rewritten(source, outcome: FileOutcome) -> dict[int, Call]:  # type: ignore[no-untyped-def]
    """Each `auto` call as patch would leave it: the file with every `auto` edit made, scanned again."""
    auto = [p for p in outcome.plans if p.fix is Fix.AUTO]
    if not auto:
        return {}
    try:
        data = source.path.read_bytes()
        new = apply_edits(data, [e for p in auto for e in p.edits])
    except (OSError, OverlappingEdits):
        return {}
    result = scan_source(new, path=source.display, language=source.language)
    calls = [c for c in result.calls if c.kind is not None]
    originals = list(outcome.result.calls)
    if len(calls) != len(originals):
        return {}
    by_call = {id(c): after for c, after in zip(originals, calls)}
    return {id(p): by_call[id(p.call)] for p in auto if id(p.call) in by_call}


def demote(result: ScanResult, checked: list[Checked]) -> ScanResult:
    """`patch --verify`: a call whose rewrite PostgreSQL rejects is `review`, with the message; the
    calls sharing a constant with it wait with it."""
    rejected = {id(c.plan): c.after["error"] for c in checked if c.plan.fix is Fix.AUTO and c.fix is Fix.REVIEW}
    if not rejected:
        return result
    groups: dict[object, list[int]] = defaultdict(list)
    for p in result.plans:
        key = sharing(p)
        if key is not None:
            groups[key].append(id(p))
    held = {i for members in groups.values() if any(m in rejected for m in members) for i in members}
    outcomes = []
    for outcome in result.outcomes:
        plans = []
        for p in outcome.plans:
            if id(p) in rejected:
                p = Plan(p.verdict, Fix.REVIEW, (), (*p.reasons, REJECTED + str(rejected[id(p)])), p.fates)
            elif id(p) in held and p.fix is Fix.AUTO:
                p = Plan(p.verdict, Fix.REVIEW, (), (*p.reasons, "table name comes from a constant shared with a call PostgreSQL rejects"), p.fates)
            plans.append(p)
        outcomes.append(dataclasses.replace(outcome, plans=tuple(plans)))
    return ScanResult(tuple(outcomes), result.sources)


def report(checked: list[Checked], rules: RuleSet) -> dict[str, Any]:
    from tableshift import __version__

    calls = []
    for c in checked:
        call = c.plan.call
        calls.append(
            {
                "file": call.file,
                "line": call.start.line,
                "column": call.start.column,
                "kind": call.kind.value,
                "table": call.table.name if call.table is not None else None,
                "target": c.plan.verdict.target,
                "fix": c.fix.value,
                "before": c.before,
                "after": c.after,
            }
        )
    errors = sum(1 for c in checked if "error" in (c.before["status"], c.after["status"]))
    skipped = sum(1 for c in checked if c.before["status"] == c.after["status"] == "skipped")
    checked_count = len(checked) - skipped
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "tableshift", "version": __version__},
        "rules": {"name": rules.name, "path": rules.path},
        "summary": {"calls": len(checked), "checked": checked_count, "ok": checked_count - errors, "errors": errors, "skipped": skipped},
        "calls": calls,
    }


def text(data: dict[str, Any]) -> str:
    lines = []
    for c in data["calls"]:
        for when in ("before", "after"):
            part = c[when]
            if part["status"] == "error":
                lines.append(f"{c['file']}:{c['line']}:{c['column']}: {when}: {c['table']} -> {c['target'] or c['table']}: {part['error']}")
    s = data["summary"]
    lines.append(
        f"tableshift verify: {s['calls']} calls, {s['checked']} checked: {s['ok']} ok, {s['errors']} with errors, {s['skipped']} skipped"
    )
    return "\n".join(lines) + "\n"


def markdown(data: dict[str, Any]) -> str:
    from tableshift.report.escape import md_code, md_text

    s = data["summary"]
    out = [
        "# tableshift verify",
        "",
        f"{s['calls']} calls, {s['checked']} checked: {s['ok']} ok, {s['errors']} with errors, {s['skipped']} skipped.",
        "",
        "| call | table | target | before | after | fix |",
        "|---|---|---|---|---|---|",
    ]

    def cell(part: dict[str, Any]) -> str:
        return part["status"] + (": " + md_text(part["error"]) if part["error"] else "")

    for c in data["calls"]:
        out.append(
            f"| {md_code(c['file'] + ':' + str(c['line']))} | {md_code(c['table'] or '?')} | {md_code(c['target'] or c['table'] or '?')}"
            f" | {cell(c['before'])} | {cell(c['after'])} | {c['fix']} |"
        )
    return "\n".join(out) + "\n"
