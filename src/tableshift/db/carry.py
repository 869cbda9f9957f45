"""What the legacy tables guaranteed, carried to their targets in the phase it concerns, or
refused by name: row-level security and policies, grants (and the targets' sequences), business
triggers and realtime publications in `expand`; publications left and what `contract` cannot
carry yet (foreign keys other tables hold, objects that depend on a legacy table) in `contract`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from tableshift.db import references
from tableshift.sqltree import nodes
from tableshift.db.catalog import comment, literal, quote
from tableshift.db.surroundings import Dependent, NotCarried, Policy, Trigger, rename_columns
from tableshift.errors import UsageError

if TYPE_CHECKING:
    from tableshift.db.migration import Move

NAME_LIMIT = 63


def name_for(legacy: str, name: str) -> str:
    """The name a legacy table's policy or trigger takes on its target: `<legacy>: <name>`,
    cut with a hash of the whole past PostgreSQL's 63 bytes."""
    whole = f"{legacy}: {name}"
    if len(whole.encode()) <= NAME_LIMIT:
        return whole
    digest = hashlib.sha256(whole.encode()).hexdigest()[:10]
    return whole.encode()[: NAME_LIMIT - 11].decode("utf-8", "ignore") + "_" + digest


def scope(move: Move, *, restrictive: bool = False, prefix: str = "") -> str | None:
    """For a merged table, the condition that a target row is this legacy table's."""
    if not move.where:
        return None
    conditions = [f"{prefix}{quote(c)} = {literal(v)}" for c, v in move.where]
    mine = " AND ".join(conditions)
    return f"NOT ({mine})" if restrictive else mine


def _grantee(role: str) -> str:
    return "PUBLIC" if role.lower() == "public" else quote(role)


def _renames_and_dropped(move: Move) -> tuple[dict[str, str], set[str]]:
    """How a legacy policy's columns read on the target: the renamed ones, and those it lacks."""
    renames = {old.name: new.name for old, new in move.copied if old.name != new.name}
    dropped = {old.name for old in move.legacy.columns if move.target.column(move.rule.rename(old.name) or old.name) is None}
    return renames, dropped


def policies(move: Move, refused: list[str]) -> list[str]:
    out: list[str] = []
    renames, dropped = _renames_and_dropped(move)
    for policy in move.around.policies:
        try:
            out += _policy(move, policy, renames, dropped)
        except NotCarried as why:
            refused.append(f"policy {policy.name!r} of {move.legacy.name} cannot be carried to {move.target.name}: {why}")
    return out


def _policy(move: Move, policy: Policy, renames: dict[str, str], dropped: set[str]) -> list[str]:
    name, using, check = _policy_parts(move, policy, renames, dropped)
    roles = ", ".join(_grantee(r) for r in policy.roles) or "PUBLIC"
    text = (
        f"CREATE POLICY {name} ON {move.target.qualified} AS {'PERMISSIVE' if policy.permissive else 'RESTRICTIVE'}"
        f" FOR {policy.command} TO {roles}"
        + (f" USING ({using})" if using is not None else "")
        + (f" WITH CHECK ({check})" if check is not None else "")
        + ";"
    )
    return [f"DROP POLICY IF EXISTS {name} ON {move.target.qualified};", text]


def rebound_policies(plan: list[Move]) -> list[str]:
    """`contract`: each policy carried to a target that reads a legacy table (a sub-query on another
    table of the plan) bound again by name, so that it reads that table's view, not the archive."""
    from tableshift.db.surroundings import _relations

    legacy = {m.legacy.name for m in plan}
    out: list[str] = []
    for move in plan:
        renames, dropped = _renames_and_dropped(move)
        for policy in move.around.policies:
            if not any(name in legacy for e in (policy.using, policy.check) if e for _, name in _relations(e)):
                continue
            name, using, check = _policy_parts(move, policy, renames, dropped)
            out.append(
                f"ALTER POLICY {name} ON {move.target.qualified}"
                + (f" USING ({using})" if using is not None else "")
                + (f" WITH CHECK ({check})" if check is not None else "")
                + ";"
            )
    return out


def _policy_parts(move: Move, policy: Policy, renames: dict[str, str], dropped: set[str]) -> tuple[str, str | None, str | None]:
    """A legacy policy's name on the target and its expressions there."""

    def carried(expression: str | None) -> str | None:
        if expression is None:
            return None
        text = rename_columns(expression, renames, dropped, legacy=move.legacy.name, target=move.target.name, columns=move.around.relation_columns)
        mine = scope(move, restrictive=not policy.permissive)
        if mine is None:
            return text
        return f"({mine}) OR ({text})" if not policy.permissive else f"({mine}) AND ({text})"

    using = carried(policy.using)
    check = carried(policy.check)
    if policy.command != "INSERT" and using is None and move.where:
        using = scope(move, restrictive=not policy.permissive)
    if policy.command in ("INSERT", "UPDATE", "ALL") and check is None and policy.using is None and move.where:
        check = scope(move, restrictive=not policy.permissive)
    return quote(name_for(move.legacy.name, policy.name)), using, check


