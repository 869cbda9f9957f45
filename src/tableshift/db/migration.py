"""The plan's database side as SQL: expand (targets and dual-write triggers), backfill, parity,
contract (archive and compatibility views). Each phase is one script that runs in one transaction,
is safe to run twice and says in comments what it does.

Everything is derived from what PostgreSQL reports about the loaded schemas (column types,
defaults, unique column sets), so casts, keys and views follow the real tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tableshift.db import carry, catalog, references, surroundings
from tableshift.db.catalog import Column, Table, comment, literal, quote
from tableshift.db.surroundings import Surroundings
from tableshift.errors import UsageError
from tableshift.rules import RuleSet, TableRule

if TYPE_CHECKING:
    import psycopg

PHASES = ("expand", "backfill", "parity", "contract")
BATCH = 1000
# types with no equality operator: compared by their text
_TEXT_COMPARED = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}


@dataclass(slots=True)
class Move:
    """One legacy table and how its rows land in the target."""

    rule: TableRule
    legacy: Table
    target: Table
    copied: list[tuple[Column, Column]] = field(default_factory=list)  # legacy column -> target column
    constants: list[tuple[str, object]] = field(default_factory=list)  # target column <- value (`where`, `set`)
    key: list[tuple[Column, Column]] = field(default_factory=list)  # how a legacy row finds its twin
    notes: list[str] = field(default_factory=list)  # what is not copied, and why
    via_text: set[str] = field(default_factory=set)  # legacy columns with no direct cast to their new type
    around: Surroundings = field(default_factory=Surroundings)  # what the legacy table guaranteed
    target_around: Surroundings = field(default_factory=Surroundings)

    @property
    def where(self) -> list[tuple[str, object]]:
        return list(self.rule.where)

    def cast(self, old: Column, new: Column, ref: str) -> str:
        """`ref` (a legacy value) as the target column's type: explicit where the types differ."""
        value = f"{ref}.{quote(old.name)}"
        if old.type == new.type:
            return value
        # enum to enum, and other pairs PostgreSQL has no cast for, go through their text
        return f"({value})::text::{new.type}" if old.name in self.via_text else f"({value})::{new.type}"

    def matched(self, target: str, source: str) -> list[str]:
        """Conditions under which a target row is the twin of a legacy row: equal keys (else equal
        copied columns), and the rules' `where` of a merged table."""
        if self.key:
            conditions = [f"{target}.{quote(new.name)} IS NOT DISTINCT FROM {self.cast(old, new, source)}" for old, new in self.key]
        else:
            conditions = [_same(f"{target}.{quote(new.name)}", self.cast(old, new, source), new.type) for old, new in self.copied]
        conditions += [f"{target}.{quote(column)} = {literal(value)}" for column, value in self.where]
        return conditions or ["true"]

    def key_text(self, ref: str) -> str:
        """A legacy row's key as text, for reports."""
        if self.key:
            parts = [f"{ref}.{quote(old.name)}::text" for old, _ in self.key]
            return parts[0] if len(parts) == 1 else "concat_ws(', ', " + ", ".join(parts) + ")"
        return f"row_to_json({ref})::text"

    @property
    def shown(self) -> list[tuple[Column, Column]]:
        """The legacy columns its compatibility view shows (dropped ones are not faked), each with
        the target column it reads."""
        out = []
        for old in self.legacy.columns:
            new = self.target.column(self.rule.rename(old.name) or old.name)
            if old.name not in self.rule.drop and new is not None:
                out.append((old, new))
        return out

    @property
    def casts(self) -> list[tuple[Column, Column]]:
        return [(old, new) for old, new in self.copied if old.type != new.type]


def _same(a: str, b: str, type_: str) -> str:
    if type_.split("(")[0].strip() in _TEXT_COMPARED:
        return f"{a}::text IS NOT DISTINCT FROM ({b})::text"
    return f"{a} IS NOT DISTINCT FROM {b}"


def moves(conn: psycopg.Connection, rules: RuleSet) -> list[Move]:
    """Each legacy table of the rules, mapped onto its target from the loaded schemas."""
    out = []
    for rule in rules.tables:
        schema = rule.schema or "public"
        legacy = catalog.table(conn, rule.legacy, schema)
        if legacy is None or legacy.kind == "v":
            raise UsageError(f"legacy table {schema}.{rule.legacy} is not in the legacy schema")
        target_schema, _, target_name = rule.target.rpartition(".")
        target = catalog.table(conn, target_name, target_schema or "public")
        if target is None:
            raise UsageError(f"target table {rule.target} is not in the rules' schema")
        around = surroundings.read(conn, legacy)
        # values any foreign key references (another table's, a legacy table's whose rows move too, its
        # own parent_id) are copied as they are: every key value keeps finding the same row
        kept = {column for ref in around.referenced_by for column in ref.columns}
        move = _move(rule, legacy, target, kept)
        move.around = around
        move.target_around = surroundings.read(conn, target)
        for old, new in move.casts:
            if not _castable_directly(conn, old.type, new.type):
                move.via_text.add(old.name)
        out.append(move)
    return out


