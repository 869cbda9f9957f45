"""A query call as the SQL statement PostgREST would run for it, for PostgreSQL to check.

Values the code spells out are bound as PostgREST binds them: as text that PostgreSQL casts to the
column's type (`.eq('impressions', 'n/a')` fails on an integer column, as it would in production).
Values held in variables are typed parameters (a NULL of the column's type). Embedded resources
are joined through a foreign key, as PostgREST finds them; a call whose parts are not visible
(a payload in a variable, a chain that continues elsewhere) is checked on what is visible.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tableshift.db.catalog import literal, quote
from tableshift.model import Call, Column, Embedded, Kind, Operation, Role

if TYPE_CHECKING:
    import psycopg

class Unchecked(Exception):
    """Why a call is not checked: no statement can be built for it."""


@dataclass(frozen=True, slots=True)
class Relationship:
    """A foreign key between two tables, as PostgREST embeds through it."""

    name: str
    child: str  # the table holding the foreign key
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    child_view: bool = False  # the key as a view shows it (SchemaCache.hs, addViewM2OAndO2ORels)
    parent_view: bool = False


@dataclass(frozen=True, slots=True)
class ManyToMany:
    """Two tables joined through a junction table whose primary key holds both foreign keys'
    columns, as PostgREST's schema cache finds them (SchemaCache.hs, addM2MRels)."""

    junction: str
    origin: str
    origin_keys: tuple[str, ...]  # the junction's columns that reference the origin
    origin_columns: tuple[str, ...]  # the origin's columns they reference
    target: str
    target_keys: tuple[str, ...]
    target_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Computed:
    """A computed relationship: a function taking a row of `origin` and returning rows of `target`
    (SchemaCache.hs, allComputedRels); to one when it returns one row (not a set, or ROWS 1)."""

    function: str
    schema: str
    origin: str
    target: str
    to_one: bool


def _computed(conn: psycopg.Connection) -> list[Computed]:
    rows = conn.execute(
        "SELECT p.proname, pn.nspname, oc.relname, rc.relname, NOT p.proretset OR p.prorows = 1"
        " FROM pg_proc p JOIN pg_namespace pn ON pn.oid = p.pronamespace"
        " JOIN pg_class oc ON oc.reltype = p.proargtypes[0] JOIN pg_namespace on_ ON on_.oid = oc.relnamespace"
        " JOIN pg_class rc ON rc.reltype = p.prorettype JOIN pg_namespace rn ON rn.oid = rc.relnamespace"
        " WHERE p.pronargs = 1 AND p.prokind = 'f' AND pn.nspname = 'public' AND on_.nspname = 'public' AND rn.nspname = 'public'"
    ).fetchall()
    return [Computed(fn, schema, origin, target, bool(one)) for fn, schema, origin, target, one in rows]


def relationships(conn: psycopg.Connection) -> list[Relationship | ManyToMany | Computed]:
    direct = _foreign_keys(conn)
    primary = {
        table: set(columns)
        for table, columns in conn.execute(
            "SELECT cl.relname, array(SELECT a.attname FROM unnest(c.conkey) k(n) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n)"
            " FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace"
            " WHERE c.contype = 'p' AND n.nspname = 'public'"
        ).fetchall()
    }
    many: list[Relationship | ManyToMany | Computed] = list(_computed(conn))
    for one in direct:
        for other in direct:
            if one.child != other.child or one.name == other.name:
                continue
            if set(one.child_columns) | set(other.child_columns) <= primary.get(one.child, set()):
                many.append(ManyToMany(one.child, one.parent, one.child_columns, one.parent_columns, other.parent, other.child_columns, other.parent_columns))
    return [*direct, *many]


def _foreign_keys(conn: psycopg.Connection) -> list[Relationship]:
    """The foreign keys between tables of the exposed schema, and the same keys through views that
    show their columns (SchemaCache.hs, addViewM2OAndO2ORels): PostgREST sees no relationship to a
    table it does not expose (`auth.users`)."""
    rows = conn.execute(
        "SELECT c.conname, cl.relname, pl.relname, cl.oid, pl.oid, c.conkey, c.confkey,"
        " array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),"
        " array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)"
        " FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class pl ON pl.oid = c.confrelid"
        " JOIN pg_namespace n ON n.oid = cl.relnamespace JOIN pg_namespace pn ON pn.oid = pl.relnamespace"
        " WHERE c.contype = 'f' AND n.nspname = 'public' AND pn.nspname = 'public'"
    ).fetchall()
    out = [Relationship(name, child, tuple(cc), parent, tuple(pc)) for name, child, parent, _, _, _, _, cc, pc in rows]
    shown = _view_columns(conn)  # (table oid, attnum) -> [(view, column)]
    for name, child, parent, child_oid, parent_oid, ckey, pkey, cc, pc in rows:
        as_child = [("t", child, tuple(cc))] + [("v", *v) for v in _through(shown, child_oid, ckey)]
        as_parent = [("t", parent, tuple(pc))] + [("v", *v) for v in _through(shown, parent_oid, pkey)]
        for kind_c, c_name, c_cols in as_child:
            for kind_p, p_name, p_cols in as_parent:
                if kind_c == kind_p == "t":
                    continue
                out.append(Relationship(name, c_name, c_cols, p_name, p_cols, kind_c == "v", kind_p == "v"))
    return out


def _through(shown: dict[tuple[int, int], list[tuple[str, str]]], table: int, key: list[int]) -> list[tuple[str, tuple[str, ...]]]:
    """Each view that shows every column of a key, with the columns that show them (a column shown
    twice gives one choice each, as PostgREST's expandKeyDepCols does)."""
    views = set.intersection(*(set(v for v, _ in shown.get((table, k), [])) for k in key)) if key else set()
    out = []
    for view in sorted(views):
        choices = [[c for v, c in shown[(table, k)] if v == view] for k in key]
        out += [(view, tuple(combo)) for combo in itertools.product(*choices)]
    return out


