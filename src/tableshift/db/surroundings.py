"""What surrounds a table in PostgreSQL's own catalog, which the phases must carry or refuse by
name: row-level security and its policies, grants (the table's and its sequences'), foreign keys
other tables hold on it, objects that depend on it (views, materialized views, rules, SQL-standard
function bodies), triggers, and the publications it is in (realtime) with its replica identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tableshift.db.catalog import quote
from tableshift.sqltree import nodes, objects

if TYPE_CHECKING:
    import psycopg

    from tableshift.db.catalog import Table

COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    command: str  # SELECT, INSERT, UPDATE, DELETE, ALL
    permissive: bool
    roles: tuple[str, ...]  # 'public' for PUBLIC
    using: str | None  # the expressions as pg_get_expr writes them
    check: str | None


@dataclass(frozen=True, slots=True)
class Reference:
    """A foreign key a table (another, or this one: a `parent_id`) holds on this one."""

    name: str
    schema: str
    table: str
    definition: str  # pg_get_constraintdef
    columns: tuple[str, ...] = ()  # the columns of this table it references


def view_options(options: tuple[str, ...]) -> str:
    """A view's options as CREATE VIEW takes them: ` WITH (...)`, or nothing."""
    return f" WITH ({', '.join(options)})" if options else ""


@dataclass(frozen=True, slots=True)
class Dependent:
    """An object PostgreSQL ties to the table by its oid (a view, a materialized view, a rule, a
    SQL-standard function body): after `contract` it would keep reading the archived table."""

    kind: str  # view, materialized view, rule, function, policy (of another table)
    name: str  # as PostgreSQL writes it, schema-qualified
    oid: int
    columns: tuple[str, ...]  # the table's columns it reads
    statement: str | None  # CREATE OR REPLACE that makes it read the same name again, when one can
    query: str | None = None  # a view's query, every name schema-qualified
    options: tuple[str, ...] = ()  # a view's options (security_invoker, check_option, ...)
    owner: str = ""
    table: tuple[str, str] | None = None  # a policy's table

    @property
    def with_options(self) -> str:
        return view_options(self.options)

    @property
    def invoker(self) -> bool:
        """A view that reads its tables with the caller's rights (else with its owner's)."""
        return any(o.replace(" ", "").lower() in ("security_invoker=true", "security_invoker=on", "security_invoker=1") for o in self.options)


@dataclass(frozen=True, slots=True)
class Trigger:
    name: str
    function: str  # schema-qualified, quoted
    definition: str  # pg_get_triggerdef
    fields: frozenset[str] | None = None  # the NEW / OLD fields its function reads; None: not known
    source: str | None = None  # its PL/pgSQL function's definition (pg_get_functiondef)


def _arguments(definition: str) -> tuple[str, ...]:
    """The arguments a trigger passes its function, from its definition."""
    from pglast import ast, parser

    try:
        node = parser.parse_sql(definition)[0].stmt
    except Exception:  # noqa: BLE001 - pglast's own error types
        return ()
    return tuple(a.sval for a in node.args or () if isinstance(a, ast.String))


def record_fields(language: str, function: str | None, name: str, arguments: tuple[str, ...]) -> frozenset[str] | None:
    """The fields of NEW and OLD a trigger function reads, from its PL/pgSQL parse tree; None when
    that cannot be known (another language, the whole row passed on, a body that does not parse).
    `moddatetime(column)` names its column in the trigger's arguments."""
    import pglast

    if name.rpartition(".")[2].strip('"') == "moddatetime":
        return frozenset(arguments)
    if language != "plpgsql" or function is None:
        return None
    try:
        tree = pglast.parse_plpgsql(function)
    except Exception:  # noqa: BLE001 - pglast's own error types
        return None
    fields: set[str] = set()
    for value in objects(tree):
        field = value.get("PLpgSQL_recfield")
        if isinstance(field, dict) and isinstance(field.get("fieldname"), str):
            fields.add(field["fieldname"])
        query = value.get("query")
        if isinstance(query, str) and re.search(r"(?<![\w.$\"])(new|old)(?![\w$])(?!\s*\.)", query, re.I):
            return None  # the record as a whole (to_jsonb(NEW), EXECUTE ... USING NEW): any column
    return frozenset(fields)