def _castable_directly(conn: psycopg.Connection, source: str, target: str) -> bool:
    from tableshift.db.server import rejected

    return rejected(conn, f"SELECT NULL::{source}::{target}") is None


def _move(rule: TableRule, legacy: Table, target: Table, kept: set[str] = frozenset()) -> Move:  # type: ignore[assignment]
    move = Move(rule, legacy, target)
    constants = dict(rule.set)
    constants.update(dict(rule.where))
    for old in legacy.columns:
        if old.generated:
            continue
        if old.name in rule.drop:
            move.notes.append(f"{old.name}: dropped by the rules")
            continue
        name = rule.rename(old.name) or old.name
        new = target.column(name)
        if new is None:
            move.notes.append(f"{old.name}: {target.name} has no column {name}")
            continue
        if new.generated:
            move.notes.append(f"{old.name}: {target.name}.{name} is generated")
            continue
        if name in constants:
            move.notes.append(f"{old.name}: {target.name}.{name} is set by the rules to {literal(constants[name])}")
            continue
        if new.identity == "a" and old.name not in kept:
            move.notes.append(f"{old.name}: {target.name}.{name} numbers its own rows (GENERATED ALWAYS)")
            continue
        if new.numbered and name not in rule.key and old.name not in rule.key and old.name not in kept:
            move.notes.append(f"{old.name}: {target.name}.{name} numbers its own rows")
            continue
        move.copied.append((old, new))
    move.constants = list(constants.items())
    move.key = _key(rule, legacy, target, move)
    given = {new.name for _, new in move.copied} | set(constants)
    for column in target.columns:
        if column.not_null and column.default is None and not column.generated and not column.numbered and column.name not in given:
            move.notes.append(f"warning: {target.name}.{column.name} is NOT NULL without a default and gets no value from {legacy.name}: such rows cannot be copied")
    return move


def _key(rule: TableRule, legacy: Table, target: Table, move: Move) -> list[tuple[Column, Column]]:
    copied = {old.name: (old, new) for old, new in move.copied}
    if rule.key:
        missing = [name for name in rule.key if name not in copied]
        if missing:
            raise UsageError(
                f"rules: key of {rule.legacy!r}: column {missing[0]!r} is not copied to {target.name} "
                "(not a legacy column, dropped, or without a home in the target)"
            )
        return [copied[name] for name in rule.key]
    target_unique = {frozenset(u) for u in target.unique}
    for unique in legacy.unique:
        if all(name in copied for name in unique):
            pair = [copied[name] for name in unique]
            if frozenset(new.name for _, new in pair) in target_unique:
                return pair
    return []


# -- the scripts ------------------------------------------------------------------


def script(
    phase: str, rules: RuleSet, plan: list[Move], *, ddl: str, schema_file: str, archive: str, uses: dict[tuple[str, str], list] | None = None
) -> str:
    """One phase's script; `uses`: what in the database uses each legacy table (db.usage), said in its header."""
    head = [
        f"-- tableshift sql --phase {phase} · rules: {comment(rules.name)}",
        "-- Generated from the legacy and target schemas as PostgreSQL reports them: review before running.",
        "-- One transaction; safe to run twice.",
    ]
    if uses is not None:
        head.append("-- What in the database uses the legacy tables (`tableshift audit --legacy-schema` lists it too):")
        for move in plan:
            found = uses.get((move.legacy.schema, move.legacy.name), [])
            if not found:
                head.append(f"--   {comment(move.legacy.name)}: nothing but the code")
            for use in found:
                head.append("--   " + comment(f"{move.legacy.name}: {use.kind} {use.name}" + (f" ({use.detail})" if use.detail else "")))
    check_names(plan, archive)
    if phase == "contract":
        carry.contract_refusals(plan)
    if phase == "expand":
        body = _expand(plan, ddl=ddl, schema_file=schema_file)
    elif phase == "backfill":
        body = _backfill(plan)
    elif phase == "parity":
        body = _parity(plan)
    else:
        body = _contract(plan, archive=archive)
    text = "\n".join([*head, *body]) + "\n"
    _guard(text, phase)
    return text


# What each script may hold at its top level: anything else got in through an input.
_ALLOWED = {
    "TransactionStmt", "DoStmt", "CreateFunctionStmt", "CreateTrigStmt", "CreateSchemaStmt", "ViewStmt",
    "AlterTableStmt", "GrantStmt", "InsertStmt", "CreateStmt", "SelectStmt", "CreatePolicyStmt", "VariableSetStmt",
}  # fmt: skip
# contract: other tables' policies bound again; materialized views made again with their indexes
_CONTRACT_ONLY = {"AlterPolicyStmt", "CreateTableAsStmt", "IndexStmt"}


