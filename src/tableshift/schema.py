"""The target schema, read from DDL with a real PostgreSQL parser (pglast), statement by statement."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from tableshift.errors import UsageError

_UNQUOTED = re.compile(r'\s*at or near ".*"|\s*at end of input', re.S)


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    required: bool  # NOT NULL without a default: an insert must give it


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    columns: dict[str, ColumnInfo] = field(default_factory=dict)
    references: frozenset[str] = frozenset()  # tables this one has a foreign key to

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns.values() if c.required)


@dataclass(frozen=True, slots=True)
class TargetSchema:
    path: str
    tables: dict[str, TableInfo]
    fingerprint: str = ""  # of the DDL text: a changed schema invalidates cached verdicts

    def table(self, name: str) -> TableInfo | None:
        return self.tables.get(name.split(".")[-1])

    def linked(self, a: str, b: str) -> bool:
        """Whether PostgREST can embed one table in the other: a foreign key either way."""
        ta, tb = self.table(a), self.table(b)
        return (ta is not None and b in ta.references) or (tb is not None and a in tb.references)


def load_schema(path: Path) -> TargetSchema:
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not a schema file")
    from tableshift.fsutil import read_input

    try:
        text = read_input(path, "schema file").decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: schema file not found") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: schema file is not UTF-8") from None
    return parse_schema(text, str(path))


def parse_schema(sql: str, where: str) -> TargetSchema:
    """CREATE TABLE, then ALTER TABLE ADD / DROP / RENAME COLUMN, applied in order. A schema
    already read once is not parsed again: every run reads it, and parsing (with loading the
    parser) is a tenth of a warm audit."""
    from tableshift.cache import remembered

    return remembered("schemas", f"{where}\0{sql}".encode("utf-8", "surrogateescape"), lambda: _parse_schema(sql, where))


def _parse_schema(sql: str, where: str) -> TargetSchema:
    from pglast import enums, parse_sql
    from pglast.parser import ParseError

    try:
        statements = parse_sql(sql)
    except ParseError as exc:
        message, location = (exc.args + (None,))[:2]
        if isinstance(location, int):
            line = sql.count("\n", 0, location) + 1
            column = location - (sql.rfind("\n", 0, location) + 1) + 1
            place = f"{line}:{column}"
        else:
            place = "?"
        # never quote the file: a schema path that names a secret must not print it into CI logs
        what = _UNQUOTED.sub("", str(message)).strip() or "syntax error"
        raise UsageError(f"{where}:{place}: SQL {what}") from None
    except RecursionError:
        raise UsageError(f"{where}: SQL nested too deeply to read") from None

    columns: dict[str, dict[str, ColumnInfo]] = {}
    refs: dict[str, set[str]] = {}
    for raw in statements:
        stmt = raw.stmt
        kind = type(stmt).__name__

        def fail(what: str) -> UsageError:
            start = raw.stmt_location or 0
            first = start + len(sql[start:]) - len(sql[start:].lstrip())
            return UsageError(f"{where}:{sql.count(chr(10), 0, first) + 1}: {what}")

        if kind in ("AlterTableStmt", "RenameStmt") and stmt.relation is not None:
            if stmt.relation.relname not in columns and (kind == "AlterTableStmt" or stmt.renameType == enums.ObjectType.OBJECT_COLUMN):
                raise fail(f"table {stmt.relation.relname!r} is altered before any CREATE TABLE of it")
        if kind == "CreateStmt":
            name = stmt.relation.relname
            columns[name] = {}
            refs[name] = set()
            for element in stmt.tableElts or ():
                if type(element).__name__ == "ColumnDef":
                    info, targets = _column(element, enums)
                    columns[name][info.name] = info
                    refs[name] |= targets
                elif type(element).__name__ == "Constraint" and element.contype == enums.ConstrType.CONSTR_FOREIGN:
                    refs[name].add(element.pktable.relname)
        elif kind == "AlterTableStmt":
            name = stmt.relation.relname
            for cmd in stmt.cmds or ():
                if cmd.subtype == enums.AlterTableType.AT_AddColumn:
                    info, targets = _column(cmd.def_, enums)
                    columns[name][info.name] = info
                    refs[name] |= targets
                elif cmd.subtype == enums.AlterTableType.AT_DropColumn:
                    if cmd.name not in columns[name] and not cmd.missing_ok:
                        raise fail(f"DROP COLUMN {cmd.name!r}: {name!r} has no such column")
                    columns[name].pop(cmd.name, None)
                elif cmd.subtype == enums.AlterTableType.AT_AddConstraint:
                    con = cmd.def_
                    if con.contype == enums.ConstrType.CONSTR_FOREIGN:
                        refs[name].add(con.pktable.relname)
        elif kind == "RenameStmt" and stmt.renameType == enums.ObjectType.OBJECT_COLUMN:
            name = stmt.relation.relname
            if stmt.subname not in columns[name]:
                raise fail(f"RENAME COLUMN {stmt.subname!r}: {name!r} has no such column")
            old = columns[name].pop(stmt.subname)
            columns[name][stmt.newname] = ColumnInfo(stmt.newname, old.required)
    tables = {n: TableInfo(n, cols, frozenset(refs[n])) for n, cols in columns.items()}
    if not tables:
        raise UsageError(f"{where}: no CREATE TABLE statement: nothing to check columns against")
    return TargetSchema(where, tables, hashlib.sha256(sql.encode("utf-8")).hexdigest())


def _column(definition, enums) -> tuple[ColumnInfo, set[str]]:  # type: ignore[no-untyped-def]
    not_null = has_default = False
    targets: set[str] = set()
    type_name = ".".join(getattr(n, "sval", "") for n in (definition.typeName.names or ())) if definition.typeName else ""
    if type_name.split(".")[-1] in ("serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"):
        has_default = True
    for con in definition.constraints or ():
        if con.contype in (enums.ConstrType.CONSTR_NOTNULL, enums.ConstrType.CONSTR_PRIMARY):
            not_null = True
        elif con.contype in (
            enums.ConstrType.CONSTR_DEFAULT,
            enums.ConstrType.CONSTR_IDENTITY,
            enums.ConstrType.CONSTR_GENERATED,
        ):
            has_default = True
        elif con.contype == enums.ConstrType.CONSTR_FOREIGN:
            targets.add(con.pktable.relname)
    return ColumnInfo(definition.colname, not_null and not has_default), targets
