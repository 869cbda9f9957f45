"""The CI gate's output: text, GitHub workflow commands, SARIF 2.1.0 and JSON, all from one record."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from tableshift import __version__
from tableshift.baseline import DYNAMIC, Comparison, Finding
from tableshift.report.escape import clean_text, json_text, printable
from tableshift.rewrite import Fix
from tableshift.rules import RuleSet

SCHEMA_VERSION = 1

# the code each finding carries in text output, and in SARIF as the rule's `properties.code`
CODES = {"legacy-table": "TS001", "dynamic-legacy-table": "TS002", "suppression-without-reason": "TS003", "unchecked-file": "TS004"}
RULES = (
    ("legacy-table", "LegacyTableUsage", "New use of a legacy table", "error"),
    ("dynamic-legacy-table", "DynamicLegacyTableUsage", "New call whose table is not known and may be legacy", "warning"),
    ("suppression-without-reason", "SuppressionWithoutReason", "A tableshift-ignore comment must give a reason", "error"),
    ("unchecked-file", "UncheckedFile", "A file that may hold query calls could not be checked", "error"),
)


def unchecked_message(reason: str) -> str:
    return (
        f"not checked ({reason}) yet it mentions a query call: make it readable, raise --max-file-size, "
        "pass --no-skip-minified, or exclude it in tableshift.toml"
    )


def _message(f: Finding, rules: RuleSet) -> str:
    use = f.use
    tail = f"{f.count} call{'s' if f.count != 1 else ''} here, baseline allows {f.allowed}"
    if use.table == DYNAMIC:
        table = use.plan.call.table
        maybe = ", ".join(repr(c) for c in (table.candidates if table else ()) if rules.lookup(c))
        why = "; ".join(table.reasons) if table and table.reasons else "not known statically"
        what = f"table may be legacy {maybe}" if maybe else "table is not known statically and may be legacy"
        return f"{what} ({why}): {tail}"
    rule = rules.lookup(use.table)
    target = f" (use {rule.target!r})" if rule is not None else ""
    own = use.plan.call.table
    how = "legacy table" if own is not None and own.name == use.table else "embeds legacy table"
    return f"{how} {use.table!r}{target}: {tail}"


def _finding(f: Finding, rules: RuleSet, level: str) -> dict[str, Any]:
    call = f.use.plan.call
    rule = rules.lookup(f.use.table) if f.use.table != DYNAMIC else None
    return {
        "file": call.file,
        "line": call.start.line,
        "column": call.start.column,
        "end_line": call.end.line,
        "end_column": call.end.column,
        "table": None if f.use.table == DYNAMIC else f.use.table,
        "kind": call.kind.value,  # table, realtime, type, helper...
        "target": rule.target if rule is not None else None,
        "status": f.use.plan.verdict.status.value if f.use.plan.verdict.status else None,
        "fix": f.use.plan.fix.value,
        "level": level,
        "count": f.count,
        "allowed": f.allowed,
        "message": _message(f, rules),
        "code": call.code,
    }


def build(comparison: Comparison, rules: RuleSet, *, strict: bool, files_scanned: int, display) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The check result as data; `display` turns a baseline key into a path relative to the current directory."""
    warn_level = "error" if strict else "warning"
    new = [_finding(f, rules, "error") for f in comparison.new]
    warnings = [_finding(f, rules, warn_level) for f in comparison.warnings]
    errors = [
        {
            "file": p.call.file,
            "line": p.call.start.line,
            "column": p.call.start.column,
            "message": "tableshift-ignore needs a reason: `"
            + ("#" if p.call.language == "python" else "//")
            + " tableshift-ignore: why this call may stay`",
        }
        for p in comparison.unreasoned
    ]
    tightenable = [
        {"file": display(t.key), "table": t.table, "count": t.count, "allowed": t.allowed} for t in comparison.tightenable
    ]
    passed = not new and not errors and not (strict and warnings)
    return {
        "schema_version": SCHEMA_VERSION,
        "new": new,
        "warnings": warnings,
        "errors": errors,
        "tightenable": tightenable,
        "summary": {
            "files_scanned": files_scanned,
            "legacy_uses": comparison.total,
            "files_with_legacy_uses": comparison.files,
            "new": len(new),
            "warnings": len(warnings),
            "errors": len(errors),
            "tightenable": len(tightenable),
            "suppressed": comparison.suppressed,
            "strict": strict,
            "passed": passed,
        },
    }


