"""SQL in a string (a postgres.js `sql` template, `pool.query('UPDATE tweets ...')`,
`cursor.execute("DELETE FROM tweets ...")`): the tables it reads and writes, as PostgreSQL's own
parser (pglast) reads it. Interpolations are parameters (`$n`); a string whose interpolation
stands where a name goes does not parse, and names nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tableshift.model import Operation

# a string that starts like a statement: a quote, then SELECT / INSERT / UPDATE / DELETE / WITH
SQL_CANDIDATE = re.compile(rb"""[`'"]\s*(?i:select|insert|update|delete|with)\s""")
_STATEMENT = re.compile(r"\s*(?i:select|insert|update|delete|with)\s")


@dataclass(frozen=True, slots=True)
class SqlUse:
    table: str
    schema: str | None
    operation: Operation
    offset: int  # the name's character offset in the text parsed


def looks_like_sql(text: str) -> bool:
    return _STATEMENT.match(text) is not None


def tables(text: str) -> list[SqlUse]:
    """Each table the SQL reads (select) or writes (insert, update, delete), in order; [] when the
    text is not SQL PostgreSQL parses. Names a CTE defines are not tables."""
    from pglast import ast, parse_sql
    from pglast.parser import ParseError

    from tableshift.sqltree import nodes

    try:
        statements = parse_sql(text)
    except (ParseError, ValueError, RecursionError):
        return []
    out: list[SqlUse] = []
    for raw in statements:
        stmt = raw.stmt
        ctes = {c.ctename for c in nodes(stmt) if isinstance(c, ast.CommonTableExpr)}
        written: dict[int, Operation] = {}
        for node in nodes(stmt):
            if isinstance(node, ast.InsertStmt):
                written[id(node.relation)] = Operation.INSERT if node.onConflictClause is None else Operation.UPSERT
            elif isinstance(node, ast.UpdateStmt):
                written[id(node.relation)] = Operation.UPDATE
            elif isinstance(node, ast.DeleteStmt):
                written[id(node.relation)] = Operation.DELETE
        seen: set[tuple[str | None, str, Operation]] = set()
        for node in nodes(stmt):
            if not isinstance(node, ast.RangeVar) or (node.schemaname is None and node.relname in ctes):
                continue
            op = written.get(id(node), Operation.SELECT)
            key = (node.schemaname, node.relname, op)
            if key not in seen:
                seen.add(key)
                out.append(SqlUse(node.relname, node.schemaname, op, node.location if node.location is not None else 0))
    return sorted(out, key=lambda u: u.offset)
