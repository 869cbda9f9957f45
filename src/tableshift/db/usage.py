"""The database's own use of a table, as its catalog says: views, materialized views and rules
over it, SQL-standard functions tied to it, functions whose bodies name it (parsed: SQL and
PL/pgSQL, with the literal strings they EXECUTE), triggers on it, policies on it and other tables'
policies that read it, foreign keys other tables hold on it, publications it is in.

`audit --legacy-schema / --database-url` lists it per table, and each `sql` phase's header
says it, so that a person sees what the code audit cannot: the code in the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tableshift.db import surroundings
from tableshift.sqltree import nodes, objects

if TYPE_CHECKING:
    import psycopg

# Supabase's own schemas and PostgreSQL's: their functions are not the project's code
_SYSTEM = ("pg_catalog", "information_schema", "pg_toast")


@dataclass(frozen=True, slots=True)
class Use:
    kind: str  # view, materialized view, rule, function, trigger, policy, foreign key, publication
    name: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "detail": self.detail}


def read(
    conn: psycopg.Connection,
    tables: list[tuple[str, str]],
    *,
    dropped: dict[tuple[str, str], set[str]] | None = None,
    renamed: dict[tuple[str, str], dict[str, str]] | None = None,
    known: dict[tuple[str, str], surroundings.Surroundings] | None = None,
) -> dict[tuple[str, str], list[Use]]:
    """For each (schema, table) that exists: what in the database uses it. `dropped` / `renamed`:
    columns the rules drop or rename, flagged where a function names one (a dropped one breaks
    once the table is archived; a renamed one reads through the view until it is rewritten).
    `known`: what surrounds tables read already (the plan's), not read again."""
    from tableshift.db.load import _MANAGED

    out: dict[tuple[str, str], list[Use]] = {}
    oids = {}
    for schema, name in tables:
        row = conn.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
            (schema, name),
        ).fetchone()
        if row is not None:
            oids[(schema, name)] = row[0]
    if not oids:
        return out
    bodies = _function_bodies(conn, sorted(_MANAGED | set(_SYSTEM)))
    for key, oid in oids.items():
        schema, name = key
        around = (known or {}).get(key) or surroundings.read(conn, _Named(schema, name))
        uses: list[Use] = []
        tied = set()
        for d in around.dependents:
            uses.append(Use(d.kind, d.name, ("reads " + ", ".join(d.columns)) if d.columns else "reads it"))
            if d.kind == "function":
                tied.add(d.oid)
        for function_oid, function, names, columns, mentioned in bodies:
            if function_oid in tied:
                continue
            hit = (schema, name) in names or (None, name) in names
            if not hit and not (mentioned and re.search(rf"(?<![\w$]){re.escape(name)}(?![\w$])", mentioned)):
                continue
            detail = "its body names it" if hit else "its body mentions it in text (dynamic SQL, or a part not parsed)"
            lost = sorted(columns & (dropped or {}).get(key, set()))
            if lost:
                detail += f"; names {', '.join(lost)}, which the rules drop: it breaks after contract"
            moved = (renamed or {}).get(key, {})
            if columns & set(moved):
                detail += "; names " + ", ".join(f"{c} (now {moved[c]})" for c in sorted(columns & set(moved))) + ": it reads the view after contract; rewrite it before the view goes"
            uses.append(Use("function", function, detail))
        uses += [Use("trigger", t.name, f"runs {t.function}") for t in around.triggers]
        uses += [Use("policy", f"{p.name} on {name}", f"{p.command} to {', '.join(p.roles)}") for p in around.policies]
        uses += [Use("foreign key", f"{r.name} of {r.schema}.{r.table}", r.definition) for r in around.referenced_by]
        uses += [Use("publication", p, "realtime" if p == "supabase_realtime" else "") for p in around.publications]
        out[key] = uses
    return out


@dataclass(frozen=True, slots=True)
class _Named:
    schema: str
    name: str