def plural(n: int, noun: str) -> str:
    """`1 file`, `2 files`: one wording for every count."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def summary_line(data: dict[str, Any]) -> str:
    s = data["summary"]
    head = "tableshift check: " + ("passed" if s["passed"] else "FAILED")
    kind = "error" if s["strict"] else "warning"
    parts = [f"{s['new']} new legacy call{'s' if s['new'] != 1 else ''}", f"{s['warnings']} dynamic {kind}{'s' if s['warnings'] != 1 else ''}"]
    if s["errors"]:
        parts.append(f"{s['errors']} suppression{'s' if s['errors'] != 1 else ''} without a reason")
    parts.append(
        f"{plural(s['legacy_uses'], 'legacy use')} in {plural(s.get('files_with_legacy_uses', 0), 'file')}"
        f" ({plural(s['files_scanned'], 'file')} scanned)"
    )
    if s["suppressed"]:
        parts.append(f"{s['suppressed']} suppressed")
    line = f"{head}: " + ", ".join(parts)
    if s.get("unchecked"):
        line += f"; {s['unchecked']} file{'s' if s['unchecked'] != 1 else ''} that may hold calls could not be checked"
    if s.get("not_checked"):
        line += f"; {s['not_checked']} file{'s' if s['not_checked'] != 1 else ''} not checked (skipped or unparsable)"
    if s["tightenable"]:
        line += f"; usage dropped in {s['tightenable']} place{'s' if s['tightenable'] != 1 else ''}: run `tableshift baseline --update` to tighten the baseline"
    return line


def to_text(data: dict[str, Any], *, color: bool = False) -> str:
    """One line per finding, `path:line:col: CODE message` (as ruff and eslint print them, the code
    as in SARIF), path and code coloured on a terminal; the summary last."""
    p = printable

    def line(place: str, rule: str, message: str, *, level: str = "error") -> str:
        code = CODES[rule]
        if color:
            hue = "31" if level == "error" else "33"
            return f"\x1b[1m{place}\x1b[0m: \x1b[{hue};1m{code}\x1b[0m {message}"
        return f"{place}: {code} {message}"

    lines = [line(f"{p(f['file'])}:{f['line']}:{f['column']}", "legacy-table", p(f["message"])) for f in data["new"]]
    lines += [line(f"{p(f['file'])}:{f['line']}:{f['column']}", "dynamic-legacy-table", f"{f['level']}: {p(f['message'])}", level=f["level"]) for f in data["warnings"]]
    lines += [line(f"{p(e['file'])}:{e['line']}:{e['column']}", "suppression-without-reason", p(e["message"])) for e in data["errors"]]
    lines += [f"{p(t['file'])}: {t['table']}: {t['count']} calls now, baseline allows {t['allowed']} (can be tightened)" for t in data["tightenable"]]
    lines += [line(p(u["file"]), "unchecked-file", f"error: {p(u['message'])}") for u in data.get("unchecked", [])]
    lines += [f"{p(u['file'])}: not checked: {p(u['reason'])}" for u in data.get("not_checked", []) if not u.get("may_hold_calls")]
    lines.append(summary_line(data))
    return "\n".join(lines) + "\n"


def _gh_data(text: str) -> str:
    text = "\n".join(printable(line) for line in text.split("\n"))  # newlines are escaped below; other controls here
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def to_github(data: dict[str, Any]) -> str:
    """GitHub Actions workflow commands: each finding shows inline on the pull request."""
    lines = []
    for f in data["new"] + data["warnings"]:
        kind = "error" if f["level"] == "error" else "warning"
        title = f"tableshift: {f['table'] or 'dynamic table'}"
        props = (
            f"file={_gh_prop(f['file'])},line={f['line']},col={f['column']},endLine={f['end_line']},"
            f"endColumn={f['end_column']},title={_gh_prop(title)}"
        )
        lines.append(f"::{kind} {props}::{_gh_data(f['message'])}")
    for u in data.get("unchecked", []):
        lines.append(f"::error file={_gh_prop(u['file'])},title={_gh_prop('tableshift: not checked')}::{_gh_data(u['message'])}")
    for u in data.get("not_checked", []):
        if not u.get("may_hold_calls"):
            lines.append(f"::warning file={_gh_prop(u['file'])},title={_gh_prop('tableshift: not checked')}::{_gh_data(u['reason'])}")
    for e in data["errors"]:
        props = f"file={_gh_prop(e['file'])},line={e['line']},col={e['column']},title={_gh_prop('tableshift: suppression')}"
        lines.append(f"::error {props}::{_gh_data(e['message'])}")
    lines.append(summary_line(data))
    return "\n".join(lines) + "\n"


def to_sarif(data: dict[str, Any], comparison: Comparison, rules: RuleSet) -> dict[str, Any]:
    """SARIF 2.1.0; `auto` calls carry a fix with the replacement, so code scanning can suggest it."""
    rule_index = {rid: i for i, (rid, *_rest) in enumerate(RULES)}
    results = []
    findings = [(f, "legacy-table", d) for f, d in zip(comparison.new, data["new"], strict=True)]
    findings += [(f, "dynamic-legacy-table", d) for f, d in zip(comparison.warnings, data["warnings"], strict=True)]
    for finding, rule_id, entry in findings:
        call = finding.use.plan.call
        result: dict[str, Any] = {
            "ruleId": rule_id,
            "ruleIndex": rule_index[rule_id],
            "level": entry["level"],
            "message": {"text": entry["message"]},
            "locations": [_location(entry["file"], entry["line"], entry["column"], entry["end_line"], entry["end_column"])],
            "partialFingerprints": {
                "tableshift/v1": hashlib.sha256(clean_text(f"{entry['file']}\0{finding.use.table}\0{call.chain}").encode()).hexdigest()[:32]
            },
        }
        plan = finding.use.plan
        if plan.fix is Fix.AUTO and plan.edits:
            result["fixes"] = [
                {
                    "description": {"text": f"Rewrite to {entry['target'] or 'the target tables'} (tableshift patch)"},
                    "artifactChanges": [
                        {
                            "artifactLocation": {"uri": _uri(entry["file"]), "uriBaseId": "%SRCROOT%"},
                            "replacements": [
                                {
                                    "deletedRegion": {"byteOffset": e.span.start, "byteLength": e.span.end - e.span.start},
                                    "insertedContent": {"text": e.text},
                                }
                                for e in plan.edits
                            ],
                        }
                    ],
                }
            ]
        results.append(result)
    for u in data.get("unchecked", []):
        results.append(
            {
                "ruleId": "unchecked-file",
                "ruleIndex": rule_index["unchecked-file"],
                "level": "error",
                "message": {"text": u["message"]},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(u["file"]), "uriBaseId": "%SRCROOT%"}}}],
            }
        )
    for e in data["errors"]:
        results.append(
            {
                "ruleId": "suppression-without-reason",
                "ruleIndex": rule_index["suppression-without-reason"],
                "level": "error",
                "message": {"text": e["message"]},
                "locations": [_location(e["file"], e["line"], e["column"], None, None)],
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tableshift",
                        "version": __version__,
                        "rules": [
                            {
                                "id": rid,
                                "name": name,
                                "shortDescription": {"text": short},
                                "defaultConfiguration": {"level": level},
                                "properties": {"code": CODES[rid]},
                                "help": {"text": f"{short}. Rules file: {rules.name}. Use the target tables, or add `tableshift-ignore: <reason>` with a reason."},
                            }
                            for rid, name, short, level in RULES
                        ],
                    }
                },
                "automationDetails": {"id": f"tableshift/{rules.name}/"},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def _uri(path: str) -> str:
    return quote(path, safe="/")


def _location(file: str, line: int, column: int, end_line: int | None, end_column: int | None) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": line, "startColumn": column}
    if end_line is not None and end_column is not None:
        region.update(endLine=end_line, endColumn=end_column)
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(file), "uriBaseId": "%SRCROOT%"}, "region": region}}


def render(fmt: str, data: dict[str, Any], comparison: Comparison, rules: RuleSet, *, color: bool = False) -> str:
    if fmt == "json":
        return json_text(data)
    if fmt == "sarif":
        return json_text(to_sarif(data, comparison, rules))
    if fmt == "github":
        return to_github(data)
    return to_text(data, color=color)