def expand(plan: list[Move]) -> tuple[list[str], list[str]]:
    """The lines `expand` adds for each target, and the warnings to say aloud."""
    out: list[str] = []
    warnings: list[str] = []
    refused: list[str] = []  # every object that cannot be carried, each named: expand refuses
    by_target: dict[str, list[Move]] = {}
    for move in plan:
        by_target.setdefault(move.target.qualified, []).append(move)
    for target, moves in by_target.items():
        legacy_names = ", ".join(m.legacy.name for m in moves)
        out += ["", f"-- {comment(moves[0].target.name)}: what {comment(legacy_names)} guaranteed"]
        if any(m.around.rls for m in moves):
            out.append(f"ALTER TABLE {target} ENABLE ROW LEVEL SECURITY;")
        if any(m.around.force_rls for m in moves):
            out.append(f"ALTER TABLE {target} FORCE ROW LEVEL SECURITY;")
        for move in moves:
            out += policies(move, refused)
        grants: dict[str, set[str]] = {}
        for move in moves:
            for role, privilege in move.legacy.grants:
                grants.setdefault(role, set()).add(privilege)
        order = ["SELECT", "INSERT", "UPDATE", "DELETE"]
        for role, privileges in sorted(grants.items()):
            out.append(f"GRANT {', '.join(p for p in order if p in privileges)} ON {target} TO {_grantee(role)};")
            if privileges & {"INSERT", "UPDATE"}:
                for sequence in moves[0].target_around.sequences:
                    out.append(f"GRANT USAGE, SELECT ON SEQUENCE {sequence} TO {_grantee(role)};")
        if not grants:
            note = f"no grants found on {legacy_names}: {moves[0].target.name} gets none (only its owner can use it)"
            out.append(f"-- {comment(note)}")
            warnings.append(note)
        for move in moves:
            out += triggers(move, refused)
        publications = sorted({p for m in moves for p in m.around.publications})
        for publication in publications:
            out += _do_if(
                f"NOT EXISTS (SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid"
                f" WHERE p.pubname = {literal(publication)} AND r.prrelid = {literal(target)}::regclass)",
                f"ALTER PUBLICATION {quote(publication)} ADD TABLE {target};",
            )
        if any(m.around.replica_identity == "f" for m in moves):
            out.append(f"ALTER TABLE {target} REPLICA IDENTITY FULL;")
        out += references.expand(moves, plan)
    refused += references.refusals(plan)
    if refused:
        raise UsageError(f"expand: {len(refused)} object(s) cannot be carried: " + "; ".join(refused))
    return out, warnings


def _do_if(condition: str, statement: str) -> list[str]:
    from tableshift.db.migration import _do

    return _do(["BEGIN", f"  IF {condition} THEN", f"    {statement}", "  END IF;", "END"])


def triggers(move: Move, refused: list[str]) -> list[str]:
    out: list[str] = []
    for trigger in move.around.triggers:
        try:
            out += _trigger(move, trigger)
        except NotCarried as why:
            refused.append(f"trigger {trigger.name!r} of {move.legacy.name} cannot be carried to {move.target.name}: {why}")
    return out