def _guard(text: str, phase: str) -> None:
    """The script is the statements tableshift wrote, and only those: it parses, each statement
    is of a kind the phase writes, and it drops nothing but its own triggers and functions."""
    from pglast import parser

    try:
        statements = parser.parse_sql(text)
    except Exception as exc:  # noqa: BLE001 - pglast's own error types
        raise UsageError(f"sql --phase {phase}: the script does not parse ({str(exc).splitlines()[0][:120]}): a name or value from the inputs broke it") from None
    for raw in statements:
        node = raw.stmt
        kind = type(node).__name__
        dropped = str(getattr(node.removeType, "name", node.removeType)) if kind == "DropStmt" else ""
        if dropped in ("OBJECT_TRIGGER", "OBJECT_FUNCTION", "OBJECT_POLICY") or dropped == "OBJECT_MATVIEW" and phase == "contract":
            continue
        if kind not in _ALLOWED and not (phase == "contract" and kind in _CONTRACT_ONLY):
            raise UsageError(f"sql --phase {phase}: the script would hold a {kind} tableshift never writes: a name or value from the inputs broke it")


def _comment(move: Move) -> list[str]:
    """What a move does, in comments: every name and value from the inputs on one line each."""
    out = [f"{move.legacy.name} -> {move.target.name}"]
    renamed = [f"{o.name} -> {n.name}" for o, n in move.copied if o.name != n.name]
    casts = [f"{o.name} ({o.type} -> {n.type})" for o, n in move.casts]
    out.append("  copied: " + (", ".join(o.name for o, _ in move.copied) or "nothing"))
    if renamed:
        out.append("  renamed: " + ", ".join(renamed))
    if casts:
        out.append("  cast: " + ", ".join(casts))
    if move.constants:
        out.append("  set: " + ", ".join(f"{c} = {literal(v)}" for c, v in move.constants))
    for note in move.notes:
        out.append(f"  not copied: {note}" if not note.startswith("warning") else f"  {note}")
    if move.key:
        out.append("  rows correspond by: " + ", ".join(f"{o.name} = {move.target.name}.{n.name}" for o, n in move.key))
    else:
        out.append(f"  no key: {move.legacy.name} and {move.target.name} share no unique column set (set `key` in the rules);")
        out.append("  inserts are propagated, updates and deletes are not, and rows are matched by every copied column")
    return ["-- " + comment(line) for line in out]


def _values(move: Move, ref: str) -> tuple[list[str], list[str]]:
    columns = [quote(new.name) for _, new in move.copied] + [quote(c) for c, _ in move.constants]
    values = [move.cast(old, new, ref) for old, new in move.copied] + [literal(v) for _, v in move.constants]
    return columns, values


def _unique_tag(text: str, base: str) -> str:
    """A dollar-quote tag that does not occur in `text` (so the text cannot end the quote)."""
    tag = f"${base}$"
    n = 0
    while tag in text:
        n += 1
        tag = f"${base}{n}$"
    return tag


def _do(lines: list[str], base: str = "tableshift") -> list[str]:
    """A DO block around `lines` (from BEGIN / DECLARE to the closing END), quoted with a tag
    its body does not hold."""
    tag = _unique_tag("\n".join(lines), base)
    return [f"DO {tag}", *lines[:-1], f"{lines[-1]} {tag};"]


NAME_LIMIT = 63  # bytes PostgreSQL keeps of a name


def function_name(legacy: Table) -> str:
    """The dual-write function of a legacy table: `tableshift_sync_<table>`, or, past 63 bytes
    (where PostgreSQL would cut it, and two tables could share one), cut with a hash of the
    whole name."""
    import hashlib

    name = f"tableshift_sync_{legacy.name}"
    if len(name.encode()) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(f"{legacy.schema}.{legacy.name}".encode()).hexdigest()[:10]
    cut = name.encode()[: NAME_LIMIT - len(digest) - 1].decode("utf-8", "ignore")
    return f"{cut}_{digest}"


def _function(legacy: Table) -> str:
    return f"{quote(legacy.schema)}.{quote(function_name(legacy))}"


def check_names(plan: list[Move], archive: str) -> None:
    """Every name the scripts create is one PostgreSQL keeps whole, and no two collide."""
    if len(archive.encode()) > NAME_LIMIT:
        raise UsageError(f"--archive-schema: {archive[:20]!r}... is longer than PostgreSQL's {NAME_LIMIT} bytes")
    seen: dict[tuple[str, str], str] = {}
    for move in plan:
        key = (move.legacy.schema, function_name(move.legacy))
        if key in seen and seen[key] != move.legacy.name:
            raise UsageError(f"legacy tables {seen[key]!r} and {move.legacy.name!r} would share one dual-write function")
        seen[key] = move.legacy.name
    moved = [m.legacy.name for m in plan]
    if len(set(moved)) != len(moved):
        raise UsageError(f"two legacy tables named {next(n for n in moved if moved.count(n) > 1)!r} would both move to {archive}")


