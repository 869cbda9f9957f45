"""A plan drafted from the legacy schema: `init --merge a,b=t --rename x=y` writes the rules and
the target DDL a person would otherwise write by hand, for them to review.

Each target's columns are the union of its legacy tables' columns, in order of first appearance:
the type where they agree (a comment where they do not), NOT NULL where every merged table has the
column NOT NULL, a default where they all share it, the CHECKs they all share, each foreign key
(a reference to a table that moves points at its target), the primary key and unique keys they all
share, and for a merged table a discriminator with a CHECK of its values, which the rules' `where`
(and so `set`) name. Row-level security is enabled where a legacy table has it; `sql`'s `expand`
carries the policies themselves. Everything else (generated columns, indexes, triggers) is left to
the person reviewing the draft, and the draft says so where it meets one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tableshift.db import surroundings
from tableshift.db.catalog import Table, comment, literal, quote
from tableshift.errors import UsageError

if TYPE_CHECKING:
    import psycopg

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
DISCRIMINATOR = "kind"


@dataclass(frozen=True, slots=True)
class Move:
    """Legacy tables and the table they become: one is a rename, several a merge."""

    legacy: tuple[str, ...]
    target: str

    @property
    def merged(self) -> bool:
        return len(self.legacy) > 1


def parse_moves(merges: list[str], renames: list[str]) -> list[Move]:
    """`--merge a,b=t` and `--rename x=y` as moves; a table named twice, or a name that is not
    a plain identifier, is a usage error."""
    moves: list[Move] = []
    for flag, values in (("--merge", merges), ("--rename", renames)):
        for value in values:
            left, sep, target = value.partition("=")
            legacy = tuple(t.strip() for t in left.split(",") if t.strip())
            target = target.strip()
            if not sep or not legacy or not target:
                raise UsageError(f"{flag} {value!r}: write {'a,b=target' if flag == '--merge' else 'legacy=target'}")
            if flag == "--merge" and len(legacy) < 2:
                raise UsageError(f"--merge {value!r}: a merge takes two tables or more (one is --rename)")
            if flag == "--rename" and len(legacy) != 1:
                raise UsageError(f"--rename {value!r}: one table (several are --merge)")
            for name in (*legacy, target):
                if not _NAME.fullmatch(name):
                    raise UsageError(f"{flag} {value!r}: {name!r} is not a plain table name")
            moves.append(Move(legacy, target))
    seen: set[str] = set()
    for move in moves:
        for name in move.legacy:
            if name in seen:
                raise UsageError(f"table {name!r} moves twice")
            seen.add(name)
    return moves


@dataclass(frozen=True, slots=True)
class Draft:
    rules: str  # TOML
    ddl: str  # SQL
    notes: tuple[str, ...]  # what the person reviewing must decide


def draft(conn: psycopg.Connection, moves: list[Move], *, name: str, schema_file: str) -> Draft:
    from tableshift.db import catalog

    moved = {legacy: move.target for move in moves for legacy in move.legacy}
    notes: list[str] = []
    ddl = ["-- The consolidated tables, drafted by `tableshift init` from the legacy schema: review before `tableshift sql`.", ""]
    rules = [
        "# tableshift rules, drafted by `tableshift init` from the legacy schema: review them.",
        "version = 1",
        f"name = {_toml(name)}",
        f"schema = {_toml(schema_file)}",
    ]
    for move in moves:
        tables: list[Table] = []
        for legacy in move.legacy:
            found = catalog.table(conn, legacy)
            if found is None or found.kind not in ("r", "p"):
                raise UsageError(f"{legacy}: no such table in the legacy schema")
            tables.append(found)
        body, table_notes = _create(conn, move, tables, moved)
        ddl += body
        notes += table_notes
        for table in tables:
            rules += ["", "[[table]]", f"legacy = {_toml(table.name)}", f"target = {_toml(move.target)}", f"group = {_toml(move.target)}"]
            if move.merged:  # `set` is the same values: new rows land where reads find them
                rules += ["[table.where]", f"{DISCRIMINATOR} = {_toml(table.name)}"]
    return Draft("\n".join(rules) + "\n", "\n".join(ddl), tuple(notes))


def _create(conn: psycopg.Connection, move: Move, tables: list[Table], moved: dict[str, str]) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    lines: list[str] = []
    names: list[str] = []
    for table in tables:
        names += [c.name for c in table.columns if c.name not in names]
    for column in names:
        having = [(t, t.column(column)) for t in tables if t.column(column) is not None]
        own = [c for _, c in having if c is not None]
        if any(c.generated for c in own):
            notes.append(f"{move.target}.{column}: a generated column in {having[0][0].name}: add its expression by hand")
            lines.append(f"  -- {comment(column)}: generated in {comment(', '.join(t.name for t, c in having if c and c.generated))}: add it by hand")
            continue
        types = list(dict.fromkeys(c.type for c in own))
        sql = f"  {quote(column)} {types[0]}"
        # a numbered column (identity, or serial: a default from a sequence) numbers its own rows
        # in the target; `sql`'s expand moves the target's counter past every number handed out
        numbered = any(c.identity or (c.default or "").startswith("nextval(") for c in own)
        if numbered and types[0] in ("integer", "bigint", "smallint"):
            sql += " GENERATED BY DEFAULT AS IDENTITY"
        defaults = {c.default for c in own}
        if len(having) == len(tables) and len(defaults) == 1 and None not in defaults and not numbered:
            sql += f" DEFAULT {defaults.pop()}"
        if len(having) == len(tables) and all(c.not_null for c in own):
            sql += " NOT NULL"
        if len(types) > 1:
            sql += f"  -- the legacy tables disagree: {comment(', '.join(f'{c.type} in {t.name}' for t, c in having if c))}"
            notes.append(f"{move.target}.{column}: the legacy tables' types disagree ({', '.join(types)}): the first is drafted")
        lines.append(sql)
    if move.merged:
        if DISCRIMINATOR in names:
            raise UsageError(f"{move.target}: the merged tables have a column {DISCRIMINATOR!r} already: the discriminator needs another name")
        values = ", ".join(literal(t.name) for t in tables)
        lines.append(f"  {quote(DISCRIMINATOR)} text NOT NULL CHECK ({quote(DISCRIMINATOR)} IN ({values}))")
    keys = [set(map(tuple, t.unique)) for t in tables]
    shared = [u for u in tables[0].unique if all(u in k for k in keys)]
    primary = tables[0].unique[0] if tables[0].unique and _is_primary(conn, tables[0]) else None
    for unique in shared:
        kind = "PRIMARY KEY" if unique == primary else "UNIQUE"
        lines.append(f"  {kind} ({', '.join(quote(c) for c in unique)})")
        if move.merged and kind == "PRIMARY KEY":
            notes.append(f"{move.target}: the merged tables' keys ({', '.join(unique)}) must not collide: `tableshift sql` refuses numbered keys that would")
    checks = [set(_constraints(conn, t, "c")) for t in tables]
    for definition in sorted(set.intersection(*checks)) if checks else []:
        lines.append(f"  {definition}")
    for definition in sorted(set.union(*checks) - set.intersection(*checks)) if checks else []:
        lines.append(f"  -- not in every merged table: {comment(definition)}")
    foreign = dict.fromkeys(_retarget(d, moved) for t in tables for d in _constraints(conn, t, "f"))
    lines += [f"  {d}" for d in foreign]
    body = [f"CREATE TABLE {quote(move.target)} (", _commas(lines), ");"]
    if any(surroundings.read(conn, t).rls for t in tables):
        body.append(f"ALTER TABLE {quote(move.target)} ENABLE ROW LEVEL SECURITY;  -- `tableshift sql` carries the legacy tables' policies in expand")
    return [*body, ""], notes


def _commas(lines: list[str]) -> str:
    """Column lines joined by commas, comment-only lines left without one."""
    real = [i for i, line in enumerate(lines) if not line.lstrip().startswith("--")]
    out = []
    for i, line in enumerate(lines):
        if i in real and i != real[-1]:
            code, sep, note = line.partition("  --")
            out.append(code + "," + (sep + note if sep else ""))
        else:
            out.append(line)
    return "\n".join(out)


def _is_primary(conn: psycopg.Connection, table: Table) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace"
        " WHERE n.nspname = %s AND r.relname = %s AND c.contype = 'p'",
        (table.schema, table.name),
    ).fetchone()
    return row is not None


def _constraints(conn: psycopg.Connection, table: Table, kind: str) -> list[str]:
    """CHECK ('c') or FOREIGN KEY ('f') constraints as PostgreSQL writes them back, names left out
    (the target's get names of their own)."""
    rows = conn.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid"
        " JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = %s AND r.relname = %s AND c.contype = %s ORDER BY c.conname",
        (table.schema, table.name, kind),
    ).fetchall()
    return [definition for (definition,) in rows]


def _retarget(definition: str, moved: dict[str, str]) -> str:
    """A foreign key to a table that moves points at its target."""

    def swap(m: re.Match[str]) -> str:
        schema, name = m.group(1), m.group(2).strip('"')
        return f"REFERENCES {quote(moved[name])}" if name in moved and schema in (None, "public.") else m.group(0)

    return re.sub(r'REFERENCES (public\.)?("(?:[^"]|"")+"|[A-Za-z_][\w$]*)', swap, definition)


def _toml(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