def _trigger(move: Move, trigger: Trigger) -> list[str]:
    """A business trigger of the legacy table on its target, firing only for writes that do not
    come from another trigger (the dual-write: the legacy table's own trigger ran already)."""
    from pglast import ast, parser
    from pglast.stream import RawStream

    # legacy columns the target names otherwise or lacks: a trigger that reads one cannot be carried
    touched: dict[str, str] = {}
    renamed: dict[str, str] = {}
    prelude: list[str] = []
    for column in move.legacy.columns:
        name = move.rule.rename(column.name) or column.name
        if column.name in move.rule.drop or move.target.column(name) is None:
            touched[column.name] = f"which {move.target.name} lacks"
        elif name != column.name:
            touched[column.name] = f"which {move.target.name} names {name}"
            renamed[column.name] = name
    node = parser.parse_sql(trigger.definition)[0].stmt
    if touched:
        if trigger.fields is None:
            raise NotCarried(f"what its function {trigger.function} reads of the row cannot be known, and {move.target.name} names columns otherwise (carry it by hand)")
        in_definition = sorted(c for c in _trigger_columns(node) if c in touched)
        if in_definition:
            raise NotCarried(f"its definition names {in_definition[0]}, {touched[in_definition[0]]} (carry it by hand)")
        read = sorted(trigger.fields & set(touched))
        lost = [c for c in read if c not in renamed]
        if lost:
            raise NotCarried(f"it reads {lost[0]}, {touched[lost[0]]} (carry it by hand)")
        if read:  # its function, translated through the renames, under a name of its own
            function, statement = _translated(move, trigger, {c: renamed[c] for c in read})
            prelude.append(statement)
            node.funcname = tuple(ast.String(part) for part in function)
    if move.where:
        events = node.events
        insert_or_update = (1 << 2) | (1 << 4)  # TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE
        delete = 1 << 3
        if not node.row:
            raise NotCarried("a statement-level trigger of a merged table cannot tell its rows from the others'")
        record = "NEW" if events & insert_or_update and not events & delete else "OLD" if events == delete else None
        if record is None:
            raise NotCarried("it fires on deletes and on inserts or updates of a merged table")
        mine = " AND ".join(f"{record}.{quote(c)} = {literal(v)}" for c, v in move.where)
    else:
        mine = None
    name = name_for(move.legacy.name, trigger.name)
    node.trigname = name
    node.relation = ast.RangeVar(schemaname=move.target.schema, relname=move.target.name, inh=True, relpersistence="p")
    from tableshift.db.migration import _NOT_SYNCING

    conditions = [_NOT_SYNCING]  # not again for the dual-write of a legacy write
    if mine:
        conditions.append(mine)
    if node.whenClause is not None:
        conditions.append(f"({RawStream()(node.whenClause)})")
    node.whenClause = parser.parse_sql(f"SELECT {' AND '.join(conditions)}")[0].stmt.targetList[0].val
    return [*prelude, f"DROP TRIGGER IF EXISTS {quote(name)} ON {move.target.qualified};", RawStream()(node) + ";"]


def _translated(move: Move, trigger: Trigger, renames: dict[str, str]) -> tuple[tuple[str, str], str]:
    """The trigger's PL/pgSQL function as the target needs it: each `NEW.<column>` / `OLD.<column>`
    it reads renamed, as a function of its own (`<function>: <target>`). Checked by parsing the
    result again: it must read exactly the renamed fields, else it is not carried."""
    import re

    from pglast import ast, parser
    from pglast.stream import RawStream

    from tableshift.db.surroundings import record_fields

    if trigger.source is None or trigger.fields is None:
        raise NotCarried("its function cannot be translated")
    try:
        node = parser.parse_sql(trigger.source)[0].stmt
    except Exception:  # noqa: BLE001 - pglast's own error types
        raise NotCarried("its function does not parse") from None
    body = next((o for o in node.options or () if o.defname == "as"), None)
    if body is None or len(body.arg) != 1:
        raise NotCarried("its function's body cannot be read")
    text = body.arg[0].sval
    for old, new in renames.items():
        pattern = rf'(?i)\b(new|old)\s*\.\s*(?:"{re.escape(old)}"|{re.escape(old)}(?![\w$]))'
        text = re.sub(pattern, lambda m: f"{m.group(1)}.{quote(new)}", text)
    schema = node.funcname[0].sval if len(node.funcname) > 1 else move.target.schema
    name = name_for(node.funcname[-1].sval, move.target.name)
    body.arg = (ast.String(text),)
    node.funcname = (ast.String(schema), ast.String(name))
    node.replace = True
    statement = RawStream()(node) + ";"
    wanted = frozenset(renames.get(f, f) for f in trigger.fields)
    if record_fields("plpgsql", statement, name, ()) != wanted:
        raise NotCarried(f"its function reads {', '.join(sorted(renames))} in a way tableshift cannot translate (carry it by hand)")
    return (schema, name), statement


def _trigger_columns(node: object) -> set[str]:
    """The columns a trigger's definition names: `UPDATE OF` and NEW / OLD fields in its WHEN."""
    from pglast import ast

    out = {c.sval for c in getattr(node, "columns", None) or () if isinstance(c, ast.String)}
    for value in nodes(getattr(node, "whenClause", None)):
        if isinstance(value, ast.ColumnRef) and len(value.fields or ()) == 2 and isinstance(value.fields[1], ast.String):
            out.add(value.fields[1].sval)
    return out


