"""What PostgreSQL itself says about a table: columns with their types and defaults, and the
column sets it keeps unique (primary key, unique constraints, unique indexes without a predicate)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # as format_type() spells it: `integer`, `timestamp with time zone`, `text[]`
    not_null: bool
    default: str | None
    generated: bool = False  # GENERATED ALWAYS AS (expression): computed, never written
    identity: str = ""  # 'a' GENERATED ALWAYS AS IDENTITY, 'd' BY DEFAULT, '' neither

    @property
    def numbered(self) -> bool:
        """A serial / identity column: the table numbers its own rows."""
        return bool(self.identity) or (self.default is not None and self.default.startswith("nextval("))


@dataclass(frozen=True, slots=True)
class Table:
    schema: str
    name: str
    kind: str  # 'r' table, 'v' view, 'p' partitioned table
    columns: tuple[Column, ...]
    unique: tuple[tuple[str, ...], ...]  # primary key first
    grants: tuple[tuple[str, str], ...] = ()  # (role, privilege) granted on the table, owner's own left out

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"


def table(conn: psycopg.Connection, name: str, schema: str = "public") -> Table | None:
    row = conn.execute(
        "SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v')",
        (schema, name),
    ).fetchone()
    if row is None:
        return None
    oid, kind = row
    columns = tuple(
        Column(attname, typ, notnull, default, generated, identity)
        for attname, typ, notnull, default, generated, identity in conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid), a.attgenerated <> '', a.attidentity"
            " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (oid,),
        )
    )
    unique = [
        tuple(cols)
        for (cols,) in conn.execute(
            "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = %s AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL"
            " GROUP BY i.indexrelid, i.indisprimary ORDER BY i.indisprimary DESC, i.indexrelid",
            (oid,),
        )
    ]
    grants = tuple(
        (grantee, privilege)
        for grantee, privilege in conn.execute(
            "SELECT g.grantee, g.privilege_type FROM information_schema.role_table_grants g"
            " WHERE g.table_schema = %s AND g.table_name = %s AND g.grantee <> g.grantor"
            " AND g.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') ORDER BY 1, 2",
            (schema, name),
        )
    )
    return Table(schema, name, kind, columns, tuple(unique), grants)


def quote(name: str) -> str:
    """An identifier as SQL needs it: always in double quotes, as PostgREST writes them (a bare
    name could be a keyword, `binary` or `left`, or hold a `$`)."""
    if "\0" in name:
        raise ValueError("an identifier cannot hold a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def comment(text: str) -> str:
    """Text from the inputs as it may stand in a `--` comment: on one line, whatever it holds
    (a line break would end the comment, and what follows would run)."""
    out = []
    for ch in str(text):
        if ch in "\r\n\v\f\x85\u2028\u2029" or not ch.isprintable():
            out.append(repr(ch)[1:-1] if ch != "\\" else ch)
        else:
            out.append(ch)
    return "".join(out)


def literal(value: object) -> str:
    """A rules value as an SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):  # TOML has nan and inf: never a bare word (it would name a column)
        return repr(value) if math.isfinite(value) else f"'{value!r}'::float8".replace("nan", "NaN").replace("inf", "Infinity")
    text = str(value)
    if "\0" in text:
        raise ValueError("a text value cannot hold a NUL byte")
    return "'" + text.replace("'", "''") + "'"