def _function_bodies(conn: psycopg.Connection, skipped: list[str]) -> list[tuple[int, str, set[tuple[str | None, str]], set[str], str]]:
    """Each SQL or PL/pgSQL function with a string body outside the system's schemas: its oid, its
    name, the relations its statements name, the column names they name, and the text left where
    parsing did not reach (for a plain word search)."""
    rows = conn.execute(
        "SELECT p.oid, format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), l.lanname, p.prosrc,"
        " CASE WHEN l.lanname = 'plpgsql' THEN pg_get_functiondef(p.oid) END"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang"
        " WHERE l.lanname IN ('sql', 'plpgsql') AND p.prosqlbody IS NULL AND p.prokind IN ('f', 'p')"
        " AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%' ORDER BY 2",
        (skipped,),
    ).fetchall()
    out = []
    for oid, name, language, source, definition in rows:
        names: set[tuple[str | None, str]] = set()
        columns: set[str] = set()
        unparsed: list[str] = []
        queries = [source] if language == "sql" else _plpgsql_queries(definition, unparsed)
        for query in queries:
            if not _collect(query, names, columns, unparsed):
                unparsed.append(query)
        out.append((oid, name, names, columns, "\n".join(unparsed)))
    return out


def _plpgsql_queries(definition: str, unparsed: list[str]) -> list[str]:
    import pglast

    try:
        tree = pglast.parse_plpgsql(definition)
    except Exception:  # noqa: BLE001 - pglast's own error types
        unparsed.append(definition)
        return []
    return [value["query"] for value in objects(tree) if isinstance(value.get("query"), str)]


def _collect(query: str, names: set[tuple[str | None, str]], columns: set[str], unparsed: list[str]) -> bool:
    """The relations and columns `query` names (a statement, an expression, an assignment, or a
    string literal holding a statement, as EXECUTE runs it); False when it does not parse."""
    from pglast import ast, parser

    tree = None
    for candidate in (query, f"SELECT {query}", f"SELECT {query.split(':=', 1)[-1]}" if ":=" in query else None):
        if candidate is None:
            continue
        try:
            tree = parser.parse_sql(candidate)
            break
        except Exception:  # noqa: BLE001 - pglast's own error types
            continue
    if tree is None:
        return False

    for value in nodes(tree):
        if isinstance(value, ast.RangeVar):
            names.add((value.schemaname, value.relname))
        elif isinstance(value, ast.ColumnRef):
            last = value.fields[-1] if value.fields else None
            if isinstance(last, ast.String):
                columns.add(last.sval)
        elif isinstance(value, ast.A_Const) and isinstance(value.val, ast.String):
            text = value.val.sval
            if re.match(r"\s*(select|insert|update|delete|with|merge|truncate)\b", text, re.I) and not _collect(text, names, columns, unparsed):
                unparsed.append(text)  # a statement EXECUTE runs, with parts added at run time
    return True


def rpc_functions(uses: dict[tuple[str, str], list[Use]]) -> dict[str, list[tuple[str, str]]]:
    """Each function an `.rpc()` can call (its name; `schema.name` outside public) whose body uses
    a legacy table: [(the table as the rules name it, how)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for (schema, table), found in uses.items():
        legacy = table if schema == "public" else f"{schema}.{table}"
        for use in found:
            if use.kind != "function":
                continue
            name = _function_name(use.name)
            if name is not None and (legacy, use.detail) not in out.setdefault(name, []):
                out[name].append((legacy, use.detail))
    return out


def _function_name(signature: str) -> str | None:
    """`public.get_stats(uid uuid)` -> `get_stats`, `"api"."Odd name"(...)` -> `api.Odd name`
    (identifiers as format's %I writes them)."""
    m = re.match(r'((?:"(?:[^"]|"")+"|[^".(]+))\.((?:"(?:[^"]|"")+"|[^".(]+))\(', signature)
    if m is None:
        return None
    schema, name = (part[1:-1].replace('""', '"') if part.startswith('"') else part for part in m.groups())
    return name if schema == "public" else f"{schema}.{name}"
