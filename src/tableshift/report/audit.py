"""The audit report as plain data (the JSON schema, version 1); every output format renders this."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from tableshift import __version__
from tableshift.engine import ScanResult
from tableshift.model import Call, Column, Embedded, Kind, Opaque, Operation, Status, Verdict
from tableshift.rewrite import Fix, Plan
from tableshift.rules import RuleSet

SCHEMA_VERSION = 1
_OPS = [op.value for op in Operation] + ["unknown"]


def build(result: ScanResult, rules: RuleSet | None) -> dict[str, Any]:
    """The whole audit as JSON-ready data, sorted so that it diffs well."""
    plans = {id(p.verdict): p for p in result.plans}
    verdicts = sorted(result.verdicts, key=lambda v: (v.call.file, v.call.start.line, v.call.start.column))
    calls = [v.call for v in verdicts]
    tables = _tables(verdicts, rules)
    by_kind = Counter(c.kind for c in calls)
    table_calls = [c for c in calls if c.kind is Kind.TABLE]
    summary: dict[str, Any] = {
        "files_scanned": len(result.files),
        "files_with_calls": len({c.file for c in calls}),
        "calls": len(table_calls),
        "certain_calls": sum(1 for c in table_calls if c.table and c.table.certain),
        "dynamic_calls": sum(1 for c in table_calls if c.table and not c.table.certain),
        "tables": len({c.table.name for c in table_calls if c.table and c.table.certain}),
        "storage_calls": by_kind[Kind.STORAGE],
        "rpc_calls": by_kind[Kind.RPC],
        "realtime_calls": by_kind[Kind.REALTIME],
        "parse_errors": sum(1 for f in result.files if f.parse_error),
        "calls_in_error_regions": sum(1 for c in calls if c.in_error_region),
        "suppressed_calls": sum(1 for c in calls if c.suppression),
        "unreadable_files": sum(1 for f in result.files if f.error),
    }
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "tableshift", "version": __version__},
        "rules": None if rules is None else {"name": rules.name, "path": rules.path},
        "summary": summary,
        "tables": tables,
    }
    if rules is not None:
        statuses = Counter(v.status.value for v in verdicts if v.status is not None)
        summary["status"] = {s.value: statuses.get(s.value, 0) for s in Status}
        fixes = Counter(p.fix.value for p in plans.values())
        summary["fix"] = {f.value: fixes.get(f.value, 0) for f in Fix}
        report["legacy"] = _legacy(verdicts, rules, plans)
    report["storage"] = _named(calls, Kind.STORAGE, "bucket")
    report["rpc"] = _named(calls, Kind.RPC, "function")
    report["files"] = {
        "parse_errors": sorted(f.path for f in result.files if f.parse_error),
        "unreadable": [{"path": f.path, "error": f.error} for f in result.files if f.error],
    }
    report["calls"] = [call_json(v, plans.get(id(v))) for v in verdicts]
    return report


def _tables(verdicts: list[Verdict], rules: RuleSet | None) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    files: dict[str, set[str]] = defaultdict(set)

    def row(name: str) -> dict[str, Any]:
        if name not in rows:
            rule = rules.lookup(name) if rules is not None else None
            rows[name] = {
                "name": name,
                "calls": 0,
                "embedded": 0,
                "realtime": 0,
                "files": 0,
                "operations": dict.fromkeys(_OPS, 0),
                "legacy": None if rules is None else rule is not None,
                "target": rule.target if rule is not None else None,
            }
        return rows[name]

    for verdict in verdicts:
        call = verdict.call
        if call.table is not None and call.table.certain and call.table.name:
            entry = row(call.table.name)
            if call.kind is Kind.TABLE:
                entry["calls"] += 1
                entry["operations"][call.operation.value if call.operation else "unknown"] += 1
            else:
                entry["realtime"] += 1
            files[call.table.name].add(call.file)
        for name in dict.fromkeys(e.table for e in call.columns.all_embedded()):  # calls, not occurrences
            row(name)["embedded"] += 1
            files[name].add(call.file)
    for name, entry in rows.items():
        entry["files"] = len(files[name])
    return sorted(rows.values(), key=lambda r: (-(r["calls"] + r["embedded"] + r["realtime"]), r["name"]))


def _legacy(verdicts: list[Verdict], rules: RuleSet, plans: dict[int, Plan]) -> list[dict[str, Any]]:
    """Per legacy table, in rules-file order: how much code still uses it, and how."""
    out = []
    for rule in rules.tables:
        mine = [v for v in verdicts if rule.legacy in v.legacy_tables]
        own = [v for v in mine if v.call.table is not None and v.call.table.name == rule.legacy]
        maybe = [
            v
            for v in verdicts
            if v.status is Status.DYNAMIC and v.call.table is not None and rule.legacy in v.call.table.candidates
        ]
        ops = Counter(v.call.operation.value if v.call.operation else "unknown" for v in own if v.call.kind is Kind.TABLE)
        fixes = Counter(plans[id(v)].fix.value for v in own if id(v) in plans and v.call.kind is Kind.TABLE)
        out.append(
            {
                "table": rule.legacy,
                "target": rule.target,
                "group": rule.group,
                "calls": sum(1 for v in own if v.call.kind is Kind.TABLE),
                "embedded": len(mine) - len(own),
                "realtime": sum(1 for v in own if v.call.kind is Kind.REALTIME),
                "dynamic": len(maybe),
                "files": len({v.call.file for v in mine}),
                "reads": ops.get("select", 0),
                "writes": sum(ops.get(op, 0) for op in ("insert", "update", "upsert", "delete")),
                "unknown": ops.get("unknown", 0),
                "auto": fixes.get("auto", 0),
                "review": fixes.get("review", 0),
            }
        )
    return out


def _named(calls: list[Call], kind: Kind, key: str) -> list[dict[str, Any]]:
    counts = Counter(c.name for c in calls if c.kind is kind)
    files: dict[str | None, set[str]] = defaultdict(set)
    for c in calls:
        if c.kind is kind:
            files[c.name].add(c.file)
    rows = [{key: name, "calls": n, "files": len(files[name])} for name, n in counts.items()]
    return sorted(rows, key=lambda r: (-r["calls"], r[key] or ""))


def call_json(verdict: Verdict, plan: Plan | None = None) -> dict[str, Any]:
    call = verdict.call
    table = call.table
    cols = call.columns
    return {
        "file": call.file,
        "line": call.start.line,
        "column": call.start.column,
        "end_line": call.end.line,
        "end_column": call.end.column,
        "kind": call.kind.value,
        "client": call.client,
        "schema": call.schema,
        "table": table.name if table is not None and table.certain else None,
        "table_source": table.source.value if table is not None else None,
        "dynamic": table is not None and not table.certain,
        "candidates": list(table.candidates) if table is not None else [],
        "name": call.name,
        "event": call.event,
        "operation": call.operation.value if call.operation else None,
        "read": call.is_read,
        "confidence": call.confidence.value,
        "columns": {
            "select": [_column(c) for c in cols.select],
            "embedded": [_embedded(e) for e in cols.embedded],
            "filter": [_column(c) for c in cols.filter],
            "write": [_column(c) for c in cols.write],
            "on_conflict": [_column(c) for c in cols.on_conflict],
            "opaque": [_opaque(o) for o in cols.opaque],
        },
        "in_error_region": call.in_error_region,
        "suppressed": call.suppression,
        "status": verdict.status.value if verdict.status else None,
        "fix": plan.fix.value if plan is not None else None,
        "target": verdict.target,
        "reasons": _reasons(verdict, plan),
        "code": call.code,
    }


def _reasons(verdict: Verdict, plan: Plan | None) -> list[str]:
    call = verdict.call
    out = list(verdict.reasons)
    if plan is not None:
        out.extend(plan.reasons)
    if call.in_error_region:
        out.append("call sits in a region with syntax errors")
    out.extend(call.notes)
    if call.suppression:
        out.append(f"suppressed: {call.suppression}")
    elif call.suppression == "":
        out.append("tableshift-ignore without a reason: not suppressed")
    return list(dict.fromkeys(out))


def _column(c: Column) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "op": c.op, "line": c.position.line, "column": c.position.column}
    for key in ("alias", "cast", "json_path", "aggregate", "qualifier"):
        value = getattr(c, key)
        if value is not None:
            out[key] = value
    if c.shorthand:
        out["shorthand"] = True
    out["span"] = [c.span.start, c.span.end] if c.span else None
    return out


def _embedded(e: Embedded) -> dict[str, Any]:
    return {
        "table": e.table,
        "alias": e.alias,
        "hints": list(e.hints),
        "line": e.position.line,
        "column": e.position.column,
        "span": [e.span.start, e.span.end] if e.span else None,
        "columns": [_column(c) for c in e.columns],
        "embedded": [_embedded(x) for x in e.embedded],
    }


def _opaque(o: Opaque) -> dict[str, Any]:
    return {"role": o.role.value, "reason": o.reason, "line": o.position.line, "column": o.position.column}