def contract_refusals(plan: list[Move]) -> None:
    """What `contract` would silently break, and cannot carry: it refuses, naming each."""
    problems = []
    legacy = {(m.legacy.schema, m.legacy.name) for m in plan}
    for move in plan:
        shown = {old.name for old, _ in move.shown}
        for dependent in move.around.dependents:
            if dependent.table in legacy:
                continue
            if dependent.statement is None:
                what = {
                    "rule": "rewrite the rule by hand",
                    "materialized view": "other objects depend on it, so it cannot be dropped and made again: recreate them by hand",
                }.get(dependent.kind, "recreate it by hand after contract")
                problems.append(f"{dependent.kind} {dependent.name} reads {move.legacy.name} ({what})")
                continue
            lost = [c for c in dependent.columns if c not in shown]
            if lost:
                problems.append(f"{dependent.kind} {dependent.name} reads {move.legacy.name}.{lost[0]}, which its compatibility view does not have")
    problems += references.refusals(plan)
    if problems:
        raise UsageError(
            f"contract: {len(problems)} database object(s) would keep pointing at the archived tables: {problems[0]}"
            + (f" (and {len(problems) - 1} more: {'; '.join(problems[1:4])}{'; ...' if len(problems) > 4 else ''})" if len(problems) > 1 else "")
        )


def owner_view_name(legacy: str) -> str:
    """The view, in the archive schema, that views with their owner's rights read in a legacy
    table's place."""
    return name_for(legacy, "owner's view")


def owners_views(plan: list[Move]) -> dict[tuple[str, str], set[str]]:
    """The legacy tables read by a view that runs with its owner's rights, and those owners. Such a
    view cannot read the compatibility view in the table's place: that one checks the caller's
    rights on the target (security_invoker), where the table was read with the view owner's."""
    out: dict[tuple[str, str], set[str]] = {}
    for move in plan:
        for dependent in move.around.dependents:
            # a materialized view is always computed with its owner's rights
            if dependent.kind == "view" and not dependent.invoker or dependent.kind == "materialized view" and dependent.statement is not None:
                out.setdefault((move.legacy.schema, move.legacy.name), set()).add(dependent.owner)
    return out


def dependents(plan: list[Move], archive: str) -> list[str]:
    """After every compatibility view exists: each view and SQL-standard function that read a legacy
    table recreated from its own definition, so that it reads the view in the table's place (by
    name now, not by the archived table's oid): a view with its owner's rights reads the owner's
    view in the archive schema, the others the compatibility view. Owners, grants and options
    stay: the statements replace, they do not drop."""
    moved = owners_views(plan)
    seen: set[int] = set()
    out: list[str] = rebound_policies(plan)
    legacy = {(m.legacy.schema, m.legacy.name) for m in plan}
    for dependent in sorted((d for m in plan for d in m.around.dependents), key=lambda d: d.oid):
        if dependent.oid in seen or dependent.statement is None or dependent.table in legacy:
            continue  # a legacy table's own policy is archived with it (and was carried by expand)
        seen.add(dependent.oid)
        statement = dependent.statement
        if dependent.kind == "view" and not dependent.invoker and dependent.query is not None:
            statement = f"CREATE OR REPLACE VIEW {dependent.name}{dependent.with_options} AS\n{_read_owners_views(dependent, moved, archive)};"
        elif dependent.kind == "materialized view":  # no CREATE OR REPLACE: dropped, made again with its data, indexes, owner, grants
            statement = "\n".join(
                [
                    f"DROP MATERIALIZED VIEW {dependent.name};",
                    f"CREATE MATERIALIZED VIEW {dependent.name}{dependent.with_options} AS\n{_read_owners_views(dependent, moved, archive)}\nWITH DATA;",
                    dependent.statement,
                ]
            )
        out += [f"-- {comment(dependent.kind + ' ' + dependent.name)}", statement]
    return out


def _read_owners_views(dependent: Dependent, moved: dict[tuple[str, str], set[str]], archive: str) -> str:
    from pglast import ast, parser
    from pglast.stream import RawStream

    tree = parser.parse_sql(dependent.query or "")[0].stmt
    for value in list(nodes(tree)):
        if isinstance(value, ast.RangeVar) and (value.schemaname, value.relname) in moved:
            value.relname = owner_view_name(value.relname)
            value.schemaname = archive
    return RawStream()(tree)




def contract(move: Move, archive: str) -> list[str]:
    """After the move to `archive`: the archived table leaves the publications it was in."""
    out = []
    moved = f"{quote(archive)}.{quote(move.legacy.name)}"
    for publication in move.around.publications:
        out += _do_if(
            f"EXISTS (SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid"
            f" WHERE p.pubname = {literal(publication)} AND r.prrelid = to_regclass({literal(moved)}))",
            f"ALTER PUBLICATION {quote(publication)} DROP TABLE {moved};",
        )
    return out