def _expand(plan: list[Move], *, ddl: str, schema_file: str) -> list[str]:
    out = ["BEGIN;", ""]
    targets = sorted({m.target.qualified for m in plan})
    missing = " AND ".join(f"to_regclass({literal(t)}) IS NULL" for t in targets)
    present = " AND ".join(f"to_regclass({literal(t)}) IS NOT NULL" for t in targets)
    tag = _unique_tag(ddl, "tableshift_ddl")
    refusal = f"tableshift: some target tables exist and others do not ({', '.join(targets)}): create them by hand"
    out += [
        f"-- 1. The target tables, from {comment(schema_file)}: created when none of them exists yet.",
        *_do(
            [
                "BEGIN",
                f"  IF {missing} THEN",
                f"    EXECUTE {tag}",
                ddl.strip(),
                f"{tag};",
                f"  ELSIF NOT ({present}) THEN",
                f"    RAISE EXCEPTION '%', {literal(refusal)};",
                "  END IF;",
                "END",
            ]
        ),
        "",
        "-- 2. Dual-write: every insert, update and delete on a legacy table is applied to its target.",
    ]
    for move in plan:
        out += ["", *_comment(move), *_trigger(move)]
    out += [
        "",
        "-- 3. And back: every insert, update and delete on a target (new code) is applied to its legacy",
        "--    table (old code still deployed reads it), columns renamed back, until `contract`.",
    ]
    for move in plan:
        out += ["", f"-- {comment(move.target.name)} -> {comment(move.legacy.name)}", *_reverse(move)]
    carried, _ = carry.expand(plan)
    out += [
        "",
        "-- 4. What the legacy tables guaranteed, on their targets: row-level security and each policy",
        "--    (columns renamed; for a merged table, limited to its own rows), grants, business triggers",
        "--    (not again for a dual-written row), realtime publications and replica identity.",
        *carried,
        "",
        "COMMIT;",
    ]
    return out


SYNCING = "tableshift.syncing"  # set while a sync function writes: the other direction stays still
_NOT_SYNCING = f"current_setting({literal(SYNCING)}, true) IS DISTINCT FROM 'on'"