def _view_columns(conn: psycopg.Connection) -> dict[tuple[int, int], list[tuple[str, str]]]:
    """Which table column each column of an exposed view shows, followed through views of views:
    the origin PostgreSQL's parser records in the view's query (pg_rewrite.ev_action, each target
    entry's resorigtbl / resorigcol), as PostgREST's allViewsKeyDependencies reads it."""
    rows = conn.execute(
        "SELECT c.oid, c.relname, n.nspname = 'public', r.ev_action FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND r.rulename = '_RETURN'"
    ).fetchall()
    origins: dict[tuple[int, int], tuple[int, int]] = {}  # (view, attnum) -> (relation, attnum)
    names: dict[tuple[int, int], str] = {}
    for oid, _, _, action in rows:
        for entry in _target_entries(action):
            names[(oid, entry["resno"])] = entry["resname"]
            if entry["resorigtbl"]:
                origins[(oid, entry["resno"])] = (entry["resorigtbl"], entry["resorigcol"])
    public = {oid: view for oid, view, exposed, _ in rows if exposed}
    out: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for (v, attnum), origin in origins.items():
        if v not in public:
            continue
        seen = {origin}
        while origin in origins and origins[origin] not in seen:  # a view of a view: its own origin
            origin = origins[origin]
            seen.add(origin)
        out.setdefault(origin, []).append((public[v], names[(v, attnum)]))
    return out


def _target_entries(action: str) -> list[dict[str, object]]:
    """The target list of a stored query (PostgreSQL's node text: `({QUERY ... :targetList
    ({TARGETENTRY :resno 1 :resname id :resorigtbl 16433 :resorigcol 2 :resjunk false} ...)})`)."""
    tree = _nodes(action)
    query = tree[0] if isinstance(tree, list) and tree else None
    if not isinstance(query, dict):
        return []
    out = []
    for entry in _field(query, "targetList") or []:
        if isinstance(entry, dict) and _field(entry, "resjunk") != "true":
            try:
                out.append({
                    "resno": int(_field(entry, "resno")), "resname": _field(entry, "resname"),
                    "resorigtbl": int(_field(entry, "resorigtbl") or 0), "resorigcol": int(_field(entry, "resorigcol") or 0),
                })  # fmt: skip
            except (TypeError, ValueError):
                continue
    return out


def _field(node: dict, name: str):  # type: ignore[no-untyped-def,type-arg]
    value = node.get(name)
    return value[0] if value else None


def _nodes(text: str):  # type: ignore[no-untyped-def]
    """PostgreSQL's node text (outfuncs.c; read by readfuncs.c's pg_strtok) as Python values: a
    node `{NAME :field value ...}` is a dict of lists, a list `(...)` a list, a token a string
    (backslash escapes a character; `<>` is None). Read with a stack of open lists and nodes, not
    by recursion: a view's expression may nest thousands deep (`1 + 1 + ...`), and PostgREST
    still reads its relationships. Text that ends early closes what is open."""
    tokens = re.findall(r'[(){}]|(?:\\.|[^\s(){}\\])+', text)
    if not tokens:
        return None
    count = len(tokens)
    pos = 0
    stack: list[list] = []  # type: ignore[type-arg]  # open frames: [list] for `(`, [node, open field or None] for `{`
    while True:
        token = tokens[pos]  # an item starts here
        pos += 1
        opened = token in ("(", "{")
        if token == "(":
            stack.append([[]])
        elif token == "{":
            pos += 1  # the node's name
            stack.append([{}, None])
        else:
            value = None if token == "<>" else re.sub(r"\\(.)", r"\1", token)
        while True:
            if not opened:  # a finished item: to the innermost open frame (a node drops it outside a field)
                if not stack:
                    return value
                frame = stack[-1]
                if len(frame) == 1:
                    frame[0].append(value)
                elif frame[1] is not None:
                    frame[1].append(value)
            opened = False
            frame = stack[-1]
            if len(frame) == 2:  # a node's `:field` names, up to its next value
                while pos < count and tokens[pos] != "}" and tokens[pos].startswith(":"):
                    frame[1] = frame[0].setdefault(tokens[pos][1:], [])
                    pos += 1
            if pos < count and tokens[pos] != (")" if len(frame) == 1 else "}"):
                break  # the frame's next item
            pos += 1  # past its `)` or `}` (or the end of a text that ends early)
            value = stack.pop()[0]


@dataclass(slots=True)
class Statement:
    """SQL with `$n` placeholders, and the text of each value (None: a NULL of the column's type),
    bound as parameters as PostgREST binds them: never spliced into the text."""

    sql: str
    params: list[str | None]
    partial: str | None = None  # what could not be checked (a payload in a variable): the rest was
    # an insert whose whole payload is visible: its table and columns, for the NOT NULL check that
    # EXPLAIN (which never executes) cannot make
    # and the columns some row sends as NULL (a `null`, or a key another row of an array has)
    # (None instead of the columns for an update, which leaves the others as they are)
    inserted: tuple[str, str, tuple[str, ...] | None, tuple[str, ...]] | None = None
    types: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column): its type's name
    language: str = "typescript"  # the client: supabase-py quotes a filter's key, postgrest-js does not
    # a write's body and its row type: EXPLAIN never reads the body, so check() converts it to the
    # row type apart (a pure SELECT of a constant: no table is read or written)
    body: tuple[str, str] | None = None
    # a write's representation embeds resources (`insert(...).select('id, author(name)')`): the
    # embeds as a read of the table, checked apart (the write's own parameters are not theirs)
    representation: Statement | None = None

    def payload(self, row_type: str, rows: list[dict[str, object]]) -> str:
        self.body = (row_type, _json(rows))
        return f"{self.bind(self.body[1])}::json"

    def bind(self, value: str | None) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


