"""Pure judgement of one call against a RuleSet: ok, legacy or dynamic, with a target and reasons."""

from __future__ import annotations

from tableshift.model import Call, Kind, Status, Verdict
from tableshift.rules import RuleSet


def classify(call: Call, rules: RuleSet | None) -> Verdict:
    """The verdict for `call`; without rules there is no status to give."""
    if rules is None:
        return Verdict(call, None, reasons=call.table.reasons if call.table else ())
    rpc = call.name if call.schema in (None, "public") else f"{call.schema}.{call.name}"
    if call.kind is Kind.RPC and rules.function(rpc):
        # the function's body uses legacy tables: the call keeps working only while the function does
        uses = rules.function(rpc)
        legacy = tuple(dict.fromkeys(table for table, _ in uses))
        reasons = tuple(f"function {call.name!r} uses legacy table {table!r} ({how}): carry it to {r.target!r} or rewrite it" if (r := rules.lookup(table)) else f"function {call.name!r} uses {table!r}" for table, how in uses)
        return Verdict(call, Status.LEGACY, reasons=reasons, legacy_tables=legacy)
    if call.kind is Kind.RPC and call.table is not None and not call.table.certain:
        # a function among candidates: any of them using a legacy table makes the call dynamic
        hits = [(fn, t) for fn in call.table.candidates for t, _ in rules.function(fn)]
        if hits:
            reasons = (*call.table.reasons, *(f"may call function {fn!r}, which uses legacy table {t!r}" for fn, t in hits))
            return Verdict(call, Status.DYNAMIC, reasons=reasons)
    if call.kind in (Kind.STORAGE, Kind.RPC) or call.table is None:
        return Verdict(call, Status.OK)

    table = call.table
    reasons: list[str] = []
    legacy: list[str] = []
    status = Status.OK
    target: str | None = None

    if table.certain:
        rule = rules.lookup(table.name, call.schema)
        if rule is not None:
            status, target = Status.LEGACY, rule.target
            legacy.append(rule.legacy)
            reasons.append(f"legacy table {rule.legacy!r}: use {rule.target!r}")
    else:
        reasons.extend(table.reasons)
        hits = [r for r in (rules.lookup(c, call.schema) for c in table.candidates) if r is not None]
        if hits or not table.candidates:
            status = Status.DYNAMIC
            if hits:
                names = ", ".join(repr(r.legacy) for r in hits)
                reasons.append(f"may name legacy table {names}")
            else:
                reasons.append("table not known statically")

    for embed in call.columns.all_embedded():
        rule = rules.lookup(embed.table, call.schema)
        if rule is None:
            continue
        if rule.legacy not in legacy:
            legacy.append(rule.legacy)
        reasons.append(f"embeds legacy table {rule.legacy!r}: use {rule.target!r}")
        if status is Status.OK:
            status = Status.LEGACY
    return Verdict(call, status, target=target, reasons=tuple(reasons), legacy_tables=tuple(legacy))