@dataclass(slots=True)
class Surroundings:
    rls: bool = False
    force_rls: bool = False
    policies: list[Policy] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)  # sequences owned by the table's columns, quoted
    referenced_by: list[Reference] = field(default_factory=list)
    dependents: list[Dependent] = field(default_factory=list)  # views, rules, functions, in creation order
    triggers: list[Trigger] = field(default_factory=list)  # the table's own, tableshift's left out
    publications: list[str] = field(default_factory=list)
    replica_identity: str = "d"  # d default, f full, n nothing, i index
    # the columns of each relation its policies' sub-queries read, as PostgreSQL resolves their names
    relation_columns: dict[tuple[str | None, str], frozenset[str]] = field(default_factory=dict)


def read(conn: psycopg.Connection, table: Table) -> Surroundings:
    row = conn.execute(
        "SELECT c.oid, c.relrowsecurity, c.relforcerowsecurity, c.relreplident FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (table.schema, table.name),
    ).fetchone()
    if row is None:
        return Surroundings()
    oid, rls, force, replident = row
    out = Surroundings(rls=bool(rls), force_rls=bool(force), replica_identity=str(replident))
    for name, cmd, permissive, roles, using, check in conn.execute(
        "SELECT p.polname, p.polcmd, p.polpermissive,"
        " ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) AS r ORDER BY 1),"
        " pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)"
        " FROM pg_policy p WHERE p.polrelid = %s ORDER BY p.polname",
        (oid,),
    ):
        out.policies.append(Policy(name, COMMANDS.get(cmd, "ALL"), bool(permissive), tuple(roles), using, check))
    for relation in {r for p in out.policies for e in (p.using, p.check) if e for r in _relations(e)}:
        schema, name = relation
        row = conn.execute(
            "SELECT array_agg(a.attname::text) FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
            (f"{quote(schema)}.{quote(name)}" if schema else quote(name),),
        ).fetchone()
        if row and row[0] is not None:
            out.relation_columns[relation] = frozenset(row[0])
    out.sequences = [
        f"{quote(schema)}.{quote(name)}"
        for schema, name in conn.execute(
            "SELECT n.nspname, s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
            " JOIN pg_namespace n ON n.oid = s.relnamespace"
            " WHERE d.refobjid = %s AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') ORDER BY 1, 2",
            (oid,),
        )
    ]
    out.referenced_by = [
        Reference(name, schema, child, definition, tuple(columns))
        for name, schema, child, definition, columns in conn.execute(
            "SELECT c.conname, n.nspname, cl.relname, pg_get_constraintdef(c.oid),"
            " ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, i)"
            " JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.i)"
            " FROM pg_constraint c"
            " JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace"
            " WHERE c.contype = 'f' AND c.confrelid = %s ORDER BY 2, 3, 1",  # its own (a parent_id) too
            (oid,),
        )
    ]
    out.dependents = dependents(conn, oid)
    out.triggers = [
        Trigger(name, function, definition, record_fields(language, body, function, _arguments(definition)), body)
        for name, function, definition, language, body in conn.execute(
            "SELECT t.tgname, t.tgfoid::regproc::text, pg_get_triggerdef(t.oid), l.lanname,"
            " CASE WHEN l.lanname = 'plpgsql' THEN pg_get_functiondef(t.tgfoid) END"
            " FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_language l ON l.oid = p.prolang"
            " WHERE t.tgrelid = %s AND NOT t.tgisinternal AND t.tgname <> 'tableshift_sync' ORDER BY t.tgname",
            (oid,),
        )
    ]
    out.publications = [
        name
        for (name,) in conn.execute(
            "SELECT p.pubname FROM pg_publication p WHERE p.puballtables = false AND EXISTS"
            " (SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = %s) ORDER BY 1",
            (oid,),
        )
    ]
    return out


