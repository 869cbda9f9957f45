"""The audit report cut into titled tables, so every human format shows the same thing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

TOP_FILES = 10


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


def extras_from_calls(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "per_file": Counter(c["file"] for c in calls),
        "dynamic_per_file": Counter(c["file"] for c in calls if c["dynamic"]),
        "flagged_per_file": Counter(c["file"] for c in calls if c["in_error_region"]),
        "dynamic_calls": [c for c in calls if c["dynamic"]],
    }


def audit_sections(report: dict[str, Any], extras: dict[str, Any] | None = None) -> list[Section]:
    """The human report: `extras` (per-file counts, dynamic calls) come from the builder or the calls."""
    if extras is None:
        extras = extras_from_calls(report["calls"])
    s = report["summary"]
    out = [
        Section(
            "Summary",
            ("what", "count"),
            tuple(
                (label, str(s[key]))
                for label, key in (
                    ("files scanned", "files_scanned"),
                    ("files with calls", "files_with_calls"),
                    ("table calls", "calls"),
                    ("  certain table", "certain_calls"),
                    ("  dynamic table", "dynamic_calls"),
                    ("distinct tables", "tables"),
                    ("storage calls", "storage_calls"),
                    ("rpc calls", "rpc_calls"),
                    ("realtime subscriptions", "realtime_calls"),
                    ("helper calls passing a table", "helper_calls"),
                    ("generated types naming a table", "type_references"),
                    ("PostgREST requests over plain HTTP", "rest_calls"),
                    ("tables named by SQL in strings", "sql_uses"),
                    ("files with parse errors", "parse_errors"),
                )
            )
            + tuple((f"status {k}", str(v)) for k, v in s.get("status", {}).items())
            + tuple((f"patch {k}", str(v)) for k, v in s.get("fix", {}).items()),
        )
    ]
    if report.get("legacy") is not None:
        out.append(
            Section(
                f"Legacy tables ({report['rules']['name']})",
                ("legacy table", "target", "group", "calls", "reads", "writes", "op?", "embeds", "dynamic", "auto", "review", "types", "files"),
                tuple(
                    (r["table"], r["target"], r["group"], *map(str, (r["calls"], r["reads"], r["writes"], r["unknown"], r["embedded"], r["dynamic"], r["auto"], r["review"], r["types"], r["files"])))
                    for r in report["legacy"]
                ),
                note="op?: operation unknown; embeds: uses inside other calls' select strings; dynamic: calls whose table is not known but may be this one; auto / review: what `tableshift patch` can rewrite; types: generated types naming it (`Tables<'x'>`)",
            )
        )
    if report.get("target_gaps"):
        out.append(
            Section(
                "Target gaps: columns the code uses that the targets lack",
                ("target", "column", "type", "calls", "from", "DDL"),
                tuple((g["target"], g["column"], g["type"] or "?", str(g["calls"]), ", ".join(g["legacy"]), g["ddl"]) for g in report["target_gaps"]),
                note="add these statements to the target schema (the rules' `schema`) and run `patch` again: the calls waiting for them are rewritten",
            )
        )
    ops = ("select", "insert", "update", "upsert", "delete", "unknown")
    if report.get("database") is not None:
        out.append(database_section(report["database"]))
    out.append(
        Section(
            "Tables by usage",
            ("table", "calls", *ops[:-1], "op?", "embeds", "realtime", "types", "files", "legacy → target"),
            tuple(
                (
                    t["name"],
                    str(t["calls"]),
                    *(str(t["operations"][o]) for o in ops),
                    str(t["embedded"]),
                    str(t["realtime"]),
                    str(t["types"]),
                    str(t["files"]),
                    t["target"] or "",
                )
                for t in report["tables"]
            ),
        )
    )
    per_file = extras["per_file"]
    dyn_file = extras["dynamic_per_file"]
    out.append(
        Section(
            f"Files with the most calls (top {TOP_FILES})",
            ("file", "calls", "dynamic"),
            tuple((f, str(n), str(dyn_file[f])) for f, n in sorted(per_file.items(), key=lambda x: (-x[1], x[0]))[:TOP_FILES]),
        )
    )
    dynamic = extras["dynamic_calls"]
    out.append(
        Section(
            "Dynamic calls (table not known statically)",
            ("location", "kind", "candidates", "status", "reasons"),
            tuple(
                (f"{c['file']}:{c['line']}", c["kind"], ", ".join(c["candidates"]) or "-", c["status"] or "-", "; ".join(c["reasons"]))
                for c in dynamic
            ),
        )
    )
    out.append(Section("Storage buckets", ("bucket", "calls", "files"), tuple((r["bucket"] or "(dynamic)", str(r["calls"]), str(r["files"])) for r in report["storage"])))
    out.append(Section("RPC functions", ("function", "calls", "files"), tuple((r["function"] or "(dynamic)", str(r["calls"]), str(r["files"])) for r in report["rpc"])))
    flagged = extras["flagged_per_file"]
    out.append(
        Section(
            "Files with parse errors",
            ("file", "calls in error regions"),
            tuple((f, str(flagged[f])) for f in report["files"]["parse_errors"]),
            note="tree-sitter recovers from syntax errors; calls inside error regions are flagged",
        )
    )
    if report["files"]["skipped"]:
        out.append(
            Section(
                "Skipped files",
                ("file", "reason"),
                tuple((u["path"], u["reason"]) for u in report["files"]["skipped"]),
                note="not scanned: raise --max-file-size to include large files",
            )
        )
    if report["files"]["unreadable"]:
        out.append(Section("Unreadable files", ("file", "error"), tuple((u["path"], u["error"]) for u in report["files"]["unreadable"])))
    return out


def database_section(database: dict[str, Any]) -> Section:
    """What in the database uses each table: the code the code audit cannot see."""
    rows: list[tuple[str, ...]] = []
    for entry in database["tables"]:
        if not entry["found"]:
            rows.append((entry["table"], "-", "(not in the schema)", ""))
        elif not entry["uses"]:
            rows.append((entry["table"], "-", "(nothing)", ""))
        for use in entry["uses"]:
            rows.append((entry["table"], use["kind"], use["name"], use["detail"]))
    return Section(
        f"Database objects using these tables ({database['source']})",
        ("table", "kind", "object", "detail"),
        tuple(rows),
        note="after `contract`, what PostgreSQL ties to a table by its oid would read the archive: `sql` recreates or repoints it, or refuses, naming it",
    )
