"""The audit report as plain data (the JSON schema, version 1); every output format renders this."""

from __future__ import annotations

import pickle
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import orjson

from tableshift import __version__
from tableshift.model import Column, Embedded, Kind, Opaque, Operation, Status, Verdict
from tableshift.report.render import entry_text
from tableshift.rewrite import Fate, Fix, Plan
from tableshift.rules import RuleSet

if TYPE_CHECKING:
    from tableshift.engine import FileOutcome, ScanResult

SCHEMA_VERSION = 1
# the summary's count of each kind of call beyond table calls and the named ones (storage, rpc)
_SUMMED = {Kind.REALTIME: "realtime_calls", Kind.HELPER: "helper_calls", Kind.TYPE: "type_references", Kind.SQL: "sql_uses", Kind.REST: "rest_calls"}
_OPS = [op.value for op in Operation] + ["unknown"]


class AuditBuilder:
    """The audit, built one file at a time: counters and small sets only, calls streamed out.

    Memory stays flat however large the tree: each call's JSON goes to `sink` (a list, or a
    spool file) as soon as its file is done.
    """

    def __init__(self, rules: RuleSet | None, sink: Any = None) -> None:
        self.rules = rules
        self.sink: Any = sink if sink is not None else []
        self.summary = Counter()  # type: Counter[str]
        self.statuses = Counter()  # type: Counter[str]
        self.fixes = Counter()  # type: Counter[str]
        self.tables: dict[str, dict[str, Any]] = {}
        self.table_files: dict[str, set[str]] = defaultdict(set)
        self.legacy = {rule.legacy: Counter() for rule in rules.tables} if rules is not None else {}
        self.legacy_files: dict[str, set[str]] = defaultdict(set)
        self.named = {Kind.STORAGE: Counter(), Kind.RPC: Counter()}  # type: dict[Kind, Counter[str | None]]
        self.named_files: dict[tuple[Kind, str | None], set[str]] = defaultdict(set)
        self.files_with_calls = 0
        self.certain_names: set[str] = set()
        self.parse_errors: list[str] = []
        self.unreadable: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        # for the human formats: small per-file counts and the dynamic calls
        self.per_file: Counter[str] = Counter()
        self.dynamic_per_file: Counter[str] = Counter()
        self.flagged_per_file: Counter[str] = Counter()
        self.dynamic_calls: list[dict[str, Any]] = []
        # columns the code uses on a legacy table that its target lacks: (target, column) -> calls, legacy columns
        self.gaps: dict[tuple[str, str], dict[str, Any]] = {}
        self.legacy_types: dict[tuple[str, str], str] = {}  # (legacy table, column) -> type, from a legacy schema

    def add(self, outcome: FileOutcome) -> None:
        result = outcome.result
        self.summary["files_scanned"] += 1
        if result.parse_error:
            self.parse_errors.append(result.path)
        if result.error:
            self.unreadable.append({"path": result.path, "error": result.error})
        if result.skipped:
            self.skipped.append({"path": result.path, "reason": result.skipped})
        plans = {id(p.verdict): p for p in outcome.plans}
        verdicts = sorted(outcome.verdicts, key=lambda v: (v.call.file, v.call.start.line, v.call.start.column))
        if verdicts:
            self.files_with_calls += 1
        for verdict in verdicts:
            plan = plans.get(id(verdict))
            self._count(verdict, plan)
            if plan is not None:
                self._gaps(plan)
            entry = call_json(verdict, plan)
            self.per_file[entry["file"]] += 1
            if entry["dynamic"]:
                self.dynamic_per_file[entry["file"]] += 1
                self.dynamic_calls.append(
                    {k: entry[k] for k in ("file", "line", "kind", "candidates", "status", "reasons", "dynamic")}
                )
            if entry["in_error_region"]:
                self.flagged_per_file[entry["file"]] += 1
            self.sink.append(entry)

    # -- one file's part: what `add` of its outcome does, made apart (in a worker, or kept in the
    # cache) and folded in later; `merge(part(o))` leaves the builder as `add(o)` does ------------

    def _state(self) -> tuple:  # type: ignore[type-arg]
        chunk: _Chunk = self.sink
        return (
            dict(self.summary), dict(self.statuses), dict(self.fixes), self.tables, dict(self.table_files),
            {name: dict(c) for name, c in self.legacy.items() if c}, dict(self.legacy_files),
            {kind: dict(c) for kind, c in self.named.items() if c}, dict(self.named_files),
            self.files_with_calls, self.certain_names, self.parse_errors, self.unreadable, self.skipped,
            dict(self.per_file), dict(self.dynamic_per_file), dict(self.flagged_per_file), self.dynamic_calls,
            self.gaps, len(chunk.entries),
        )

    def merge(self, part: bytes) -> None:
        """Fold in one file's part (`AuditPart`), in file order."""
        (
            summary, statuses, fixes, tables, table_files, legacy, legacy_files, named, named_files,
            files_with_calls, certain_names, parse_errors, unreadable, skipped,
            per_file, dynamic_per_file, flagged_per_file, dynamic_calls, gaps, count, size,
        ) = pickle.loads(part)  # the bytes after the pickle are the calls' JSON: not copied, kept as they are
        chunk = memoryview(part)[len(part) - size :] if size else b""
        self.summary.update(summary)
        self.statuses.update(statuses)
        self.fixes.update(fixes)
        for name, row in tables.items():
            mine = self.tables.get(name)
            if mine is None:
                self.tables[name] = row
                continue
            for field in ("calls", "embedded", "realtime", "types", "rest", "sql"):
                mine[field] += row[field]
            for op, n in row["operations"].items():
                mine["operations"][op] += n
        for name, files in table_files.items():
            self.table_files[name] |= files
        for name, counts in legacy.items():
            self.legacy[name].update(counts)
        for name, files in legacy_files.items():
            self.legacy_files[name] |= files
        for kind, counts in named.items():
            self.named[kind].update(counts)
        for key, files in named_files.items():
            self.named_files[key] |= files
        self.files_with_calls += files_with_calls
        self.certain_names |= certain_names
        self.parse_errors.extend(parse_errors)
        self.unreadable.extend(unreadable)
        self.skipped.extend(skipped)
        self.per_file.update(per_file)
        self.dynamic_per_file.update(dynamic_per_file)
        self.flagged_per_file.update(flagged_per_file)
        self.dynamic_calls.extend(dynamic_calls)
        for key, gap in gaps.items():
            mine = self.gaps.setdefault(key, {"calls": 0, "legacy": {}})
            mine["calls"] += gap["calls"]
            for legacy_table, column in gap["legacy"].items():
                mine["legacy"].setdefault(legacy_table, column)
        self.sink.extend(chunk, count)

    def _count(self, verdict: Verdict, plan: Plan | None) -> None:
        call = verdict.call
        s = self.summary
        certain = call.table is not None and call.table.certain
        if call.kind is Kind.TABLE:
            s["calls"] += 1
            s["certain_calls" if certain else "dynamic_calls"] += 1
            if certain and call.table is not None and call.table.name:
                self.certain_names.add(call.table.name)
        elif call.kind in self.named:
            self.named[call.kind][call.name] += 1
            self.named_files[(call.kind, call.name)].add(call.file)
        if call.kind in _SUMMED:
            s[_SUMMED[call.kind]] += 1
        if call.kind is Kind.REST:
            s["certain_rest_calls" if certain else "dynamic_rest_calls"] += 1
        s["calls_in_error_regions"] += call.in_error_region
        s["suppressed_calls"] += bool(call.suppression)
        if verdict.status is not None:
            self.statuses[verdict.status.value] += 1
        if plan is not None:
            self.fixes[plan.fix.value] += 1
        if certain and call.table is not None and call.table.name:
            row = self._row(call.table.name)
            if call.kind in (Kind.TABLE, Kind.REST):  # a request over plain HTTP is a call of the table too
                row["calls"] += 1
                row["operations"][call.operation.value if call.operation else "unknown"] += 1
                row["rest"] += call.kind is Kind.REST
            elif call.kind is Kind.TYPE:
                row["types"] += 1
            elif call.kind is Kind.SQL:
                row["sql"] += 1
            else:
                row["realtime"] += 1
            self.table_files[call.table.name].add(call.file)
        for name in dict.fromkeys(e.table for e in call.columns.all_embedded()):  # calls, not occurrences
            self._row(name)["embedded"] += 1
            self.table_files[name].add(call.file)
        self._count_legacy(verdict, plan)

    def _count_legacy(self, verdict: Verdict, plan: Plan | None) -> None:
        call = verdict.call
        for legacy in verdict.legacy_tables:
            if legacy not in self.legacy:
                continue
            c = self.legacy[legacy]
            self.legacy_files[legacy].add(call.file)
            own = call.table is not None and call.table.name == legacy
            if call.kind is Kind.RPC:  # through the database function it calls
                c["rpc"] += 1
            elif not own:
                c["embedded"] += 1
            elif call.kind is Kind.REALTIME:
                c["realtime"] += 1
            elif call.kind is Kind.SQL:
                c["sql"] += 1
            elif call.kind is Kind.TYPE:
                c["types"] += 1
                if plan is not None and plan.fix.value in ("auto", "review"):
                    c[f"types_{plan.fix.value}"] += 1
            elif call.kind in (Kind.TABLE, Kind.REST):
                c["calls"] += 1
                op = call.operation.value if call.operation else "unknown"
                c["reads" if op == "select" else "unknown" if op == "unknown" else "writes"] += 1
                if plan is not None and plan.fix.value in ("auto", "review"):
                    c[plan.fix.value] += 1
        if verdict.status is Status.DYNAMIC and call.table is not None:
            for candidate in dict.fromkeys(call.table.candidates):
                if candidate in self.legacy:
                    self.legacy[candidate]["dynamic"] += 1

    def _gaps(self, plan: Plan) -> None:
        seen = set()
        for fate in plan.fates:
            rule = self.rules.lookup(fate.legacy) if self.rules is not None else None
            if fate.fate is not Fate.MISSING or rule is None:
                continue
            key = (rule.target, fate.new or fate.column)
            gap = self.gaps.setdefault(key, {"calls": 0, "legacy": {}})
            gap["legacy"].setdefault(fate.legacy, fate.column)
            if key not in seen:  # calls, not occurrences
                seen.add(key)
                gap["calls"] += 1

    def target_gaps(self) -> list[dict[str, Any]]:
        """Each column the code uses on a legacy table that its target lacks (after renames and
        drops): the calls that wait for it, its legacy type where a legacy schema says, and the
        statement that adds it to the target schema."""
        out = []
        for (target, column), gap in self.gaps.items():
            from tableshift.db.catalog import quote  # the database side's module: only for a gap

            types = {legacy: self.legacy_types.get((legacy, old)) for legacy, old in gap["legacy"].items()}
            known = [t for t in types.values() if t]
            kind = known[0] if known else None
            table = ".".join(quote(part) for part in target.split("."))
            ddl = f"ALTER TABLE {table} ADD COLUMN {quote(column)} {kind or 'text'};"
            if kind is None:
                ddl += "  -- type not known: give --legacy-schema, or choose it"
            elif len(set(known)) > 1:
                ddl += "  -- the legacy tables disagree: " + ", ".join(f"{t} in {legacy}" for legacy, t in types.items() if t)
            out.append({"target": target, "column": column, "type": kind, "calls": gap["calls"], "legacy": sorted(gap["legacy"]), "ddl": ddl})
        return sorted(out, key=lambda g: (-g["calls"], g["target"], g["column"]))

    def _row(self, name: str) -> dict[str, Any]:
        if name not in self.tables:
            rule = self.rules.lookup(name) if self.rules is not None else None
            self.tables[name] = {
                "name": name,
                "calls": 0,
                "embedded": 0,
                "realtime": 0,
                "types": 0,  # generated types naming it (`Tables<'x'>`)
                "rest": 0,  # of its calls, those over plain HTTP (`/rest/v1/x`)
                "sql": 0,  # SQL in strings reading or writing it
                "files": 0,
                "operations": dict.fromkeys(_OPS, 0),
                "legacy": None if self.rules is None else rule is not None,
                "target": rule.target if rule is not None else None,
            }
        return self.tables[name]

    def header(self) -> dict[str, Any]:
        """Everything but the calls, in the schema's key order."""
        s = self.summary
        summary: dict[str, Any] = {
            "files_scanned": s["files_scanned"],
            "files_with_calls": self.files_with_calls,
            "calls": s["calls"],
            "certain_calls": s["certain_calls"],
            "dynamic_calls": s["dynamic_calls"],
            "tables": len(self.certain_names),
            "storage_calls": sum(self.named[Kind.STORAGE].values()),
            "rpc_calls": sum(self.named[Kind.RPC].values()),
            "realtime_calls": s["realtime_calls"],
            "helper_calls": s["helper_calls"],
            "type_references": s["type_references"],
            "rest_calls": s["rest_calls"],  # PostgREST over plain HTTP; dynamic ones among them:
            "dynamic_rest_calls": s["dynamic_rest_calls"],
            "sql_uses": s["sql_uses"],  # tables named by SQL in strings
            "parse_errors": len(self.parse_errors),
            "calls_in_error_regions": s["calls_in_error_regions"],
            "suppressed_calls": s["suppressed_calls"],
            "unreadable_files": len(self.unreadable),
            "skipped_files": len(self.skipped),
        }
        for name, row in self.tables.items():
            row["files"] = len(self.table_files[name])
        tables = sorted(self.tables.values(), key=lambda r: (-(r["calls"] + r["embedded"] + r["realtime"] + r["types"]), r["name"]))
        report: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "tableshift", "version": __version__},
            "rules": None if self.rules is None else {"name": self.rules.name, "path": self.rules.path},
            "summary": summary,
            "tables": tables,
        }
        if self.rules is not None:
            summary["status"] = {st.value: self.statuses.get(st.value, 0) for st in Status}
            summary["fix"] = {f.value: self.fixes.get(f.value, 0) for f in Fix}
            report["legacy"] = [
                {
                    "table": rule.legacy,
                    "target": rule.target,
                    "group": rule.group,
                    **{k: self.legacy[rule.legacy].get(k, 0) for k in ("calls", "embedded", "realtime", "dynamic")},
                    "files": len(self.legacy_files[rule.legacy]),
                    **{k: self.legacy[rule.legacy].get(k, 0) for k in ("reads", "writes", "unknown", "auto", "review")},
                    **{k: self.legacy[rule.legacy].get(k, 0) for k in ("types", "types_auto", "types_review", "sql", "rpc")},
                }
                for rule in self.rules.tables
            ]
        if self.rules is not None:
            report["target_gaps"] = self.target_gaps()
        report["storage"] = self._named(Kind.STORAGE, "bucket")
        report["rpc"] = self._named(Kind.RPC, "function")
        report["files"] = {"parse_errors": sorted(self.parse_errors), "unreadable": self.unreadable, "skipped": self.skipped}
        return report

    def _named(self, kind: Kind, key: str) -> list[dict[str, Any]]:
        rows = [{key: name, "calls": n, "files": len(self.named_files[(kind, name)])} for name, n in self.named[kind].items()]
        return sorted(rows, key=lambda r: (-r["calls"], r[key] or ""))

    def extras(self) -> dict[str, Any]:
        """What the human formats need beyond the header, without the full call list."""
        return {
            "per_file": self.per_file,
            "dynamic_per_file": self.dynamic_per_file,
            "flagged_per_file": self.flagged_per_file,
            "dynamic_calls": self.dynamic_calls,
        }