def dependents(conn: psycopg.Connection, oid: int) -> list[Dependent]:
    """The objects that read table `oid` through its oid, each with the columns it reads and, for a
    view or a SQL-standard function, the statement that recreates it as it is (names written
    schema-qualified, so that run after `contract` it reads the compatibility view)."""
    rows = conn.execute(
        "SELECT CASE v.relkind WHEN 'm' THEN 'materialized view' WHEN 'v' THEN 'view' ELSE 'rule' END, w.oid, v.oid,"
        " format('%%I.%%I', n.nspname, v.relname), 'pg_rewrite'::regclass::oid"
        " FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class v ON v.oid = w.ev_class"
        " JOIN pg_namespace n ON n.oid = v.relnamespace"
        " WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = %s AND d.refclassid = 'pg_class'::regclass AND v.oid <> %s"
        " UNION SELECT 'function', p.oid, p.oid, format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),"
        " 'pg_proc'::regclass::oid"
        " FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE d.classid = 'pg_proc'::regclass AND d.refobjid = %s AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'n'"
        " UNION SELECT 'policy', p.oid, p.oid, format('%%s on %%s', p.polname, p.polrelid::regclass), 'pg_policy'::regclass::oid"
        " FROM pg_depend d JOIN pg_policy p ON p.oid = d.objid"
        " WHERE d.classid = 'pg_policy'::regclass AND d.refobjid = %s AND d.refclassid = 'pg_class'::regclass AND p.polrelid <> %s",
        (oid, oid, oid, oid, oid),
    ).fetchall()
    out = []
    previous = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
    conn.execute("SELECT set_config('search_path', '', false)")  # every name written with its schema
    try:
        for kind, depender, obj, name, classid in sorted(set(rows), key=lambda r: (r[2], r[0])):
            columns = tuple(
                column
                for (column,) in conn.execute(
                    "SELECT DISTINCT a.attname FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
                    " WHERE d.classid = %s AND d.objid = %s AND d.refobjid = %s AND d.refobjsubid > 0 ORDER BY 1",
                    (classid, depender, oid),
                )
            )
            statement = query = None
            options: tuple[str, ...] = ()
            owner = ""
            on: list[str] = []
            if kind == "view":
                definition, reloptions, owner = conn.execute(
                    "SELECT pg_get_viewdef(%s::oid), reloptions, pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s", (obj, obj)
                ).fetchone()
                query, options = definition.strip().rstrip(";"), tuple(reloptions or ())
                statement = f"CREATE OR REPLACE VIEW {name}{view_options(options)} AS\n{query};"
            elif kind == "materialized view":
                definition, reloptions, owner, used = conn.execute(
                    "SELECT pg_get_viewdef(%s::oid), reloptions, pg_get_userbyid(relowner),"
                    " EXISTS (SELECT 1 FROM pg_depend d WHERE d.refobjid = %s AND d.refclassid = 'pg_class'::regclass"
                    "         AND d.classid IN ('pg_rewrite'::regclass, 'pg_proc'::regclass, 'pg_policy'::regclass)"
                    "         AND NOT (d.classid = 'pg_rewrite'::regclass AND d.objid IN (SELECT oid FROM pg_rewrite WHERE ev_class = %s)))"
                    " FROM pg_class WHERE oid = %s",
                    (obj, obj, obj, obj),
                ).fetchone()
                if not used:  # dropped and made again: nothing else may depend on it
                    query, options = definition.strip().rstrip(";"), tuple(reloptions or ())
                    extra = [
                        f"{index};"
                        for (index,) in conn.execute("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s ORDER BY indexrelid", (obj,))
                    ]
                    extra.append(f"ALTER MATERIALIZED VIEW {name} OWNER TO {quote(owner)};")
                    extra += [
                        f"GRANT {privilege} ON {name} TO {'PUBLIC' if grantee == 0 else quote(role)};"
                        for grantee, role, privilege in conn.execute(
                            "SELECT a.grantee, pg_get_userbyid(a.grantee), a.privilege_type FROM pg_class c, aclexplode(c.relacl) a"
                            " WHERE c.oid = %s AND a.grantee <> c.relowner ORDER BY 2, 3",
                            (obj,),
                        )
                    ]
                    statement = "\n".join(extra)  # what follows the CREATE (see carry.dependents)
            elif kind == "function":
                row = conn.execute("SELECT pg_get_functiondef(%s::oid) FROM pg_proc WHERE oid = %s AND prosqlbody IS NOT NULL", (obj, obj)).fetchone()
                statement = row[0].strip().rstrip(";") + ";" if row else None
            elif kind == "policy":  # another table's policy that reads this one: its expressions bound again by name
                policy, table, using, check, on = conn.execute(
                    "SELECT p.polname, format('%%I.%%I', n.nspname, c.relname), pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),"
                    " ARRAY[n.nspname::text, c.relname::text]"
                    " FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.oid = %s",
                    (obj,),
                ).fetchone()
                statement = f"ALTER POLICY {quote(policy)} ON {table}" + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else "") + ";"
            out.append(Dependent(kind, name, obj, columns, statement, query, options, owner, tuple(on) if kind == "policy" else None))
    finally:
        from psycopg import pq

        if conn.info.transaction_status != pq.TransactionStatus.INERROR:  # else the error that got here is the one to tell
            conn.execute("SELECT set_config('search_path', %s, false)", (previous,))
    return out