def column_types(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    """Each column of the public tables and views, and its base type's name (a domain's underlying
    type), as PostgREST's schema cache holds them."""
    rows = conn.execute(
        "SELECT c.relname, a.attname, coalesce(bt.typname, t.typname) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = t.typbasetype AND t.typtype = 'd'"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped"
    ).fetchall()
    return {(table, column): kind for table, column, kind in rows}


def build(
    call: Call, table: str, fks: list, *, aggregates: bool = False, types: dict[tuple[str, str], str] | None = None  # type: ignore[type-arg]
) -> Statement:
    """The statement for `call` on `table` (the call's own, or its target after a rewrite).
    `aggregates`: the project's PostgREST has `db-aggregates-enabled` on (off by default); `types`:
    the columns' types (`column_types`)."""
    out = Statement("", [], types=types or {}, language=call.language)
    out.sql = _build(call, table, fks, out)  # PostgREST's own refusals first: they hold whatever the setting
    if not aggregates and _uses_aggregates(call.columns.select, call.columns.embedded):
        raise ServerSetting(
            "Use of aggregate functions is not allowed (PostgREST's PGRST123: db-aggregates-enabled is off by default;"
            " pass --aggregates if the project turned it on)"
        )
    return out


def _build(call: Call, table: str, fks: list[Relationship], p: Statement) -> str:
    if call.kind is not Kind.TABLE:
        raise Unchecked(f"{call.kind.value} calls are not checked")
    if call.malformed:
        raise PostgrestError(f"{call.malformed[0]} (PGRST100)")
    columns = call.columns
    for c in columns.filter:
        # a filter on a column named like a query parameter PostgREST reserves is read as that
        # parameter (`order=eq.1` is an order that does not parse): QueryParams.hs, parse
        if c.op not in ("order", "or") and c.name in _RESERVED_KEYS:
            raise PostgrestError(f"failed to parse {c.name} parameter ({filter_text(c) or c.op + '...'}) (PGRST100): '{c.name}' is a query parameter PostgREST reserves")
    target = quote(table) if "." not in table else ".".join(quote(p) for p in table.split(".", 1))
    alias = quote(table.split(".")[-1])
    scoped = _scoped(columns)
    op = call.operation
    # every column qualified with its table, as PostgREST writes them: a computed column (a
    # function taking the row, `full_title(posts)`) is then found as `"posts"."full_title"`
    prefix = f"{alias}." if op in (None, Operation.SELECT, Operation.UPDATE, Operation.DELETE) else ""
    root = [c for c in columns.filter if c.qualifier is None]
    if op not in (None, Operation.SELECT):
        # a write applies every or() / and() to the table itself, embedded ones too: mutatePlan
        # takes each logic tree without its embed path (Plan.hs, `logic = map (... . snd) qsLogic`)
        root += [dataclasses.replace(c, qualifier=None) for c in columns.filter if c.qualifier is not None and c.op == "or"]
    where = _where(root, columns.embedded, p, prefix, table.split(".")[-1])
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    options = dict(call.options)
    for key in options:  # `rel.limit`, `rel.range`: on an embedded resource, which must be embedded
        if "." in key:
            scoped.setdefault(key.rpartition(".")[0], [])
    _distinct_embeds(table.split(".")[-1], columns.embedded)
    if op in (None, Operation.SELECT):
        _embedded_paths(scoped, columns.embedded)
        items = [_select_item(c, prefix) for c in columns.select] or ["*"]
        items += [_embed(e, table.split(".")[-1], fks, scoped=scoped, p=p, options=options) for e in columns.embedded]
        group = _group_by(columns.select, prefix)
        order = [_related_order(c, columns.embedded, table.split(".")[-1], fks, p) or _order(c, prefix) for c in columns.filter if c.op == "order" and c.qualifier is None]
        if "count" in options:  # PostgREST counts the filtered rows; with head, only that
            items = ["count(*)"] if options.get("head") == "true" else [*items, "count(*) OVER () AS tableshift_count"]
            group = [] if options.get("head") == "true" else group
        return (
            f"SELECT {', '.join(items)} FROM {target} AS {alias}{where_sql}"
            + (f" GROUP BY {', '.join(group)}" if group else "")
            + (f" ORDER BY {', '.join(order)}" if order else "")
            + _limit(options)
        )
    # a write's filters on an embedded resource only shape the returned representation; the
    # resource must still be embedded (Plan.hs, addLogicTrees / updateNode)
    _embedded_paths(scoped, columns.embedded)
    if columns.embedded:  # PostgREST embeds them in what the write returns: read from the written rows
        shown = Statement("", [], types=p.types)
        embeds = [_embed(e, table.split(".")[-1], fks, scoped=scoped, p=shown, options=options) for e in columns.embedded]
        shown.sql = f"SELECT {', '.join(embeds)} FROM {target} AS {alias} WHERE false"
        p.representation = shown
    # `.select(...)` chained on a write: PostgREST returns those columns (`RETURNING`)
    # qualified with the table, as PostgREST's returningF writes them: a computed column is found
    returning = [_select_item(c, f"{alias}.") for c in columns.select]
    returning_sql = f" RETURNING {', '.join(returning)}" if returning else ""
    # the payload's keys are all visible (no spread, no computed key, no variable)
    keys_visible = not any(o.role is Role.WRITE for o in columns.opaque)
    schema, _, name = table.rpartition(".")
    if op is Operation.UPDATE and call.payload_objects and not columns.write and keys_visible:
        # `update({})`: PostgREST updates nothing; it selects the returned columns `WHERE false`
        # (QueryBuilder.hs, mutatePlanToQuery), so no filter is read and pg-safeupdate sees no UPDATE
        return f"SELECT {', '.join(returning) or 'NULL'} FROM {target} AS {alias} WHERE false"
    if op in (Operation.UPDATE, Operation.DELETE) and returning and not any(c.name == "*" for c in columns.select):
        # PostgREST v13.0.8 applies the call's or() to the rows it returns as well (fixed after
        # v13): a column the or() reads must be among those returned
        shown = {c.name for c in columns.select}
        missing = next((c.name for c in columns.filter if c.op == "or" and c.qualifier is None and c.name not in shown), None)
        if missing is not None:
            raise PostgrestError(f'column pgrst_source.{missing} does not exist: PostgREST v13 applies the or() filter to the returned rows too; select {missing!r} as well')
    hidden = call.open_chain or any(o.role is Role.FILTER for o in columns.opaque)
    if op in (Operation.DELETE, Operation.UPDATE) and not where and not hidden:
        # Supabase loads pg-safeupdate for PostgREST's role: an update or delete without a filter is refused
        raise ServerSetting(f"{op.value.upper()} requires a WHERE clause (Supabase enables pg-safeupdate: an unfiltered {op.value}() is refused)")
    if op is Operation.DELETE:
        return f"DELETE FROM {target}{where_sql}{returning_sql}"
    writes = _unique_writes(columns.write)
    body = _rows(call)
    # the payload as PostgREST reads it: a JSON body through json_populate_recordset, each column
    # of the row type (Query/QueryBuilder.hs, mutateRequestToQuery), so a string into a jsonb
    # column is a JSON string, as it is for PostgREST, not text that must parse as JSON
    row_type = f"NULL::{target}"
    if op is Operation.UPDATE:
        if not writes:
            # the payload is a variable: what is visible (the filters, the returned columns) is
            # still checked, on the rows the update would lock
            p.partial = "the update's payload is not visible: only its filters and returned columns are checked"
            shown = [_select_item(c, prefix) for c in columns.select]
            return f"SELECT {', '.join(shown) or '1'} FROM {target} AS {alias}{where_sql} FOR UPDATE"
        if keys_visible:
            p.inserted = (schema or "public", name, None, tuple(k for k, v in body[0].items() if v is _NULL))
        sets = ", ".join(f"{quote(c.name)} = {_BODY}.{quote(c.name)}" for c in writes)
        return f"UPDATE {target} SET {sets} FROM json_populate_record({row_type}, {p.payload(row_type, body[:1])}) AS {_BODY}{where_sql}{returning_sql}"
    conflict = [quote(c.name) for c in columns.on_conflict]
    if not writes:
        # the payload is a variable: the conflict target (which needs a unique key) and the
        # returned columns are checked, with typed NULLs for the conflict columns' values
        p.partial = f"the {op.value}'s payload is not visible: only its " + ("conflict target and " if conflict else "") + "returned columns are checked"
        if op is Operation.UPSERT and conflict:
            values = ", ".join(p.bind(None) for _ in conflict)
            return f"INSERT INTO {target} ({', '.join(conflict)}) VALUES ({values}) ON CONFLICT ({', '.join(conflict)}) DO NOTHING{returning_sql}"
        return f"INSERT INTO {target} DEFAULT VALUES" + (" ON CONFLICT DO NOTHING" if op is Operation.UPSERT else "") + returning_sql
    if options.get("single") and len(body) > 1:  # more than one row written cannot be one object
        raise PostgrestError(f"JSON object requested, multiple (or no) rows returned: .{options['single']}() on {len(body)} inserted rows (PGRST116)")
    names = ", ".join(quote(c.name) for c in writes)
    picked = ", ".join(f"{_BODY}.{quote(c.name)}" for c in writes)
    statement = f"INSERT INTO {target} ({names}) SELECT {picked} FROM json_populate_recordset({row_type}, {p.payload(row_type, body)}) AS {_BODY}"
    if keys_visible:
        # postgrest-js sends an array's keys as `columns`: a row without one of them sends NULL
        # there, unless `defaultToNull: false` asks PostgREST for the column's default
        missing = options.get("default_to_null") != "false"
        nulled = tuple(c.name for c in writes if missing and any(c.name not in row for row in body))
        nulled += tuple(k for row in body for k, v in row.items() if v is _NULL)
        p.inserted = (schema or "public", name, tuple(c.name for c in writes), tuple(dict.fromkeys(nulled)))
    if op is Operation.UPSERT:
        if conflict and options.get("ignore_duplicates") == "true":
            statement += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
        elif conflict:
            updates = ", ".join(f"{quote(c.name)} = EXCLUDED.{quote(c.name)}" for c in writes)
            statement += f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
        else:  # PostgREST's default: the primary key
            statement += " ON CONFLICT DO NOTHING"
    return statement + returning_sql


_BODY = quote("pgrst_body")
_NULL = object()  # a `null` the code writes: SQL NULL, unlike a variable, which holds some value


def _rows(call: Call) -> list[dict[str, object]]:
    """The payload's rows (an object literal each), each column's value as its text; a variable's
    value is None (some value of the column's type)."""
    objects = sorted(call.payload_objects, key=lambda s: s.start)
    rows: list[dict[str, object]] = [{} for _ in objects] or [{}]
    for c in call.columns.write:
        at = next((i for i, o in enumerate(objects) if c.span is not None and o.start <= c.span.start < o.end), 0)
        rows[at].setdefault(c.name, _NULL if c.null else c.value)
    return [r for r in rows if r] or [{}]


def _json(rows: list[dict[str, object]]) -> str:
    """The body PostgREST receives, each value a JSON string of its text (what PostgreSQL reads
    from it for a column of any type is the same as from the number or boolean)."""
    return json.dumps([{k: None if v is _NULL else v for k, v in row.items()} for row in rows], ensure_ascii=False)


def _uses_aggregates(select: tuple[Column, ...], embedded: tuple[Embedded, ...]) -> bool:
    """An aggregate function anywhere in the select (`x.sum()`, `count()`), embeds included
    (Plan.hs, validateAggFunctions); a bare `count` is not one."""
    return any(c.aggregate and not c.bare for c in select) or any(_uses_aggregates(e.columns, e.embedded) for e in embedded)


def _order(c: Column, prefix: str = "", *, ref: str | None = None) -> str:
    """`order=col.desc.nullsfirst` as PostgREST writes it (QueryBuilder: `ORDER BY col DESC NULLS FIRST`)."""
    parts = (c.value or "").split(".")
    sql = ref or _ref(c, prefix)
    if "desc" in parts:
        sql += " DESC"
    elif "asc" in parts:
        sql += " ASC"
    if "nullsfirst" in parts:
        sql += " NULLS FIRST"
    elif "nullslast" in parts:
        sql += " NULLS LAST"
    return sql


def _limit(options: dict[str, str]) -> str:
    """`.limit(n)` and `.range(a, b)` as PostgREST sends them; a computed bound is a parameter."""
    parts = []
    if "range" in options:
        first, _, last = options["range"].partition(",")
        if re.fullmatch(r"[0-9]+", first) and re.fullmatch(r"[0-9]+", last):
            parts.append(f" LIMIT {int(last) - int(first) + 1} OFFSET {int(first)}")
        else:
            parts.append(" LIMIT NULL OFFSET NULL")
    elif "limit" in options:
        value = options["limit"]
        parts.append(f" LIMIT {value if re.fullmatch(r'[0-9]+', value) else 'NULL'}")
    return "".join(parts)


def _unique_writes(write: tuple[Column, ...]) -> list[Column]:
    seen: dict[str, Column] = {}
    for c in write:
        seen.setdefault(c.name, c)  # an array payload repeats keys: one column each
    return list(seen.values())


def _ref(c: Column, prefix: str = "") -> str:
    base = prefix + quote(c.name)
    if c.json_path:
        # PostgREST reads a JSON path of a column that is not json / jsonb through `to_jsonb(col)`
        # (Plan.hs, resolveTypeOrUnknown); to_jsonb of a json value is itself, so one form serves
        base = f"to_jsonb({base}){_json_path(c.json_path)}"
    return base


def _json_path(path: str) -> str:
    """`->a->>b` as SQL: keys quoted, array indexes as numbers."""
    out = []
    i = 0
    while i < len(path):
        arrow = "->>" if path.startswith("->>", i) else "->"
        i += len(arrow)
        j = i
        while j < len(path) and not path.startswith("->", j):
            j += 1
        key = path[i:j]
        out.append(arrow + (key if re.fullmatch(r"-?[0-9]+", key) else literal(key)))
        i = j
    return "".join(out)


def _select_item(c: Column, prefix: str = "") -> str:
    """A select item as PostgREST writes it (SqlFragment.hs, pgFmtSelectItem): the column's cast
    inside the aggregate, the aggregate's cast outside it."""
    if c.name == "*":
        return f"{prefix}*"
    expr = _ref(c, prefix)
    if c.cast:
        expr = f"CAST({expr} AS {_type_name(c.cast)})"
    if c.bare:  # PostgREST writes `"t"."count"`: a column of that name, else PostgreSQL's count(t)
        pass
    elif c.aggregate is not None and c.name == "count" and c.json_path is None:
        expr = "count(*)"
    elif c.aggregate is not None:
        expr = f"{c.aggregate}({expr})"
    if c.aggregate_cast:
        expr = f"CAST({expr} AS {_type_name(c.aggregate_cast)})"
    return expr + (f" AS {quote(c.alias)}" if c.alias else "")


def _type_name(cast: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cast):
        raise Unchecked(f"cast to {cast!r} is not a type name")
    return cast


def _group_by(select: tuple[Column, ...], prefix: str = "") -> list[str]:
    # PostgREST groups by the other columns for its aggregates (`x.sum()`, `count()`); a bare
    # `count` is not one to it, so beside other columns PostgreSQL refuses, as it does for PostgREST
    if not any(c.aggregate and not c.bare for c in select):
        return []
    return [_ref(c, prefix) for c in select if not (c.aggregate and not c.bare) and c.name != "*"]


# the operator each filter method sends (postgrest-js's PostgrestFilterBuilder; supabase-py's names beside)
_OPERATOR = {name: name for name in ("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "is", "in", "fts", "plfts", "phfts", "wfts")}
_OPERATOR |= {"is_": "is", "in_": "in", "match": "eq", "contains": "cs", "containedBy": "cd", "contained_by": "cd", "overlaps": "ov"}
_OPERATOR |= {"rangeGt": "sr", "rangeGte": "nxl", "rangeLt": "sl", "rangeLte": "nxr", "rangeAdjacent": "adj", "range_gt": "sr"}
_OPERATOR |= {"range_gte": "nxl", "range_lt": "sl", "range_lte": "nxr", "range_adjacent": "adj", "regexMatch": "match"}
_OPERATOR |= {"regexIMatch": "imatch", "isDistinct": "isdistinct", "text_search": "fts", "textSearch": "fts"}
_OPERATOR |= {"likeAllOf": "like(all)", "likeAnyOf": "like(any)", "ilikeAllOf": "ilike(all)", "ilikeAnyOf": "ilike(any)"}
_OPERATOR |= {"like_all_of": "like(all)", "like_any_of": "like(any)", "ilike_all_of": "ilike(all)", "ilike_any_of": "ilike(any)"}
# query parameters PostgREST reads as its own, not as a filter on a column of that name (QueryParams.hs)
_RESERVED_KEYS = frozenset({"select", "order", "limit", "offset", "and", "or", "columns", "on_conflict"})
# PostgREST's operators as SQL (SqlFragment.hs, simpleOperator / quantOperator / ftsOperator)
_SIMPLE = {"neq": "<>", "cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-"}
_QUANT = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*"}
_FTS = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery", "wfts": "websearch_to_tsquery"}
_IS = {"null": "NULL", "not_null": "NOT NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}


def filter_text(c: Column) -> str | None:
    """A filter as PostgREST receives it after `col=` (`eq.5`, `not.is.null`, `in.(1,"a,b")`,
    `wfts(english).cat`), or None when the code computes its value."""
    if c.value is None:
        return None
    if c.op == "not":
        return f"not.{c.value}"
    if c.op in ("filter", "or", "and", "textSearch", "text_search"):  # already whole: `op.value` (textSearch: its options pick the op)
        return c.value
    operator = _OPERATOR.get(c.op)
    return None if operator is None else f"{operator}.{c.value}"


def _condition(c: Column, p: Statement, prefix: str, table: str) -> str:
    if "::" in c.name and c.op != "or" and p.language != "python":
        # postgrest-js sends the key as written; PostgREST reads a field name from it and ignores
        # the rest (QueryParams.hs, pTreePath does not require the end): `created_at::date` is created_at
        c = dataclasses.replace(c, name=c.name.split("::", 1)[0])
    ref = _ref(c, prefix)
    tsvector = p.types.get((table, c.name)) == "tsvector" and not c.json_path
    text = filter_text(c)
    if text is not None:
        return _operation(ref, text, p, logic=c.op == "or", tsvector=tsvector)
    # the value is computed: a typed placeholder where it goes, so the column and the operator
    # are still checked (`like` on an integer column fails whatever the pattern)
    operator = _OPERATOR.get(c.op)
    if operator is None:  # not() / filter() with a computed operator: the column must exist
        return f"({ref} IS NULL OR {ref} IS NOT NULL)"
    op, _, modifier = operator.partition("(")
    if op == "in" or modifier:
        return f"{ref} {_QUANT.get(op, '=')} ANY({p.bind(None)})"
    if op == "is":
        return f"{ref} IS NULL"
    return _operation(ref, f"{op}.", p, logic=False, tsvector=tsvector, value=None)


def _operation(ref: str, text: str, p: Statement, *, logic: bool, tsvector: bool = False, value: str | None | object = ...) -> str:
    """One PostgREST filter (`not.eq.5`, `in.(1,2)`, `fts(english).cat`) on `ref` as SQL
    (QueryParams.hs pOpExpr for the grammar, SqlFragment.hs pgFmtFilter for the SQL); `logic`:
    it comes from an or()/and() string, where a value may be quoted (pLogicSingleVal)."""
    negated = text.startswith("not.")
    rest = text[4:] if negated else text
    m = re.match(r"([a-z]+)(?:\(([^()]*)\))?\.", rest)
    if m is None:
        raise PostgrestError(f"failed to parse filter ({text}) (PGRST100)")
    op, modifier, raw = m[1], m[2], rest[m.end() :]
    if value is ...:
        value = _unquoted(raw) if logic and op != "in" else raw
    if op == "in" and modifier is None:
        items = _list(raw, text)
        sql = f"{ref} = ANY('{{}}')" if items == [""] else f"{ref} = ANY({p.bind(_array_literal(items))})"
    elif op == "is" and modifier is None:
        keyword = _IS.get(str(value).lower())
        if keyword is None:
            raise PostgrestError(f"failed to parse filter ({text}) (PGRST100): is takes null, not_null, true, false or unknown")
        sql = f"{ref} IS {keyword}"
    elif op == "isdistinct" and modifier is None:
        sql = f"{ref} IS DISTINCT FROM {p.bind(value)}"  # type: ignore[arg-type]
    elif op in _FTS:
        if modifier is not None and not re.fullmatch(r"[A-Za-z0-9_$]+", modifier):
            raise PostgrestError(f"failed to parse filter ({text}) (PGRST100)")
        language = f"{p.bind(modifier)}, " if modifier is not None else ""
        # a column that is not a tsvector is read through to_tsvector (Plan.hs, resolveQueryInputField)
        column = ref if tsvector else f"to_tsvector({language}{ref})"
        sql = f"{column} @@ {_FTS[op]}({language}{p.bind(value)})"  # type: ignore[arg-type]
    elif op in _SIMPLE and modifier is None:
        sql = f"{ref} {_SIMPLE[op]} {p.bind(value)}"  # type: ignore[arg-type]
    elif op in _QUANT and modifier in (None, "any", "all"):
        if op in ("like", "ilike") and isinstance(value, str):
            value = value.replace("*", "%")  # PostgREST's wildcard in a URL
        bound = p.bind(value)  # type: ignore[arg-type]
        sql = f"{ref} {_QUANT[op]} " + (f"{modifier.upper()}({bound})" if modifier else bound)
    else:
        raise PostgrestError(f"failed to parse filter ({text}) (PGRST100): unknown operator {op!r}")
    return f"NOT ({sql})" if negated else sql


def _unquoted(value: str) -> str:
    """A logic-tree value as PostgREST reads it: `"a,b"` is `a,b` (backslash escapes a character)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _list(raw: str, text: str) -> list[str]:
    """The elements of an `in` list, `(1,"a,b")` (QueryParams.hs pListVal, pListElement)."""
    body = raw.strip()
    if not (body.startswith("(") and body.endswith(")")):
        raise PostgrestError(f"failed to parse filter ({text}) (PGRST100): an in list is written (a,b)")
    items: list[str] = []
    for m in re.finditer(r'(?:"((?:[^"\\]|\\.)*)"(?=\s*[,)])|([^,)]*))\s*(,|\)$)', body[1:]):
        # unquoted elements keep their spaces, but for those after `(` (pListVal's lexeme)
        items.append(re.sub(r"\\(.)", r"\1", m[1]) if m[1] is not None else m[2] if items else m[2].lstrip())
        if m[3] == ")":
            break
    return items


def _array_literal(items: list[str]) -> str:
    """PostgREST's array literal for `= ANY(...)` (SqlFragment.hs, pgBuildArrayLiteral)."""
    return "{" + ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "}"


def _where(filters: list[Column], embedded: tuple[Embedded, ...], p: Statement, prefix: str, table: str) -> list[str]:
    """The conditions of one level's filters (the call's own, or an embed's): each filter, and the
    conditions of its or() strings as one alternative. A filter naming an embedded resource itself
    (`.not('comments', 'is', null)`) is PostgREST's null-embed filter (Plan.hs,
    addNullEmbedFilters), not a column."""
    embeds = {e.alias or e.table for e in embedded} | {e.table for e in embedded}
    out = [
        _condition(c, p, prefix, table) for c in filters
        if c.op not in ("order", "or") and not (c.name in embeds and c.op in ("is", "not"))
    ]  # fmt: skip
    either = [_condition(c, p, prefix, table) for c in filters if c.op == "or"]
    if either:  # the conditions of or() strings: any one of them
        out.append("(" + " OR ".join(either) + ")")
    return out


def _scoped(columns) -> dict[str, list[Column]]:  # type: ignore[no-untyped-def]
    """Filters, orders and or() conditions scoped to an embedded resource (`.eq('rel.col', v)`,
    `{ referencedTable: 'rel' }`), by the resource's path (`rel`, `rel.inner`)."""
    out: dict[str, list[Column]] = {}
    for c in columns.filter:
        if c.qualifier is not None:
            out.setdefault(c.qualifier, []).append(c)
    return out


def _distinct_embeds(parent: str, embedded: tuple[Embedded, ...], depth: int = 1) -> None:
    """Two embeds of one level with one name and no alias get one alias in PostgREST's query
    (its table, the name and the depth: QueryBuilder.hs), which PostgreSQL refuses."""
    seen: set[str] = set()
    for e in embedded:
        if e.alias is None and not e.spread:
            if e.table in seen:
                raise PostgrestError(f'table name "{parent}_{e.table}_{depth}" specified more than once: give each {e.table!r} embed an alias')
            seen.add(e.table)
        _distinct_embeds(e.table, e.embedded, depth + 1)


def _embedded_paths(scoped: dict[str, list[Column]], embedded: tuple[Embedded, ...]) -> None:
    """Every path a filter is scoped to names an embedded resource, else PostgREST refuses (PGRST108)."""
    for path in scoped:
        level = embedded
        for name in path.split("."):
            found = next((e for e in level if name in (e.alias, e.table)), None)
            if found is None:
                raise EmbedError(f"'{name}' is not an embedded resource in this request")
            level = found.embedded


def _resolve(e: Embedded, parent: str, fks: list) -> tuple:  # type: ignore[type-arg]
    """The relationship an embed names (PostgREST's findRel), its kind and the relation it reads."""
    name = e.table  # as written: a table, a foreign key's name, or the origin's key column
    hints = [h for h in e.hints if h not in ("inner", "left")]
    hint = hints[0] if hints else None
    candidates = [(r, kind) for r, kind in _relations_of(parent, fks) if _matches(r, kind, parent, name, hint)]
    if any(kind == "computed" for _, kind in candidates):  # a computed relationship prevails (SchemaCache.hs)
        candidates = [(r, kind) for r, kind in candidates if kind == "computed"]
    if not candidates:
        raise EmbedError(
            f"Could not find a relationship between '{parent}' and '{name}' in the schema cache" + (f" (hint {hint})" if hint else "")
        )
    if len(candidates) > 1:
        raise EmbedError(f"Could not embed because more than one relationship was found for '{parent}' and '{name}'")
    fk, kind = candidates[0]
    return fk, kind, fk.target if kind in ("m2m", "computed") else fk.parent if kind == "m2o" else fk.child


def _to_one(fk, kind: str) -> bool:  # type: ignore[no-untyped-def]
    return kind == "m2o" or kind == "computed" and fk.to_one


def _joined(fk, kind: str, relation: str, alias: str, outer: str, depth: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The FROM item of an embed and its join condition with the row it belongs to."""
    if kind == "computed":  # the function, given the row (`"public"."open_tasks"("projects")`)
        return f"{quote(fk.schema)}.{quote(fk.function)}({outer}) AS {alias}", "true"
    source = f"{quote(relation)} AS {alias}"
    if kind == "m2m":  # through the junction
        junction = quote(f"_{fk.junction}_j{depth}")
        source += f" JOIN {quote(fk.junction)} AS {junction} ON " + " AND ".join(
            f"{junction}.{quote(k)} = {alias}.{quote(c)}" for k, c in zip(fk.target_keys, fk.target_columns)
        )
        return source, " AND ".join(f"{junction}.{quote(k)} = {outer}.{quote(c)}" for k, c in zip(fk.origin_keys, fk.origin_columns))
    if kind == "m2o":
        return source, " AND ".join(f"{alias}.{quote(p)} = {outer}.{quote(c)}" for c, p in zip(fk.child_columns, fk.parent_columns))
    return source, " AND ".join(f"{alias}.{quote(c)} = {outer}.{quote(p)}" for c, p in zip(fk.child_columns, fk.parent_columns))


def _embed(
    e: Embedded,
    parent: str,
    fks: list[Relationship],
    parent_ref: str | None = None,
    depth: int = 0,
    *,
    scoped: dict[str, list[Column]] | None = None,
    p: Statement | None = None,
    path: str = "",
    options: dict[str, str] | None = None,
) -> str:
    """An embedded resource as a correlated sub-select through the foreign key PostgREST would use;
    its own embeds (`comments(id, author:authors(name))`) nested inside it, each checked too."""
    name = e.table
    if e.spread and e.alias:  # QueryParams.hs, pSpreadRelationSelect: `alias:...rel(*)` does not parse
        raise PostgrestError(f"failed to parse select parameter ({e.alias}:...{name}) (PGRST100): a spread takes no alias")
    fk, kind, relation = _resolve(e, parent, fks)
    if e.spread and not _to_one(fk, kind) and _uses_aggregates(e.columns, e.embedded):
        raise PostgrestError("Aggregates are not implemented for one-to-many or many-to-many spreads (PGRST127)")  # Plan.hs
    alias = quote(f"_{relation}" + (f"_{depth}" if depth else ""))
    source, join = _joined(fk, kind, relation, alias, parent_ref or quote(parent), depth)
    items = [_select_item(c, f"{alias}.") for c in e.columns]
    own = [c for key in {path + n for n in {e.alias or name, name}} for c in (scoped or {}).get(key, [])]
    key = path + (e.alias or name)
    items += [_embed(nested, relation, fks, alias, depth + 1, scoped=scoped, p=p, path=key + ".", options=options) for nested in e.embedded]
    items = items or [f"{alias}.*"]
    conditions = [join, *(_where(own, e.embedded, p, f"{alias}.", relation) if p is not None else [])]
    order = [_order(c, f"{alias}.") for c in own if c.op == "order"]
    # `.limit(n, { referencedTable })`: sent as `rel.limit`, applied inside the embed
    limits = {k.rpartition(".")[2]: v for k, v in (options or {}).items() if k.rpartition(".")[0] in {path + e.table, key}}
    inner = f"SELECT {', '.join(items)} FROM {source} WHERE {' AND '.join(conditions)}" + (
        f" ORDER BY {', '.join(order)}" if order else ""
    ) + _limit(limits)
    return f"(SELECT json_agg(x) FROM ({inner}) AS x) AS {quote(e.alias or name)}"


def _related_order(c: Column, embedded: tuple[Embedded, ...], parent: str, fks: list, p: Statement) -> str | None:  # type: ignore[type-arg]
    """`.order('rel(col)')`: ordering by a column of an embedded to-one resource, named as the
    request names it (its alias, else its name); PGRST108 when not embedded, PGRST118 when to-many
    (Plan.hs, addRelatedOrders). None for an order on the table's own column."""
    m = re.fullmatch(r"([^()]+)\(([^()]+)\)", c.name)
    if m is None:
        return None
    found = next((e for e in embedded if (e.alias or e.table) == m[1]), None)
    if found is None:
        raise EmbedError(f"'{m[1]}' is not an embedded resource in this request (PGRST108)")
    fk, kind, relation = _resolve(found, parent, fks)
    if not _to_one(fk, kind):
        raise PostgrestError(f"A related order on '{m[1]}' is not possible: '{parent}' and '{m[1]}' do not form a many-to-one or one-to-one relationship (PGRST118)")
    alias = quote(f"_{relation}_o")
    source, join = _joined(fk, kind, relation, alias, quote(parent), 0)
    column = dataclasses.replace(c, name=m[2].strip())
    return _order(c, ref=f"(SELECT {_ref(column, f'{alias}.')} FROM {source} WHERE {join})")


def _relations_of(origin: str, fks: list) -> list[tuple]:  # type: ignore[type-arg]
    """The relationships PostgREST sees from `origin`: many-to-one through its own foreign keys,
    one-to-many through the keys other tables hold on it (a self-reference is both), and
    many-to-many through junction tables."""
    out: list[tuple] = []  # type: ignore[type-arg]
    for r in fks:
        if isinstance(r, Computed):
            if r.origin == origin:
                out.append((r, "computed"))
            continue
        if isinstance(r, ManyToMany):
            if r.origin == origin:
                out.append((r, "m2m"))
            continue
        if r.child == origin:
            out.append((r, "m2o"))
        if r.parent == origin:
            out.append((r, "o2m"))
    return out


def _matches(r: Relationship | ManyToMany, kind: str, origin: str, target: str, hint: str | None) -> bool:
    """PostgREST's findRel (Plan.hs): which relationship an embed `target!hint(...)` names."""
    if isinstance(r, Computed):  # by the function's name
        return target == r.function
    if isinstance(r, ManyToMany):  # by the target table; a hint names the junction
        return target == r.target and (hint is None or hint == r.junction)
    foreign = r.parent if kind == "m2o" else r.child
    origin_columns = r.child_columns if kind == "m2o" else r.parent_columns
    foreign_columns = r.parent_columns if kind == "m2o" else r.child_columns
    single_col = len(origin_columns) == 1 and target == origin_columns[0]
    if r.child == r.parent:  # a self-reference: the table's name for its children, the key column for its parent
        if hint is None:
            return target == foreign and kind == "o2m" or single_col and kind == "m2o"
        return target == foreign and kind == "o2m" and len(foreign_columns) == 1 and hint == foreign_columns[0]
    if hint is None:
        # /projects?select=clients(*), projects_client_id_fkey(*), client_id(*); the last two
        # never reach a view (Plan.hs, findRel: `not relFTableIsView`)
        foreign_is_view = r.parent_view if kind == "m2o" else r.child_view
        return target == foreign or (target == r.name or single_col) and not foreign_is_view
    return target == foreign and (
        hint == r.name
        or len(origin_columns) == 1 and hint == origin_columns[0]
        or len(foreign_columns) == 1 and hint == foreign_columns[0]
    )


class ServerSetting(Exception):
    """A server setting, not the schema, refuses the call: Supabase's pg-safeupdate, PostgREST's
    db-aggregates-enabled."""


class PostgrestError(Exception):
    """PostgREST's own refusal of the request, before any SQL: a filter that does not parse."""


class EmbedError(PostgrestError):
    """PostgREST's own refusal to embed: no relationship, or more than one."""


def check(conn: psycopg.Connection, statement: Statement) -> str | None:
    """PostgreSQL's message when it rejects the statement (planned with EXPLAIN, never run), else None."""
    from pglast import parser

    from tableshift.db.server import rejected

    # one statement, and only one, ever reaches the database: names are quoted and values are
    # parameters; pglast makes sure of it, and so does the extended protocol
    try:
        pieces = parser.split(statement.sql)
    except Exception:  # noqa: BLE001 - pglast's parse errors: its scanner still splits
        pieces = parser.split(statement.sql, with_parser=False)
    if len(pieces) != 1:
        return "not a single statement: not sent to the database"
    if any(v is not None and "\0" in v for v in statement.params):
        return 'invalid byte sequence for encoding "UTF8": 0x00'  # what PostgreSQL says of a NUL in text
    error = rejected(conn, f"EXPLAIN {statement.sql}", statement.params)
    if error is None and statement.body is not None:  # each value as the column's type, as PostgREST reads the body
        error = rejected(conn, f"SELECT count(*) FROM json_populate_recordset({statement.body[0]}, $1::json)", [statement.body[1]])
    if error is None and statement.representation is not None:
        error = check(conn, statement.representation)
    if error is None and statement.inserted is not None:
        error = _not_null(conn, *statement.inserted)
    return error


def _not_null(conn: psycopg.Connection, schema: str, table: str, given: tuple[str, ...] | None, nulled: tuple[str, ...] = ()) -> str | None:
    """A NOT NULL column that the insert leaves out with no default (nor identity, nor generated),
    or sends NULL into: PostgreSQL's own words for what executing it would say (EXPLAIN plans,
    it never runs)."""
    row = conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull"
        " AND (a.attname = ANY(%s) OR %s AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '' AND NOT (a.attname = ANY(%s)))"
        " ORDER BY a.attnum LIMIT 1",
        (schema, table, list(nulled), given is not None, list(given or ())),
    ).fetchone()
    if row is None:
        return _view_not_null(conn, schema, table, given, nulled)
    return f'null value in column "{row[0]}" of relation "{table}" violates not-null constraint'


def _view_not_null(conn: psycopg.Connection, schema: str, view: str, given: tuple[str, ...] | None, nulled: tuple[str, ...]) -> str | None:
    """An insert through a view whose table has a NOT NULL column without a default that the view
    does not show, or that the insert leaves out (a view column has no default of its own unless
    set): PostgreSQL's words for what executing it would say."""
    found = conn.execute(
        "SELECT r.ev_action FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_rewrite r ON r.ev_class = c.oid"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'v' AND r.rulename = '_RETURN'",
        (schema, view),
    ).fetchone()
    if found is None:
        return None
    shown = {(e["resorigtbl"], e["resorigcol"]): e["resname"] for e in _target_entries(found[0]) if e["resorigtbl"]}
    bases = {oid for oid, _ in shown}
    if len(bases) != 1:
        return None  # not a view of one table: PostgreSQL would not insert through it anyway
    [base] = bases
    defaults = {
        name for (name,) in conn.execute(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND a.atthasdef", (schema, view),
        ).fetchall()
    }  # fmt: skip
    for attnum, column, table, has_default in conn.execute(
        "SELECT a.attnum, a.attname, c.relname, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull ORDER BY a.attnum",
        (base,),
    ).fetchall():
        through = shown.get((base, attnum))
        if through is not None and through in nulled:
            return f'null value in column "{column}" of relation "{table}" violates not-null constraint'
        if has_default or given is None:
            continue
        if through is None or (through not in given and through not in defaults):
            return f'null value in column "{column}" of relation "{table}" violates not-null constraint'
    return None