class _Chunk:
    """A file's calls as the audit's JSON lists them (`render.entry_text` of each, joined by `,\\n`)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def append(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)

    def text(self) -> bytes:
        """Written at once: the list as the value of an object's key is indented as the audit's
        `calls` are, so one call of orjson (its head and tail cut off) does what one per call did.
        Text that is not valid Unicode is scrubbed per call, as `entry_text` does it."""
        if not self.entries:
            return b""
        try:
            whole = orjson.dumps({"calls": self.entries}, option=orjson.OPT_INDENT_2)
        except orjson.JSONEncodeError:
            return b",\n".join(entry_text(entry) for entry in self.entries)
        return whole[len(_HEAD) : -len(_TAIL)]


_HEAD = b'{\n  "calls": [\n'
_TAIL = b"\n  ]\n}"


class AuditPart:
    """The audit's product of a file's outcome (`engine.Product`): what adding it to the audit
    does, made where the file is scanned; `AuditBuilder.merge` folds it in."""

    name = "audit-part:2"

    def __init__(self, rules: RuleSet | None) -> None:
        self.rules = rules

    def __call__(self, outcome: FileOutcome, source: object = None) -> bytes:
        """The builder's state pickled, its last item the size of the calls' JSON, which follows the
        pickle (`pickle.loads` reads no further): `merge` keeps a view of it, never a copy."""
        builder = AuditBuilder(self.rules, _Chunk())
        builder.add(outcome)
        chunk = builder.sink.text()
        return pickle.dumps((*builder._state(), len(chunk)), protocol=pickle.HIGHEST_PROTOCOL) + chunk


def build(result: ScanResult, rules: RuleSet | None) -> dict[str, Any]:
    """The whole audit as JSON-ready data, sorted so that it diffs well."""
    builder = AuditBuilder(rules)
    for outcome in result.outcomes:
        builder.add(outcome)
    report = builder.header()
    report["calls"] = builder.sink
    return report


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
        "form": call.form,
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