def _relations(expression: str) -> set[tuple[str | None, str]]:
    """The relations an expression's sub-queries read."""
    from pglast import ast, parser

    try:
        node = parser.parse_sql(f"SELECT {expression}")[0].stmt
    except Exception:  # noqa: BLE001 - pglast's own error types
        return set()
    return {(value.schemaname, value.relname) for value in nodes(node) if isinstance(value, ast.RangeVar)}


class NotCarried(Exception):
    """Why an object cannot be carried to the target safely: the phase refuses, naming it."""


def rename_columns(
    expression: str,
    renames: dict[str, str],
    dropped: set[str],
    *,
    legacy: str,
    target: str,
    columns: dict[tuple[str | None, str], frozenset[str]] | None = None,
) -> str:
    """A policy expression of the legacy table as it reads on the target: its columns renamed
    (bare, or qualified with the legacy table's name). A bare name inside a sub-query is the legacy
    table's when no relation the sub-query reads has that column (`columns`, from the catalog),
    as PostgreSQL resolves it; when that cannot be told, or a dropped column is read, it is not
    carried."""
    from pglast import ast, parser
    from pglast.stream import RawStream

    try:
        node = parser.parse_sql(f"SELECT {expression}")[0].stmt.targetList[0].val
    except Exception as exc:  # noqa: BLE001 - pglast's own error types
        raise NotCarried(f"its expression does not parse ({str(exc).splitlines()[0][:80]})") from None
    touched = set(renames) | dropped

    known = columns or {}

    def scope(select: ast.SelectStmt) -> frozenset[str] | None:
        """The column names a sub-query's FROM list brings; None when that cannot be told."""
        names: set[str] = set()
        for item in select.fromClause or ():
            if not isinstance(item, ast.RangeVar) or (item.schemaname, item.relname) not in known:
                return None
            names |= known[(item.schemaname, item.relname)]
        return frozenset(names)

    def walk(value: object, inside: bool, scopes: tuple[frozenset[str] | None, ...] = ()) -> None:
        if isinstance(value, (list, tuple)):
            for item in value:
                walk(item, inside, scopes)
            return
        if not isinstance(value, ast.Node):
            return
        if isinstance(value, ast.SubLink):  # `x IN (SELECT ...)`: x is outside the sub-query
            walk(value.testexpr, inside, scopes)
            walk(value.subselect, True, scopes)
            return
        if isinstance(value, ast.SelectStmt) and inside:
            scopes = (*scopes, scope(value))
        if isinstance(value, ast.ColumnRef):
            names = [getattr(f, "sval", None) for f in value.fields]
            column = names[-1]
            qualified = len(names) == 2 and names[0] == legacy
            if column in touched and (len(names) == 1 or qualified):
                outer = bool(scopes) and all(s is not None and column not in s for s in scopes)
                if inside and len(names) == 1 and not outer:
                    raise NotCarried(f"it names column {column!r} inside a sub-query, which the rules rename or drop")
                if column in dropped:
                    raise NotCarried(f"it reads column {column!r}, which the rules drop")
                new = renames[column]
                # inside a sub-query, the new name qualified: a relation there may have a column of that name
                value.fields = ((ast.String(target), ast.String(new)) if qualified or inside else (ast.String(new),))
            elif qualified:
                value.fields = (ast.String(target), ast.String(column))
            return
        for name in value:
            if name != "location":
                walk(getattr(value, name), inside, scopes)

    walk(node, False)
    return RawStream()(node)