def _sync_function(function: str, body: list[str], source: str, destination: str) -> list[str]:
    """A dual-write trigger function: `body` applies a row of `source` to `destination` with the
    loop guard set, and a row `destination` refuses never fails the write to `source`."""
    text = [
        "DECLARE",
        "  previous text := current_setting(" + literal(SYNCING) + ", true);",
        "BEGIN",
        "  BEGIN  -- a row the other side refuses (a value that does not cast) never fails this write:",
        "         -- it is left out, with a warning, and parity lists it",
        f"    PERFORM set_config({literal(SYNCING)}, 'on', true);",
        *("  " + line for line in body),
        f"    PERFORM set_config({literal(SYNCING)}, coalesce(previous, ''), true);",
        "  EXCEPTION WHEN others THEN",
        f"    RAISE WARNING 'tableshift: % on % not applied to %: %', TG_OP, {literal(source)}, {literal(destination)}, SQLERRM;",
        "  END;",
        "  RETURN NULL;",
    ]
    tag = _unique_tag("\n".join(text), "tableshift_fn")
    return [f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS {tag}", *text, f"END {tag};"]


def _upsert(table: str, alias: str, sets: str, insert: str, match_new: str, match_old: str) -> list[str]:
    def update(match: str) -> str:  # with nothing to set, only whether the twin is there
        return f"UPDATE {table} AS {alias} SET {sets} WHERE {match};" if sets else f"PERFORM 1 FROM {table} AS {alias} WHERE {match};"

    return [
        "  IF TG_OP = 'INSERT' THEN",
        f"    {update(match_new)}",
        "    IF NOT FOUND THEN",
        f"      {insert}",
        "    END IF;",
        "  ELSIF TG_OP = 'UPDATE' THEN",
        f"    {update(match_old)}",
        "    IF NOT FOUND THEN  -- a row the backfill has not reached yet",
        f"      {insert}",
        "    END IF;",
        "  ELSIF TG_OP = 'DELETE' THEN",
        f"    DELETE FROM {table} AS {alias} WHERE {match_old};",
        "  END IF;",
    ]


def _trigger(move: Move) -> list[str]:
    """Legacy to target: every write to the legacy table applied to its target."""
    legacy = move.legacy
    function = _function(legacy)
    target = move.target.qualified
    columns, new_values = _values(move, "NEW")
    sets = ", ".join(f"{c} = {v}" for c, v in zip(columns, new_values))
    insert = f"INSERT INTO {target} AS t ({', '.join(columns)}) VALUES ({', '.join(new_values)});"
    if move.key:
        body = _upsert(target, "t", sets, insert, " AND ".join(move.matched("t", "NEW")), " AND ".join(move.matched("t", "OLD")))
        events = "INSERT OR UPDATE OR DELETE"
    else:
        body = ["  IF TG_OP = 'INSERT' THEN", f"    {insert}", "  END IF;"]
        events = "INSERT"
    return [
        *_sync_function(function, body, legacy.name, move.target.name),
        f"DROP TRIGGER IF EXISTS tableshift_sync ON {legacy.qualified};",
        f"CREATE TRIGGER tableshift_sync AFTER {events} ON {legacy.qualified}",
        f"  FOR EACH ROW WHEN ({_NOT_SYNCING}) EXECUTE FUNCTION {function}();",
    ]


def back_function_name(legacy: Table) -> str:
    from tableshift.db.carry import name_for

    return name_for("tableshift_back", legacy.name).replace(": ", "_")


def _back_triggers(move: Move) -> list[tuple[str, str, str]]:
    """(name, events, condition) of the target-to-legacy triggers of a move: for a merged table,
    only its own rows (a delete reads OLD, the others NEW)."""
    from tableshift.db.carry import name_for

    events = "INSERT OR UPDATE OR DELETE" if move.key else "INSERT"
    if not move.where:
        return [(name_for("tableshift_back", move.legacy.name), events, _NOT_SYNCING)]

    def mine(record: str) -> str:
        return " AND ".join([_NOT_SYNCING, *(f"{record}.{quote(c)} IS NOT DISTINCT FROM {literal(v)}" for c, v in move.where)])

    out = [(name_for("tableshift_back", move.legacy.name), "INSERT OR UPDATE" if move.key else "INSERT", mine("NEW"))]
    if move.key:
        out.append((name_for("tableshift_back_delete", move.legacy.name), "DELETE", mine("OLD")))
    return out


def _reverse(move: Move) -> list[str]:
    """Target to legacy: a write by new code reaches the legacy table that old code still reads,
    columns renamed back, values cast back through their text."""
    legacy = move.legacy
    function = f"{quote(legacy.schema)}.{quote(back_function_name(legacy))}"
    target = move.target.qualified

    def back(old: Column, new: Column, ref: str) -> str:
        value = f"{ref}.{quote(new.name)}"
        return value if old.type == new.type else f"({value})::text::{old.type}"

    columns = [quote(old.name) for old, _ in move.copied]
    values = [back(old, new, "NEW") for old, new in move.copied]
    # an identity the legacy table generates ALWAYS takes the target's value only on insert
    sets = ", ".join(f"{c} = {v}" for c, v, (old, _) in zip(columns, values, move.copied) if old.identity != "a")
    overriding = " OVERRIDING SYSTEM VALUE" if any(old.identity == "a" for old, _ in move.copied) else ""
    insert = f"INSERT INTO {legacy.qualified} AS l ({', '.join(columns)}){overriding} VALUES ({', '.join(values)});"
    if move.key:
        def match(ref: str) -> str:
            return " AND ".join(f"l.{quote(old.name)} IS NOT DISTINCT FROM {back(old, new, ref)}" for old, new in move.key)

        body = _upsert(legacy.qualified, "l", sets, insert, match("NEW"), match("OLD"))
    else:
        body = ["  IF TG_OP = 'INSERT' THEN", f"    {insert}", "  END IF;"]
    out = _sync_function(function, body, move.target.name, legacy.name)
    for name, events, condition in _back_triggers(move):
        out += [
            f"DROP TRIGGER IF EXISTS {quote(name)} ON {target};",
            f"CREATE TRIGGER {quote(name)} AFTER {events} ON {target}",
            f"  FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION {function}();",
        ]
    return out


_CASTABLE = [
    "-- a value that does not cast to its new type is reported, never dropped silently",
    "CREATE OR REPLACE FUNCTION pg_temp.tableshift_castable(value text, type text) RETURNS boolean",
    "LANGUAGE plpgsql AS $tableshift$",
    "BEGIN",
    "  EXECUTE format('SELECT %L::%s', value, type);",
    "  RETURN true;",
    "EXCEPTION WHEN others THEN",
    "  RETURN false;",
    "END $tableshift$;",
]


def _castable(old: Column, new: Column, ref: str) -> str:
    return f"({ref}.{quote(old.name)} IS NULL OR pg_temp.tableshift_castable({ref}.{quote(old.name)}::text, {literal(new.type)}))"


def _backfill(plan: list[Move]) -> list[str]:
    out = [
        "-- Copies every legacy row that has no twin in its target yet, in batches of "
        f"{BATCH} rows; rows whose values do not cast",
        "-- are left where they are and listed at the end (table, key, column, value).",
        "BEGIN;",
        f"SET LOCAL {SYNCING} = 'on';  -- rows copied here are not written back to their legacy tables",
        "",
        *_CASTABLE,
        "CREATE TEMP TABLE tableshift_not_copied (legacy_table text, key text, column_name text, value text) ON COMMIT DROP;",
    ]
    for move in plan:
        out += ["", *_comment(move)]
        for old, new in move.casts:
            out += [
                "INSERT INTO tableshift_not_copied",
                f"  SELECT {literal(move.legacy.name)}, {move.key_text('s')}, {literal(old.name)}, s.{quote(old.name)}::text",
                f"  FROM {move.legacy.qualified} AS s",
                f"  WHERE NOT {_castable(old, new, 's')};",
            ]
        if not move.key:
            out += _copies(move)
            continue
        columns, values = _values(move, "s")
        conditions = [f"NOT EXISTS (SELECT 1 FROM {move.target.qualified} AS t WHERE {' AND '.join(move.matched('t', 's'))})", *(_castable(old, new, "s") for old, new in move.casts)]
        out += _do(
            [
                "DECLARE",
                "  last tid := '(0,0)';",
                "BEGIN",
                "  LOOP  -- one pass over the legacy table, in physical order",
                f"    WITH batch AS (SELECT s.ctid AS tableshift_tid, s.* FROM {move.legacy.qualified} AS s",
                f"                   WHERE s.ctid > last ORDER BY s.ctid LIMIT {BATCH}),",
                f"         copied AS (INSERT INTO {move.target.qualified} ({', '.join(columns)})",
                f"                    SELECT {', '.join(values)} FROM batch AS s",
                f"                    WHERE {(chr(10) + '                      AND ').join(conditions)})",
                "    SELECT max(tableshift_tid) INTO last FROM batch;",
                "    EXIT WHEN last IS NULL;",
                "  END LOOP;",
                "END",
            ]
        )
    out += ["", "SELECT * FROM tableshift_not_copied ORDER BY 1, 2, 3;", "", "COMMIT;"]
    return out


def _counted(move: Move) -> str:
    """A table with no key, as a multiset: each distinct row (as the target holds it) with how many
    times the legacy table has it (`n`) and how many twins the target has (`m`)."""
    groups = []
    for i, (old, new) in enumerate(move.copied):
        value = move.cast(old, new, "s")
        groups.append(f"({value})::text AS c{i}" if new.type.split("(")[0].strip() in _TEXT_COMPARED else f"{value} AS c{i}")
    match = [
        _same(f"t.{quote(new.name)}", f"w.c{i}" if new.type.split("(")[0].strip() not in _TEXT_COMPARED else f"(w.c{i})::{new.type}", new.type)
        for i, (_, new) in enumerate(move.copied)
    ] + [f"t.{quote(column)} = {literal(value)}" for column, value in move.where]
    castable = [_castable(old, new, "s") for old, new in move.casts]
    numbers = ", ".join(str(i + 1) for i in range(len(move.copied))) or "()"
    return (
        f"SELECT w.*, (SELECT count(*) FROM {move.target.qualified} AS t WHERE {' AND '.join(match) or 'true'}) AS m\n"
        f"  FROM (SELECT {', '.join(groups) or 'NULL AS c0'}, count(*) AS n FROM {move.legacy.qualified} AS s"
        + (f" WHERE {' AND '.join(castable)}" if castable else "")
        + f" GROUP BY {numbers}) AS w"
    )


def _copies(move: Move) -> list[str]:
    """Backfill of a table with no key: rows are copies, so each distinct row is copied as many
    times as the legacy table has it more than the target does (one statement, not batched)."""
    columns = [quote(new.name) for _, new in move.copied] + [quote(c) for c, _ in move.constants]
    values = [
        f"(h.c{i})::{new.type}" if new.type.split("(")[0].strip() in _TEXT_COMPARED else f"h.c{i}" for i, (_, new) in enumerate(move.copied)
    ] + [literal(v) for _, v in move.constants]
    return [
        f"WITH have AS ({_counted(move)})",
        f"INSERT INTO {move.target.qualified} ({', '.join(columns)})",
        f"  SELECT {', '.join(values)} FROM have AS h CROSS JOIN generate_series(1, h.n - h.m) WHERE h.n > h.m;",
    ]


def _parity(plan: list[Move]) -> list[str]:
    out = [
        "-- One query: no rows when every legacy row has its twin in the target with equal values",
        "-- (after renames and casts); otherwise one row per difference. Only reads.",
        "BEGIN;",
        "",
        *_CASTABLE,
        "",
    ]
    parts = []
    for move in plan:
        if not move.key:  # rows are copies: each distinct row must have as many twins as copies
            shown = "concat_ws(', ', " + ", ".join(f"w.c{i}::text" for i in range(len(move.copied))) + ")" if move.copied else "''"
            parts.append(
                f"SELECT {literal(move.legacy.name)} AS legacy_table, {shown} AS key, '(rows)' AS column_name, w.n::text AS old_value, w.m::text AS new_value\n"
                f"FROM ({_counted(move)}) AS w\nWHERE w.m < w.n"
            )
            continue
        rows = [f"('(row)', {move.key_text('s')}, NULL::text, t.tableshift_found IS NULL)"]
        for old, new in move.copied:
            ref = f"s.{quote(old.name)}"
            if old.type == new.type:
                differs = f"NOT ({_same('t.' + quote(new.name), ref, new.type)})"
            else:
                differs = (
                    f"CASE WHEN {ref} IS NULL THEN t.{quote(new.name)} IS NOT NULL"
                    f" WHEN pg_temp.tableshift_castable({ref}::text, {literal(new.type)}) THEN NOT ({_same('t.' + quote(new.name), f'({ref})::{new.type}', new.type)})"
                    " ELSE true END"
                )
            rows.append(f"({literal(old.name)}, {ref}::text, t.{quote(new.name)}::text, t.tableshift_found AND {differs})")
        match = " AND ".join(move.matched("t", "s"))
        parts.append(
            "\n".join(
                [
                    f"SELECT {literal(move.legacy.name)} AS legacy_table, {move.key_text('s')} AS key, d.column_name, d.old_value, d.new_value",
                    f"FROM {move.legacy.qualified} AS s",
                    f"LEFT JOIN LATERAL (SELECT true AS tableshift_found, t.* FROM {move.target.qualified} AS t WHERE {match} LIMIT 1) AS t ON true",
                    "CROSS JOIN LATERAL (VALUES",
                    "  " + ",\n  ".join(rows),
                    ") AS d(column_name, old_value, new_value, differs)",
                    "WHERE d.differs",
                ]
            )
        )
    out += ["\nUNION ALL\n".join(parts) + "\nORDER BY 1, 2, 3;", "", "ROLLBACK;"]
    return out


def _contract(plan: list[Move], *, archive: str) -> list[str]:
    out = [
        f"-- Drops the dual-write triggers, moves each legacy table to the schema {comment(archive)}, and puts a",
        "-- compatibility view in its place: legacy name, legacy column names, the rules' `where` for",
        "-- merged tables (with a check option: a row cannot leave its view), security_invoker so",
        "-- row-level security still applies, and simple enough that",
        "-- old code can still insert and update through it. Dropped columns are not faked. The view",
        "-- gets the grants the table had; the target's own grants and policies are what it reaches.",
        "BEGIN;",
        "",
        f"CREATE SCHEMA IF NOT EXISTS {quote(archive)};",
    ]
    owned = carry.owners_views(plan)
    for move in plan:
        legacy = move.legacy
        function = _function(legacy)
        moved = f"{quote(archive)}.{quote(legacy.name)}"
        refusal = f"tableshift: {archive}.{legacy.name} exists already: {legacy.name} cannot move there"
        out += [
            "",
            *_comment(move),
            *_do(
                [
                    "BEGIN",
                    "  IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
                    f"             WHERE n.nspname = {literal(legacy.schema)} AND c.relname = {literal(legacy.name)} AND c.relkind IN ('r', 'p')) THEN",
                    f"    DROP TRIGGER IF EXISTS tableshift_sync ON {legacy.qualified};",
                    *(f"    DROP TRIGGER IF EXISTS {quote(name)} ON {move.target.qualified};" for name, _, _ in _back_triggers(move)),
                    f"    IF to_regclass({literal(moved)}) IS NOT NULL THEN",
                    f"      RAISE EXCEPTION '%', {literal(refusal)};",
                    "    END IF;",
                    f"    ALTER TABLE {legacy.qualified} SET SCHEMA {quote(archive)};",
                    "  END IF;",
                    "END",
                ]
            ),
            f"DROP FUNCTION IF EXISTS {function}();",
            f"DROP FUNCTION IF EXISTS {quote(legacy.schema)}.{quote(back_function_name(legacy))}();",
            *carry.contract(move, archive),
        ]
        out += _compat_view(move, archive)
        owners = owned.get((legacy.schema, legacy.name))
        if owners:
            out += _owners_view(move, archive, owners)
    repointed = references.contract(plan)
    if repointed:
        out += ["", "-- Foreign keys other tables hold on a legacy table now reference its target, which kept their values.", *repointed]
    recreated = carry.dependents(plan, archive)
    if recreated:
        out += [
            "",
            "-- Views, SQL-standard functions and other tables' policies that read a legacy table (PostgreSQL tied them",
            "-- to the table, not its name): recreated from their definitions as they were when this script was written,",
            "-- so that they read the compatibility view. Replaced, not dropped: owners, grants and options stay.",
            *recreated,
        ]
    out += ["", "COMMIT;"]
    return out


def compat_inner_name(legacy: Table) -> str:
    """The inner view of a merged table's compatibility view, in the archive schema."""
    return carry.name_for(legacy.name, "compat")


def _compat_view(move: Move, archive: str) -> list[str]:
    """The view in the legacy table's place: exactly the legacy columns (dropped ones are not
    faked), inserts that land with the rules' `where` and `set`, and a check option so that a row
    cannot leave its view. When those constants name target columns the legacy table did not
    have (a merged table's discriminator), they live in an inner view in the archive schema,
    whose column defaults give them to inserts, and the outer view leaves them out."""
    legacy = move.legacy
    names, selected = _legacy_columns(move)
    hidden = [column for column, _ in move.constants if column not in names]
    where = carry.scope(move, prefix="t.") or ""
    grants: dict[str, list[str]] = {}
    for role, privilege in legacy.grants:  # who could use the table can use its view
        grants.setdefault(role, []).append(privilege)

    def view(name: str, columns: list[str], source: str, condition: str, checked: bool, defaults: list[tuple[str, object]]) -> list[str]:
        return [
            f"CREATE OR REPLACE VIEW {name} WITH (security_invoker = true) AS",
            f"  SELECT {', '.join(columns)}",
            f"  FROM {source}" + (f"\n  WHERE {condition}" if condition else "") + ("\n  WITH CASCADED CHECK OPTION" if checked else "") + ";",
            *(f"ALTER VIEW {name} ALTER COLUMN {quote(c)} SET DEFAULT {literal(v)};" for c, v in defaults),
            *(f"GRANT {', '.join(privileges)} ON {name} TO {_grantee(role)};" for role, privileges in sorted(grants.items())),
        ]

    if not hidden:
        return view(legacy.qualified, selected, f"{move.target.qualified} AS t", where, bool(where), move.constants)
    inner = f"{quote(archive)}.{quote(compat_inner_name(legacy))}"
    return [
        f"-- the rules' constants ({comment(', '.join(hidden))}) are not legacy columns: an inner view holds them",
        *view(inner, [*selected, *(f"t.{quote(c)}" for c in hidden)], f"{move.target.qualified} AS t", where, bool(where), move.constants),
        *view(legacy.qualified, [f"v.{quote(n)}" for n in names], f"{inner} AS v", "", True, [(c, v) for c, v in move.constants if c in names]),
    ]


def _owners_view(move: Move, archive: str, owners: set[str]) -> list[str]:
    """What views with their owner's rights read in the legacy table's place: the legacy columns of
    the target's rows, read with the rights of this view's owner (the migration's owner), as the
    table was read with theirs."""
    _, selected = _legacy_columns(move)
    where = carry.scope(move, prefix="t.") or ""
    view = f"{quote(archive)}.{quote(carry.owner_view_name(move.legacy.name))}"
    return [
        f"-- views with their owner's rights read {comment(move.legacy.name)} through this one (not security_invoker, as they read the table)",
        f"CREATE OR REPLACE VIEW {view} AS",
        f"  SELECT {', '.join(selected)}",
        f"  FROM {move.target.qualified} AS t" + (f"\n  WHERE {where}" if where else "") + ";",
        *(f"GRANT SELECT ON {view} TO {quote(owner)};" for owner in sorted(owners) if owner),
    ]


def _legacy_columns(move: Move) -> tuple[list[str], list[str]]:
    """The legacy columns a compatibility view shows (dropped ones are not faked), and how each is
    selected from the target (`t`)."""
    names = [old.name for old, _ in move.shown]
    selected = [f"t.{quote(new.name)}" + (f" AS {quote(old.name)}" if new.name != old.name else "") for old, new in move.shown]
    return names, selected


def _grantee(role: str) -> str:
    return "PUBLIC" if role == "PUBLIC" else quote(role)


def warnings(plan: list[Move], phases: list[str] | tuple[str, ...] = PHASES) -> list[str]:
    """What the scripts say in comments that a person must also hear."""
    out = carry.expand(plan)[1] if "expand" in phases else []
    if "contract" in phases:
        out += _upsert_warnings(plan)
    return out


def _upsert_warnings(plan: list[Move]) -> list[str]:
    """A legacy unique key the target does not have: an upsert naming it (PostgREST's `on_conflict`,
    or the primary key it uses by default) through the compatibility view finds no arbiter."""
    out = []
    for move in plan:
        target_unique = {frozenset(u) for u in move.target.unique}
        for unique in move.legacy.unique:
            names = [move.rule.rename(c) or c for c in unique]
            if any(c in move.rule.drop or move.target.column(n) is None for c, n in zip(unique, names)):
                continue
            if frozenset(names) not in target_unique:
                out.append(
                    f"after contract, an upsert through the view {move.legacy.name} on ({', '.join(unique)}) fails:"
                    f" {move.target.name} has no unique key on ({', '.join(names)}); patch such upserts before contract"
                )
    return out


def rehearse(conn: psycopg.Connection, scripts: dict[str, str]) -> None:
    """Each phase's script run, in order, on the schemas loaded in the embedded server (as their
    owner, never a superuser), then rolled back: a script that PostgreSQL refuses (a view whose
    columns would change type, a key the target's rows do not satisfy, a name the inputs broke)
    is refused here, with PostgreSQL's own message, not half-way through a user's migration."""
    import psycopg
    from pglast import parser

    from tableshift.db.server import message

    conn.execute("SAVEPOINT tableshift_rehearsal")
    try:
        for phase in PHASES:
            if phase not in scripts:
                continue
            script = scripts[phase]
            for piece in parser.split(script, with_parser=True, only_slices=True):
                text = script[piece]
                if type(parser.parse_sql(text)[0].stmt).__name__ == "TransactionStmt":
                    continue  # the phase's own BEGIN / COMMIT: here it all stays in one savepoint
                try:
                    conn.execute(text.encode(), prepare=False)
                except psycopg.Error as exc:
                    first = next((line.strip() for line in text.strip().splitlines() if line.strip() and not line.strip().startswith("--")), "")
                    raise UsageError(
                        f"sql --phase {phase}: PostgreSQL refuses the script on the loaded schemas: {message(exc)} (in: {first[:100]})"
                    ) from None
    finally:
        conn.execute("ROLLBACK TO SAVEPOINT tableshift_rehearsal")
        conn.execute("RELEASE SAVEPOINT tableshift_rehearsal")
