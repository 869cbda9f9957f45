"""TypeScript / TSX / JavaScript: source bytes -> Supabase query Calls, found by tree-sitter queries."""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from itertools import chain

from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

from tableshift.model import (
    Call,
    Column,
    Edit,
    Kind,
    Opaque,
    Operation,
    Position,
    Role,
    Span,
    TableArg,
    TableSource,
)
from tableshift.scan import columns as col
from tableshift.scan import ts_nodes as n
from tableshift.scan.shared import (
    CLIENTISH,
    NOISE_RECEIVERS,
    REST_CANDIDATE,
    TYPED_ARRAY,
    UNKNOWN_SCHEMA,
    chain_evidence,
    fold,
    generated_types,
    in_unknown_schema,
    name_occurrences,
    table_call,
    ts_hits,
    type_hits,
)
from tableshift.scan.source import BOM, SourceText, StringLiteral
from tableshift.scan.sql import SQL_CALLEES, looks_like_sql, sql_hits, tables
from tableshift.scan.ts_resolve import Resolver

_QUERIES = {
    # Calls are matched bare and their parts read in Python: a pattern that waits for a later
    # child (`arguments:` after `function:`) keeps one state open per call nested in the first,
    # and a method chain nests every call in the next, which made chains quadratic.
    "calls": "(call_expression) @call",
    "identifiers": "[(identifier) (shorthand_property_identifier)] @id",
    "exports": "[(export_clause) (export_statement value: (_))] @export",
    "pairs": "(pair key: (_) @key value: (_) @value) @pair",
    "errors": "(ERROR) @error (MISSING) @missing",
}

# The methods a query call starts with: `.from(`, `.rpc(`, `.on('postgres_changes', ...)`.
_STARTS = frozenset({"from", "rpc", "on"})
_TS_FIELDS = "(public_field_definition name: (_) @name value: (_) @value)"
_JS_FIELDS = "(field_definition property: (_) @name value: (_) @value)"
OPERATIONS = frozenset(op.value for op in Operation)
# Filters whose first argument is a column name.
COLUMN_FILTERS = frozenset(
    {
        "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "likeAllOf", "likeAnyOf", "ilikeAllOf",
        "ilikeAnyOf", "is", "in", "contains", "containedBy", "overlaps", "textSearch", "not", "filter",
        "rangeGt", "rangeGte", "rangeLt", "rangeLte", "rangeAdjacent", "regexMatch", "regexIMatch", "isDistinct",
    }
)  # fmt: skip
MODIFIERS = frozenset(
    {
        "order", "limit", "range", "single", "maybeSingle", "csv", "geojson", "explain", "rollback",
        "returns", "abortSignal", "throwOnError", "overrideTypes", "setHeader", "match", "or",
    }
)  # fmt: skip
POSTGREST = OPERATIONS | COLUMN_FILTERS | MODIFIERS
# Names shared with arrays, strings and other libraries: evidence only with PostgREST-shaped arguments.
_AMBIGUOUS = frozenset({"filter", "match", "contains", "not", "or", "like", "in", "is", "range"})
# SQL query builders (drizzle, knex, kysely...): their `.from()` follows a select, and they chain these.
SQL_BEFORE_FROM = frozenset(
    {"select", "selectDistinct", "selectDistinctOn", "selectFrom", "delete", "deleteFrom", "update",
     "updateTable", "insertInto", "with", "withRecursive", "count", "distinct", "createQueryBuilder",
     "queryBuilder", "query", "union", "from"}
)  # fmt: skip
SQL_AFTER_FROM = frozenset(
    {"where", "andWhere", "orWhere", "whereIn", "whereNot", "whereNull", "whereNotNull", "whereRaw",
     "join", "innerJoin", "leftJoin", "rightJoin", "fullJoin", "crossJoin", "groupBy", "orderBy", "having",
     "first", "pluck", "returning", "toSQL", "toQuery", "execute", "executeTakeFirst", "compile", "offset",
     "forUpdate", "into", "values", "onConflictDoNothing", "innerJoinAndSelect", "leftJoinAndSelect", "getMany"}
)  # fmt: skip
# Receivers that are clients of something else: their `.from()` / `.rpc()` is not PostgREST.
_OTHER_CLIENTS = frozenset(
    {"http", "https", "mail", "email", "smtp", "ws", "websocket", "socket", "redis", "kafka", "s3", "grpc",
     "graphql", "apollo", "axios", "fetch", "stripe", "twilio", "slack", "sqs", "sns", "mqtt"}
)  # fmt: skip
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_TABLE_LIKE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


@dataclass(unsafe_hash=True, slots=True)
class Grammar:
    language: Language
    queries: dict[str, Query]


@cache
def grammar(name: str) -> Grammar:
    """Compiled once per process: a language and its queries."""
    if name == "javascript":
        import tree_sitter_javascript as tsj

        lang = Language(tsj.language())
    else:
        import tree_sitter_typescript as tst

        lang = Language(tst.language_tsx() if name == "tsx" else tst.language_typescript())
    fields = _JS_FIELDS if name == "javascript" else _TS_FIELDS
    return Grammar(lang, _Queries(lang, {**_QUERIES, "fields": fields}))


class _Queries(dict):  # type: ignore[type-arg]
    """A grammar's queries, each compiled when first used: compiling one costs milliseconds, and
    most files need only a few of them (each worker process compiles its own)."""

    def __init__(self, language: Language, sources: dict[str, str]) -> None:
        super().__init__()
        self.language = language
        self.sources = sources

    def __missing__(self, key: str) -> Query:
        query = self[key] = Query(self.language, self.sources[key])
        return query


# a `&` in JSX text that is no entity (`Officers & Advisers`) is valid JSX, which tree-sitter's
# grammars refuse: inside an error, one such `&` (not `&&`, `&=`, `&name;`) is read as a space
_BARE_AMPERSAND = re.compile(rb"(?<![&])&(?![&=]|#?[A-Za-z0-9]+;)")


def _parsed(g: Grammar, parse_bytes: bytes, language: str) -> tuple[Tree, bytes]:
    """The tree of a file; with JSX, errors that only tree-sitter's reading of a bare `&` in
    JSX text causes are not errors (the bytes parsed keep every offset)."""
    tree = Parser(g.language).parse(parse_bytes)
    if not tree.root_node.has_error or language == "typescript" or b"&" not in parse_bytes:
        return tree, parse_bytes
    spans = [(node.start_byte, node.end_byte) for node in QueryCursor(g.queries["errors"]).captures(tree.root_node).get("error", [])]
    patched = bytearray(parse_bytes)
    for start, end in spans:
        for m in _BARE_AMPERSAND.finditer(parse_bytes, start, end):
            patched[m.start()] = 0x20
    if patched == parse_bytes:
        return tree, parse_bytes
    again = Parser(g.language).parse(bytes(patched))
    return (again, bytes(patched)) if not again.root_node.has_error else (tree, parse_bytes)


def error_count(data: bytes, *, language: str) -> int:
    g = grammar(language)
    parse_bytes = b"   " + data[3:] if data.startswith(BOM) else data
    root = _parsed(g, parse_bytes, language)[0].root_node
    if not root.has_error:
        return 0
    return sum(len(nodes) for nodes in QueryCursor(g.queries["errors"]).captures(root).values())


# the file this process scanned last, and its tree: its rewrite is parsed again incrementally
_LAST: list[tuple[bytes, Tree, SourceText] | None] = [None]


def error_count_edited(old: bytes, new: bytes, edits: Iterable[Edit], *, language: str) -> int:
    """`error_count(new)`, where `new` is `old` with `edits` made (as `apply_edits` makes them).

    When `old` is the file just scanned, its tree is edited and parsed again incrementally: only
    the changed calls are parsed. A tree with errors is counted by a full parse all the same."""
    last, _LAST[0] = _LAST[0], None
    if last is None or last[0] is not old or old.startswith(BOM) or new.startswith(BOM):
        return error_count(new, language=language)
    _, tree, lines = last
    for edit in sorted(set(edits), key=lambda e: (e.span.start, e.span.end), reverse=True):
        start, end = edit.span.start, edit.span.end
        text = edit.text.encode("utf-8")
        row, column = lines.point(start)
        breaks = text.count(b"\n")
        new_end = (row + breaks, len(text) - text.rfind(b"\n") - 1 if breaks else column + len(text))
        tree.edit(start, end, start + len(text), (row, column), lines.point(end), new_end)
    root = Parser(grammar(language).language).parse(new, tree).root_node
    return 0 if not root.has_error else error_count(new, language=language)


@dataclass(unsafe_hash=True, slots=True)
class _Uses:
    """Method calls on one variable, and where it is given a new value, in source order."""

    calls: list[Node]
    resets: list[int]
    escapes: list[Node] = field(default_factory=list)


def _chain_base(node: Node) -> str | None:
    """The identifier a method chain starts from: `q` in `q.eq(...).order(...)`."""
    current: Node | None = n.unwrap(node)
    while current is not None:
        if current.type == "identifier":
            return n.text(current)
        if current.type == "call_expression":
            current = current.child_by_field_name("function")
        elif current.type == "member_expression":
            current = current.child_by_field_name("object")
        elif current.type in n.WRAPPERS or current.type == "await_expression":
            current = current.named_children[0] if current.named_children else None
        else:
            return None
    return None


@dataclass(unsafe_hash=True, slots=True)
class Link:
    """One method call in a chain: `.eq('a', 1)`."""

    name: str
    call: Node
    args: list[Node]


def scan(data: bytes, *, path: str, language: str) -> tuple[list[Call], bool]:
    """All query calls in one file, and whether the file has parse errors."""
    g = grammar(language)
    # A BOM is not JavaScript: blank it out so offsets stay those of the original bytes.
    parse_bytes = b"   " + data[3:] if data.startswith(BOM) else data
    tree, parse_bytes = _parsed(g, parse_bytes, language)
    root = tree.root_node
    src = SourceText(data)
    _LAST[0] = (data, tree, src)
    ctx = _FileScan(path=path, language=language, src=src, root=root, grammar=g)
    calls: list[Call] = []
    seen: set[tuple[int, int]] = set()
    # Only the neighbourhood of each byte-level hit is visited: the smallest node holding the hit,
    # then up to the nearest call a query starts with (`.from(`, `.rpc(`, the `.on(` of a
    # realtime option). Most of a large file is never visited.
    for start, end in ts_hits(data):
        node = _call_of_hit(root.descendant_for_byte_range(start, end))
        if node is None:
            continue
        key = (node.start_byte, node.end_byte)
        if key in seen:
            continue
        seen.add(key)
        method = _start_method(node)
        call = ctx.call_at(node, method) if method is not None else None
        if call is not None:
            calls.append(call)
    if b"Tables" in data and not generated_types(data):
        calls.extend(ctx.type_references(data))
    if b"/rest/v1/" in data:
        calls.extend(ctx.rest_calls(data))
    calls.extend(ctx.sql_calls(data))  # its own search: a file without a statement-like string costs one pass
    calls.sort(key=lambda c: (c.span.start, c.start.line, c.start.column))
    return calls, root.has_error


# what the calls found in one node share: statement's first line, span, end, folded text, error region
_Around = tuple[int, Span, Position, str, bool]


class _FileScan:
    def __init__(self, *, path: str, language: str, src: SourceText, root: Node, grammar: Grammar) -> None:
        self.path = path
        self.language = language
        self.src = src
        self.root = root
        self.grammar = grammar
        self.parents = n.Parents(root)
        self.resolver = Resolver(root, grammar.queries, self.parents)
        self._uses: dict[str, _Uses] = {}
        self._escaped: dict[int, str] = {}  # chain top node id -> why its builder escapes
        self._says_storage = b"storage" in src.data

    # -- detection --------------------------------------------------------

    # -- SQL in strings -----------------------------------------------------------

    def sql_calls(self, data: bytes) -> list[Call]:
        """Each table that SQL in a string or template literal reads or writes, as a call of kind
        sql; an interpolation is a parameter (`$n`), so one standing for a name does not parse."""
        out: list[Call] = []
        seen: set[int] = set()
        for hit in sql_hits(data):
            node = self.root.descendant_for_byte_range(hit.start(), hit.start() + 1)
            while node is not None and node.type not in ("string", "template_string"):
                node = self.parents.parent(node) if node.type not in ("program", "statement_block", "comment") else None
            if node is None or node.start_byte in seen:
                continue
            seen.add(node.start_byte)
            text, where = self._sql_text(node)
            if not looks_like_sql(text, sql_context=self._takes_sql(node)):
                continue
            around = None  # what the string's tables share, found once for all of them
            for use in tables(text):
                around = around or self._around(node)
                placed = self._placed(Kind.SQL, node, where(use.offset), around)
                out.append(Call(**placed, schema=use.schema, table=TableArg(use.table, TableSource.LITERAL), operation=use.operation))
        return out

    def _takes_sql(self, node: Node) -> bool:
        """The string is given to a call that takes SQL: a `sql` tagged template, `pool.query(...)`."""
        parent = self.parents.parent(node)
        if parent is not None and parent.type == "arguments":
            parent = self.parents.parent(parent)
        if parent is None or parent.type != "call_expression":
            return False
        func = parent.child_by_field_name("function")
        return func is not None and n.text(func).rpartition(".")[2] in SQL_CALLEES

    def _sql_text(self, node: Node) -> tuple[str, Callable[[int], int]]:
        """A string's text with `$n` for each interpolation, and where in the file a character of
        it sits (computed for the few names found, not for every character)."""
        text: list[str] = []
        pieces: list[tuple[int, int, str | None]] = []  # (character offset, byte offset, fragment or None)
        length = number = 0
        for child in node.named_children:
            if child.type == "template_substitution":
                number += 1
                piece, fragment = f"${number}", None
            elif child.type == "string_fragment":
                piece = fragment = n.text(child)
            elif child.type == "escape_sequence":
                piece, fragment = {"\\n": "\n", "\\t": "\t"}.get(n.text(child), " "), None
            else:
                continue
            pieces.append((length, child.start_byte, fragment))
            text.append(piece)
            length += len(piece)

        def where(offset: int) -> int:
            at = max((p for p in pieces if p[0] <= offset), default=None, key=lambda p: p[0])
            if at is None:
                return node.start_byte
            start, byte, fragment = at
            return byte + len(fragment[: offset - start].encode("utf-8", "surrogateescape")) if fragment is not None else byte

        return "".join(text), where

    # -- PostgREST over plain HTTP ---------------------------------------------

    def rest_calls(self, data: bytes) -> list[Call]:
        """Each string addressing PostgREST over HTTP (`${url}/rest/v1/dealers?id=eq.1&select=a`):
        a call of kind rest on the table in its path (or rpc, for `/rest/v1/rpc/fn`), its
        operation from the method of the request that sends it, its columns from the query."""
        out: list[Call] = []
        seen: set[int] = set()
        for hit in REST_CANDIDATE.finditer(data):
            node = self.root.descendant_for_byte_range(hit.start(), hit.end())
            while node is not None and node.type not in ("string", "template_string"):
                if node.type in ("program", "statement_block", "comment"):
                    node = None
                    break
                node = self.parents.parent(node)
            if node is None or node.start_byte in seen:
                continue
            seen.add(node.start_byte)
            call = self._rest_call(node)
            if call is not None:
                out.append(call)
        return out

    def _rest_call(self, url: Node) -> Call | None:
        # the literal text of the URL, piece by piece: (text, byte offset) or a substitution node
        pieces: list[tuple[str, int] | Node] = []
        for child in url.named_children:
            if child.type == "template_substitution":
                pieces.append(child)
            elif child.type in ("string_fragment", "escape_sequence"):
                pieces.append((n.text(child), child.start_byte))
        if url.type == "string" and not url.named_children:
            return None
        # find `/rest/v1/` in a literal piece
        at = next((i for i, p in enumerate(pieces) if isinstance(p, tuple) and "/rest/v1/" in p[0]), None)
        if at is None:
            return None
        text, offset = pieces[at]  # type: ignore[misc]
        rest = text[text.index("/rest/v1/") + len("/rest/v1/") :]
        base = offset + len(text[: text.index("/rest/v1/") + len("/rest/v1/")].encode())
        after = pieces[at + 1 :]
        found = col.Found()
        name_end = len(rest)
        for stop in "?#*":  # `*`: a glob (`page.route('**/rest/v1/prizes**')`), never part of the name
            if stop in rest:
                name_end = min(name_end, rest.index(stop))
        segment = rest[:name_end]
        kind = Kind.REST
        table: TableArg
        if segment.startswith("rpc/"):
            kind = Kind.RPC
        if segment and segment != "rpc/":
            name = segment[4:] if kind is Kind.RPC else segment
            start = base + (4 if kind is Kind.RPC else 0)
            if "/" in name or "%" in name or not name:
                return None
            table = TableArg(name, TableSource.LITERAL, span=Span(start, start + len(name.encode())))
            query = rest[name_end:]
            if query.startswith("?"):
                # the query as characters and where each sits in the file; None for a
                # substitution's place (`?id=eq.${id}&select=a`)
                chars: list[tuple[str, int | None]] = []
                at_byte = base + len(rest[: name_end + 1].encode())
                for ch in query[1:]:
                    chars.append((ch, at_byte))
                    at_byte += len(ch.encode())
                for piece in after:
                    if isinstance(piece, tuple):
                        chars += [(ch, piece[1] + len(piece[0][:i].encode())) for i, ch in enumerate(piece[0])]
                    else:
                        chars.append(("\0", None))
                self._rest_query(chars, found)
        elif after and isinstance(after[0], Node):  # `/rest/v1/${table}`
            expr = after[0].named_children[0] if after[0].named_children else after[0]
            table = self.resolver.table(expr, url)
            if kind is Kind.RPC:
                table = TableArg(None, TableSource.DYNAMIC, reasons=(f"function name from `{n.text(expr)}`",))
        else:
            # `${url}/rest/v1/` + table: the table is whatever the expression adds
            parent = self.parents.parent(url)
            if parent is not None and parent.type == "binary_expression" and parent.child_by_field_name("left") == url:
                right = parent.child_by_field_name("right")
                table = self.resolver.table(right, url) if right is not None else TableArg(None, TableSource.DYNAMIC)
                if table.certain and table.name and "?" in table.name:  # `'/rest/v1/' + 'x?select=a'`
                    table = TableArg(table.name.split("?")[0], table.source, reasons=table.reasons)
            else:
                return None  # a base URL: the table is added out of sight
        operation = self._rest_method(url)
        if operation in (Operation.INSERT, Operation.UPSERT, Operation.UPDATE):
            found.opaque.append(Opaque(Role.WRITE, f"the {operation.value} request's body is not read: its keys may name renamed columns", self.src.position(url.start_byte)))
        placed = self._placed(kind, url, url.start_byte)
        if kind is Kind.RPC:
            return Call(**placed, name=table.name if table.certain else None, notes=tuple(table.reasons))
        return Call(**placed, table=table, operation=operation, columns=found.freeze(), notes=tuple(found.notes),
                    operation_span=self._rest_end(url, pieces), malformed=tuple(found.malformed))

    def _rest_query(self, chars: list[tuple[str, int | None]], found: col.Found) -> None:
        """`select=a,b&status=eq.queued&order=id.desc&on_conflict=k`: the columns each names, with
        their spans in the file (PostgREST's own parameters are not columns); `\\0` stands for an
        interpolation: a key holding one is not visible, a value holding one is computed."""
        parts: list[list[tuple[str, int | None]]] = [[]]
        for ch in chars:
            if ch[0] == "&":
                parts.append([])
            else:
                parts[-1].append(ch)
        for part in parts:
            text = "".join(c for c, _ in part)
            key, eq, value = text.partition("=")
            if not key:
                continue
            if "\0" in key or "%" in key:
                found.opaque.append(Opaque(Role.FILTER, f"URL query key is not literal: `{key.replace(chr(0), '${…}')}`", self.src.position(part[0][1] or 0)))
                continue
            start = part[0][1]
            value_start = part[len(key) + 1][1] if len(part) > len(key) + 1 else None
            computed = "\0" in value or "%" in value or value_start is None
            lit = StringLiteral(value, value_start or 0, not computed, "'")
            if key == "select":
                if computed:
                    found.opaque.append(Opaque(Role.SELECT, "select= holds an interpolation", self.src.position(start or 0)))
                else:
                    col.add_select(found, lit, self.src)
            elif key == "on_conflict":
                if not computed:
                    col.add_conflict(found, lit, self.src, op="on_conflict")
            elif key == "order":
                for item in value.split(","):
                    name = item.split(".")[0]
                    if name and "\0" not in name and value_start is not None:
                        at = value_start + len(value[: value.index(item)].encode())
                        found.filter.append(Column(name, Role.FILTER, "order", self.src.position(at), Span(at, at + len(name.encode())), value=item[len(name) + 1 :] or "asc"))
            elif key in ("limit", "offset", "columns") or key.endswith((".limit", ".offset", ".order")):
                continue
            elif key in ("or", "and", "not.or", "not.and") or key.endswith((".or", ".and")):
                qualifier = key.rpartition(".")[0] if key.endswith((".or", ".and")) and not key.startswith("not.") else None
                inner = value[1:-1] if value.startswith("(") and value.endswith(")") else value
                if not computed and value_start is not None:
                    col.add_logic(found, StringLiteral(inner, value_start + 1, True, "'"), self.src, op="or", qualifier=qualifier)
            elif start is not None:
                found.filter.append(
                    col.column_from_string(StringLiteral(key, start, True, "'"), self.src, role=Role.FILTER, op="filter", value=None if computed or not value else value)
                )

    def _rest_method(self, url: Node) -> Operation | None:
        """The operation of the request that sends this URL: `fetch(url, { method: 'PATCH' })`
        (any call taking the URL first: fetch, $fetch, ofetch, axios...). None when the URL is
        sent out of sight (kept in a variable, passed to a wrapper with its own method)."""
        node = url
        parent = self.parents.parent(node)
        while parent is not None and parent.type in ("binary_expression", "parenthesized_expression", "as_expression"):
            node, parent = parent, self.parents.parent(parent)
        if parent is not None and parent.type == "variable_declarator":  # `const url = ...; fetch(url, {...})`
            name = parent.child_by_field_name("name")
            sent = self._sent(n.text(name), parent) if name is not None and name.type == "identifier" else None
            if sent is None:
                return None
            node, parent = sent, self.parents.parent(sent)
        if parent is None or parent.type != "arguments":
            return None
        args = n.arguments(parent)
        if not args or args[0] != node:
            return None
        options = n.unwrap(args[1]) if len(args) > 1 else None
        method = "GET"
        prefer = ""
        if options is not None:
            if options.type != "object":
                return None
            value = n.object_value(options, "method")
            if value is not None:
                method = (_value_text(value) or "").upper()
            headers = n.object_value(options, "headers")
            if headers is not None and n.unwrap(headers).type == "object":
                for key in ("Prefer", "prefer"):
                    given = n.object_value(n.unwrap(headers), key)
                    prefer = (_value_text(given) or "") if given is not None else prefer
        op = {"GET": Operation.SELECT, "HEAD": Operation.SELECT, "POST": Operation.INSERT, "PATCH": Operation.UPDATE,
              "DELETE": Operation.DELETE, "PUT": Operation.UPSERT}.get(method)
        if op is Operation.INSERT and "resolution=" in prefer:
            op = Operation.UPSERT
        return op

    def _sent(self, name: str, declarator: Node) -> Node | None:
        """The one argument, in the declaration's scope, that passes `name` first to a call
        (`fetch(url, ...)`); None when there is none, or more than one."""
        scope = self.parents.enclosing_scope(declarator)
        uses: list[Node] = []
        pending = [scope]
        while pending and len(uses) < 2:
            node = pending.pop()
            if node.type == "arguments":
                args = n.arguments(node)
                if args and args[0].type == "identifier" and n.text(args[0]) == name and args[0].start_byte > declarator.end_byte:
                    uses.append(args[0])
            pending.extend(node.named_children)
        return uses[0] if len(uses) == 1 else None

    @staticmethod
    def _rest_end(url: Node, pieces: list) -> Span | None:  # type: ignore[type-arg]
        """Where a filter can be appended to the URL: the end of its literal text, or after an
        interpolation that is a filter's value (`?id=eq.${id}`); None after one that may be a
        whole query part (`&${more}`)."""
        last = pieces[-1] if pieces else None
        if not isinstance(last, tuple):
            before = pieces[-2] if len(pieces) > 1 and isinstance(pieces[-2], tuple) else None
            tail = before[0].rsplit("&", 1)[-1].rsplit("?", 1)[-1] if before is not None else ""
            return Span(url.end_byte - 1, url.end_byte - 1) if "=" in tail and url.type == "template_string" else None
        end = last[1] + len(last[0].encode())
        return Span(end, end)

    # -- generated types naming a table -------------------------------------

    def type_references(self, data: bytes) -> list[Call]:
        """Each generated type naming a table whose name is a literal: `Tables<'x'>`,
        `TablesInsert<{ schema: 's' }, 'x'>`, `Database['public']['Tables']['x']['Row']`. One
        naming its table through a type parameter (`Tables<T>`, in helper code) names none."""
        out: list[Call] = []
        seen: set[int] = set()
        for start, end in type_hits(data):
            found = self._type_reference(self.root.descendant_for_byte_range(start, end))
            if found is None or found[0].start_byte in seen:
                continue
            seen.add(found[0].start_byte)
            out.append(self._type_call(*found))
        return out

    def _type_reference(self, node: Node | None) -> tuple[Node, Node, str, str | None] | None:
        """(the type node, the table's string literal, the form, the schema) of a hit."""
        while node is not None and node.type not in ("generic_type", "lookup_type"):
            if node.type in ("program", "statement_block", "class_body"):
                return None
            node = self.parents.parent(node)
        if node is None:
            return None
        if node.type == "generic_type":
            name = node.child_by_field_name("name") or (node.named_children[0] if node.named_children else None)
            form = n.text(name).rpartition(".")[2] if name is not None else ""
            arguments = node.child_by_field_name("type_arguments")
            args = [a for a in arguments.named_children if a.type != "comment"] if arguments is not None else []
            if form not in ("Tables", "TablesInsert", "TablesUpdate") or not args:
                return None
            schema = None
            if args[0].type == "object_type" and len(args) > 1:  # `Tables<{ schema: 'storage' }, 'objects'>`
                for prop in args[0].named_children:
                    key = prop.child_by_field_name("name") if prop.type == "property_signature" else None
                    annotation = prop.child_by_field_name("type") if key is not None and n.text(key) == "schema" else None
                    if annotation is not None:
                        schema = self._type_string(annotation.named_children[0] if annotation.named_children else None)
                args = args[1:]
            table = args[0].named_children[0] if args[0].type == "literal_type" and args[0].named_children else None
            return (node, table, form, schema) if table is not None and n.string_literal(table) is not None else None
        # `X['Tables']`: the hit's own lookup; the table is the index of the lookup holding it
        if self._type_string(node.named_children[-1] if node.named_children else None) != "Tables":
            return None
        outer = self.parents.parent(node)
        if outer is None or outer.type != "lookup_type" or outer.named_children[0] != node:
            return None
        table = outer.named_children[-1].named_children[0] if outer.named_children[-1].type == "literal_type" else None
        if table is None or n.string_literal(table) is None:
            return None
        top, form = outer, "['Tables']"
        row = self.parents.parent(outer)
        if row is not None and row.type == "lookup_type" and row.named_children[0] == outer:
            kind = self._type_string(row.named_children[-1])
            if kind in ("Row", "Insert", "Update"):
                top, form = row, f"['Tables'][…]['{kind}']"
        inner = node.named_children[0]
        schema = self._type_string(inner.named_children[-1]) if inner.type == "lookup_type" else None
        return top, table, form, schema

    @staticmethod
    def _type_string(node: Node | None) -> str | None:
        if node is not None and node.type == "literal_type" and node.named_children:
            node = node.named_children[0]
        lit = n.string_literal(node) if node is not None else None
        return lit.value if lit is not None else None

    def _type_call(self, top: Node, table: Node, form: str, schema: str | None) -> Call:
        lit = n.string_literal(table)
        assert lit is not None
        placed = self._placed(Kind.TYPE, top, lit.content_start)
        return Call(**placed, schema=schema, table=TableArg(lit.value, TableSource.LITERAL, span=lit.content_span), form=form)

    def call_at(self, node: Node, method: Node) -> Call | None:
        func = _callee(node)
        receiver = func.child_by_field_name("object") if func is not None else None
        if receiver is None:
            return None
        args = n.arguments(node.child_by_field_name("arguments"))
        name = n.text(method)
        if name == "on":
            return self._realtime(node, method, receiver, args)
        inner = n.unwrap(receiver)
        if self._is_noise_receiver(inner):
            return None
        if name == "from" and self._is_storage(inner):
            return self._storage(node, method, inner, args)
        links, top = _chain_up(node, self.parents)
        if any(link.name in SQL_AFTER_FROM for link in links):
            return None
        schema, client_node = self._schema_of(inner)
        evidence = schema is not None or self._chain_evidence(links) or _destructures_result(top, self.parents)
        continuation = self._continuation(top)
        if not evidence and continuation and self._chain_evidence(continuation):
            evidence = True
        client_code = n.text(client_node)
        clientish = CLIENTISH.search(client_code) is not None and not _OTHER_CLIENTS.intersection(
            w.lower() for w in _WORDS.findall(client_code)
        )
        if name == "rpc":
            return self._rpc(node, method, client_node, schema, args, links, top, evidence or clientish)
        if len(args) != 1 or (args[0].type == "spread_element" and not evidence):
            return None  # `.from(...args)` with a query chained onto it is a call whose table is not known
        if not evidence:
            lit = n.string_literal(args[0])
            if not clientish or (lit is not None and not _TABLE_LIKE.match(lit.value)):
                return None
        return self._table(node, method, client_node, schema, args[0], links, top, continuation, evidence)

    def _is_noise_receiver(self, inner: Node) -> bool:
        if inner.type == "identifier":
            name = n.text(inner)
            return name in NOISE_RECEIVERS or TYPED_ARRAY.match(name) is not None
        if inner.type == "call_expression":
            func = inner.child_by_field_name("function")
            if func is not None and func.type == "member_expression":
                prop = func.child_by_field_name("property")
                return prop is not None and n.text(prop) in SQL_BEFORE_FROM
        if inner.type in ("array", "string", "number", "template_string", "new_expression"):
            return True
        return False

    def _is_storage(self, inner: Node) -> bool:
        """`X.storage.from(...)` whatever X is (a call, `await`, `this.db`), or a variable holding `X.storage`."""
        if _storage_member(inner):
            return True
        if inner.type == "identifier" and not self._says_storage:
            return False  # no variable of this file can hold `X.storage`
        if inner.type == "identifier":
            decl = self.resolver.binding(n.text(inner), inner)
            if decl is None:
                return n.text(inner) == "storage"
            value = decl.child_by_field_name("value")
            target = decl.child_by_field_name("name")
            if target is not None and target.type == "object_pattern":
                return n.text(inner) == "storage"
            return value is not None and _storage_member(value)
        return False

    def _schema_of(self, inner: Node) -> tuple[str | None, Node]:
        """`client.schema('s')` -> ('s', client); anything else -> (None, receiver)."""
        if inner.type == "call_expression":
            func = inner.child_by_field_name("function")
            if func is not None and func.type == "member_expression":
                prop = func.child_by_field_name("property")
                obj = func.child_by_field_name("object")
                if prop is not None and obj is not None and n.text(prop) == "schema":
                    args = n.arguments(inner.child_by_field_name("arguments"))
                    resolved = self.resolver.table(args[0], inner) if args else None
                    if resolved is not None and resolved.certain and resolved.name:
                        return resolved.name, obj
                    return UNKNOWN_SCHEMA, obj
        if inner.type == "identifier":  # a client made for another schema: `createClient(u, k, { db: { schema: 's' } })`
            decl = self.resolver.binding(n.text(inner), inner)
            value = n.unwrap(decl.child_by_field_name("value")) if decl is not None and decl.child_by_field_name("value") is not None else None
            if value is not None and value.type == "await_expression" and value.named_children:
                value = n.unwrap(value.named_children[0])
            if value is not None and value.type == "call_expression":
                func = value.child_by_field_name("function")
                args = n.arguments(value.child_by_field_name("arguments"))
                name = n.text(func).rpartition(".")[2] if func is not None else ""
                options = n.unwrap(args[2]) if len(args) > 2 else None
                if name in ("createClient", "createBrowserClient", "createServerClient") and options is not None and options.type == "object":
                    db = n.object_value(options, "db")
                    schema = n.object_value(n.unwrap(db), "schema") if db is not None and n.unwrap(db).type == "object" else None
                    if schema is not None:
                        lit = n.string_literal(schema)
                        found = lit.value if lit is not None else UNKNOWN_SCHEMA
                        return (None if found == "public" else found), inner
        return None, inner

    def _chain_evidence(self, links: list[Link]) -> bool:
        return chain_evidence(
            ((link.name, bool(link.args) and (n.string_literal(link.args[0]) is not None or link.args[0].type == "object")) for link in links),
            postgrest=POSTGREST,
            ambiguous=_AMBIGUOUS,
        )

    def _continuation(self, top: Node) -> list[Link]:
        """Method calls on the variable a builder was stored in: `let q = ...; q = q.eq(...)`.

        They end where the variable is given a new builder (`q = supabase.from(...)`).
        """
        holder = self.parents.parent(top)
        name_node: Node | None = None
        if holder is not None and holder.type == "variable_declarator":
            name_node = holder.child_by_field_name("name")
        elif holder is not None and holder.type == "assignment_expression":
            name_node = holder.child_by_field_name("left")
        if name_node is None or name_node.type != "identifier":
            return []
        name = n.text(name_node)
        scope = self.parents.enclosing_scope(holder)  # type: ignore[arg-type]
        uses = self._uses_of(name)
        starts = [c.start_byte for c in uses.calls]
        boundary = next((b for b in uses.resets if b > top.end_byte), None)
        for escape in uses.escapes:
            if escape.start_byte > top.end_byte and (boundary is None or escape.start_byte < boundary) and n.contains(scope, escape):
                where = self.parents.parent(escape) or escape
                self._escaped[top.id] = f"the query builder `{name}` is passed on (`{_short(where)}`): what is chained onto it there is not visible"
                break
        links: list[Link] = []
        for call in uses.calls[bisect_left(starts, top.end_byte) :]:
            if boundary is not None and call.start_byte >= boundary:
                break
            if not n.contains(scope, call):
                continue
            func = call.child_by_field_name("function")
            prop = func.child_by_field_name("property") if func is not None else None
            if prop is None:
                continue
            links.append(Link(n.text(prop), call, n.arguments(call.child_by_field_name("arguments"))))
            more, _ = _chain_up(call, self.parents)
            links.extend(more)
        return links

    def _uses_of(self, name: str) -> _Uses:
        uses = self._uses.get(name)
        if uses is None:
            uses = self._uses[name] = self._find_uses(name)
        return uses

    def _find_uses(self, name: str) -> _Uses:
        """Method calls on `name` (`name.eq(...)`), assignments to it and the places it escapes (the
        queries `method_calls`, `assignments` and `escapes` for this one name), found from its
        occurrences in the bytes, as a name's declarators are: a query walks the whole tree."""
        uses = _Uses([], [])
        for match in name_occurrences(self.src.data, name):
            node = self.root.descendant_for_byte_range(match.start(), match.end())
            if node is None or node.type not in ("identifier", "shorthand_property_identifier") or n.text(node) != name:
                continue
            if node.type == "shorthand_property_identifier":
                uses.escapes.append(node)
                continue
            parent = self.parents.parent(node)
            kind = parent.type if parent is not None else ""
            if kind == "member_expression" and parent.child_by_field_name("object") == node:  # type: ignore[union-attr]
                call = self.parents.parent(parent)  # type: ignore[arg-type]
                prop = parent.child_by_field_name("property")  # type: ignore[union-attr]
                if call is not None and call.type == "call_expression" and call.child_by_field_name("function") == parent and prop is not None and prop.type == "property_identifier":
                    uses.calls.append(call)
            elif kind == "assignment_expression" and parent.child_by_field_name("left") == node:  # type: ignore[union-attr]
                value = parent.child_by_field_name("right")  # type: ignore[union-attr]
                if value is not None and _chain_base(value) != name:  # `q = q.eq(...)` continues; anything else resets
                    uses.resets.append(value.start_byte)
            elif kind in ("arguments", "return_statement", "array") or (
                kind in ("arrow_function", "pair") and parent.child_by_field_name("body" if kind == "arrow_function" else "value") == node  # type: ignore[union-attr]
            ):
                uses.escapes.append(node)
        return uses

    # -- building calls ---------------------------------------------------

    def _base(self, kind: Kind, node: Node, method: Node, top: Node, client: Node) -> dict:
        start = self.src.position(method.start_byte)
        first = self.src.line(top.start_byte)
        statement_node = _statement(top, self.parents)
        statement = self.src.line(statement_node.start_byte)
        return {
            "suppression": self.src.suppression(
                tuple(dict.fromkeys((start.line, first))), tuple(dict.fromkeys((start.line - 1, first - 1, statement - 1)))
            ),
            "file": self.path,
            "language": self.language,
            "kind": kind,
            "span": _span(top),
            "start": start,
            "end": self.src.position(top.end_byte),
            "client": _client_text(client),
            "code": self.src.line_text(start.line).strip(),
            "chain": fold(n.text(top)),
            "in_error_region": statement_node.has_error or (self.root.has_error and any(a.type == "ERROR" for a in self.parents.ancestors(top))),
        }

    def _placed(self, kind: Kind, node: Node, at: int, around: _Around | None = None) -> dict:  # type: ignore[type-arg]
        """What a call found outside a query chain (a type, a URL, SQL in a string) shares with
        every call: where `node` is, its name at byte `at`, its suppression and error region."""
        first, span, end, chain, in_error_region = around or self._around(node)
        start = self.src.position(at)
        return {
            "suppression": self.src.suppression(tuple(dict.fromkeys((start.line, first))), tuple(dict.fromkeys((start.line - 1, first - 1)))),
            "file": self.path,
            "language": self.language,
            "kind": kind,
            "span": span,
            "start": start,
            "end": end,
            "client": None,
            "code": self.src.line_text(start.line).strip(),
            "chain": chain,
            "in_error_region": in_error_region,
        }

    def _around(self, node: Node) -> _Around:
        """What every call found in `node` shares (a string of SQL may name several tables): the
        first line of its statement, its span and end, its folded text, its error region."""
        statement_node = _statement(node, self.parents)
        first = self.src.line(statement_node.start_byte)
        return first, _span(node), self.src.position(node.end_byte), fold(n.text(node)), statement_node.has_error

    def _table(self, node, method, client, schema, arg, links, top, continuation, evidence) -> Call:  # type: ignore[no-untyped-def]
        table = self.resolver.table(arg, node)
        if schema == UNKNOWN_SCHEMA:
            table, schema = in_unknown_schema(table), None
        found = col.Found()
        operation, operation_span = col.first_operation((link.name, _span(link.call)) for link in links)
        # Methods called later on the variable holding the builder still name columns,
        # but the operation stays unknown: which branch runs is not visible statically.
        for link in [*links, *continuation]:
            self._columns(link, found)
        return table_call(
            self._base(Kind.TABLE, node, method, top, client),
            found,
            schema=schema,
            table=table,
            operation=operation,
            operation_span=operation_span,
            evidence=evidence,
            continued=bool(continuation) and not links,
            escaped=self._escaped.get(top.id),
            options=_options_of(links),
        )

    def _rpc(self, node, method, client, schema, args, links, top, evidence) -> Call | None:  # type: ignore[no-untyped-def]
        if not evidence or not args:
            return None
        lit = n.string_literal(args[0])
        if lit is None and args[0].type not in ("identifier", "member_expression", "ternary_expression", "binary_expression"):
            return None
        resolved = self.resolver.table(args[0], node) if lit is None else None
        fn = lit.value if lit is not None else resolved.name if resolved is not None else None
        notes = () if fn is not None else (f"function name is not a literal: `{n.text(args[0])}`",)
        # a name known only among candidates (`flag ? 'a' : 'b'`) lists them, as a table's would
        dynamic = resolved if resolved is not None and not resolved.certain else None
        return Call(**self._base(Kind.RPC, node, method, top, client), schema=schema, name=fn, notes=notes, table=dynamic)

    def _storage(self, node, method, inner, args) -> Call | None:  # type: ignore[no-untyped-def]
        if len(args) != 1:
            return None
        _, top = _chain_up(node, self.parents)
        bucket = self.resolver.table(args[0], node)
        client = inner
        path_obj = inner.child_by_field_name("object") if inner.type in ("member_expression", "subscript_expression") else None
        if path_obj is not None:
            client = path_obj
        notes = () if bucket.certain else tuple(f"bucket: {r}" for r in bucket.reasons)
        return Call(**self._base(Kind.STORAGE, node, method, top, client), name=bucket.name, notes=notes)

    def _realtime(self, node, method, receiver, args) -> Call | None:  # type: ignore[no-untyped-def]
        lit = n.string_literal(args[0]) if args else None
        if lit is None or lit.value != "postgres_changes" or len(args) < 2:
            return None
        options = n.unwrap(args[1])
        shared: str | None = None
        if options.type == "identifier":  # `const opts = { table: 'x', ... }; ch.on('postgres_changes', opts, cb)`
            decl = self.resolver.binding(n.text(options), node)
            value = decl.child_by_field_name("value") if decl is not None else None
            if value is not None and self.resolver.is_const(decl):  # type: ignore[arg-type]
                shared = f"subscription options come from `{n.text(options)}`, which other code may share: change them there"
                options = n.unwrap(value)
        if options.type != "object":
            return self._unknown_subscription(node, method, receiver, options)
        found = col.Found()
        values = {name: value for name, _, value in n.object_pairs(options)}
        # `{ event, schema: 'public', table }`: a shorthand reads the variable of that name
        values |= {n.text(c): c for c in options.named_children if c.type == "shorthand_property_identifier"}
        table_node = values.get("table")
        if table_node is not None and table_node.type == "shorthand_property_identifier":
            table = self.resolver.identifier(n.text(table_node), node)
        elif table_node is not None:
            table = self.resolver.table(table_node, node)
        else:
            table = TableArg(None, TableSource.DYNAMIC, reasons=("subscription names no table: every table in the schema",))
        schema_lit = n.string_literal(values["schema"]) if "schema" in values else None
        event_lit = n.string_literal(values["event"]) if "event" in values else None
        filter_lit = n.string_literal(values["filter"]) if "filter" in values else None
        if filter_lit is not None:
            col.add_realtime_filter(found, filter_lit, self.src)
        schema = schema_lit.value if schema_lit is not None else None
        return Call(
            **self._base(Kind.REALTIME, node, method, node, receiver),
            schema=None if schema == "public" else schema,
            table=table,
            event=event_lit.value if event_lit is not None else None,
            columns=found.freeze(),
            operation_span=_span(options),  # the options object: where a filter goes, or is already
            notes=(*found.notes, *((shared,) if shared else ())),
        )

    def _unknown_subscription(self, node: Node, method: Node, receiver: Node, options: Node) -> Call:
        """A subscription whose options are not an object this file shows: its table is unknown, and
        the gate must not pass it unseen."""
        table = TableArg(None, TableSource.DYNAMIC, reasons=(f"subscription options are not visible: `{_short(options)}`",))
        return Call(**self._base(Kind.REALTIME, node, method, node, receiver), table=table)

    # -- columns ----------------------------------------------------------

    def _columns(self, link: Link, found: col.Found) -> None:
        name, args = link.name, link.args
        first = args[0] if args else None
        if name == "select":
            if first is None:
                found.select.append(_star(self.src, link.call))
                return
            lit = n.string_literal(first)
            if lit is None:
                found.opaque.append(self._opaque(Role.SELECT, f"select columns are not a literal: `{n.text(first)}`", first))
            else:
                col.add_select(found, lit, self.src)
        elif name in ("insert", "update", "upsert"):
            if first is not None:
                self._payload(first, found, name)
            if len(args) > 1:
                self._options(args[1], found, name)
        elif name in COLUMN_FILTERS or name == "order":
            if first is None:
                return
            qualifier = self._referenced_table(args[1]) if name == "order" and len(args) > 1 else None
            lit = n.string_literal(first)
            if lit is None:
                found.opaque.append(self._opaque(Role.FILTER, f"{name}() column is not a literal: `{n.text(first)}`", first))
            else:
                if name == "order":  # direction and nulls as postgrest-js sends them: `col.desc.nullsfirst`
                    value = self._order(args[1]) if len(args) > 1 else "asc"
                elif name in ("not", "filter"):  # `.not('a', 'is', null)`: sent as `a=not.is.null`, `.filter(a, op, v)` as `a=op.v`
                    operator = n.string_literal(args[1]) if len(args) > 1 else None
                    operand = _template_value(args[2]) if len(args) > 2 else None
                    value = f"{operator.value}.{operand}" if operator is not None and operand is not None else None
                else:
                    value = _method_value(name, args)
                found.filter.append(col.column_from_string(lit, self.src, role=Role.FILTER, op=name, qualifier=qualifier, value=value))
        elif name == "match" and first is not None:
            self._keys(first, found, Role.FILTER, "match", found.filter)
        elif name == "or" and first is not None:
            qualifier = self._referenced_table(args[1]) if len(args) > 1 else None
            lit = n.string_literal(first)
            if lit is None:
                found.opaque.append(self._opaque(Role.FILTER, f"or() filter is not a literal: `{n.text(first)}`", first))
            else:
                col.add_logic(found, lit, self.src, op="or", qualifier=qualifier)

    def _order(self, options: Node) -> str | None:
        """`{ ascending: false, nullsFirst: true }` as `desc.nullsfirst`; None when not literal."""
        options = n.unwrap(options)
        if options.type != "object":
            return None
        flags = {}
        for key in ("ascending", "nullsFirst"):
            value = n.object_value(options, key)
            if value is None:
                if any(c.type != "pair" for c in options.named_children if c.type != "comment"):
                    return None  # a spread or shorthand may set it
                continue
            value = n.unwrap(value)
            if value.type not in ("true", "false"):
                return None
            flags[key] = value.type == "true"
        text = "asc" if flags.get("ascending", True) else "desc"
        if "nullsFirst" in flags:
            text += ".nullsfirst" if flags["nullsFirst"] else ".nullslast"
        return text

    def _referenced_table(self, options: Node) -> str | None:
        return _referenced_table(options)

    def _options(self, options: Node, found: col.Found, op: str) -> None:
        """`{ onConflict: 'a,b' }`; any other shape may hide conflict columns, so it is recorded."""
        options = n.unwrap(options)
        if options.type != "object":
            found.opaque.append(self._opaque(Role.ON_CONFLICT, f"{op} options are not an object literal: `{_short(options)}`", options))
            return
        for child in options.named_children:
            if child.type == "spread_element":
                found.opaque.append(self._opaque(Role.ON_CONFLICT, f"{op} options spread `{_short(child)}`", child))
            elif child.type == "shorthand_property_identifier" and n.text(child) == "onConflict":
                found.opaque.append(self._opaque(Role.ON_CONFLICT, "onConflict is a variable: `onConflict`", child))
        value = n.object_value(options, "onConflict")
        if value is None:
            return
        lit = n.string_literal(value)
        if lit is None:
            found.opaque.append(self._opaque(Role.ON_CONFLICT, f"onConflict is not a literal: `{n.text(value)}`", value))
        else:
            col.add_conflict(found, lit, self.src, op="onConflict")

    def _payload(self, payload: Node, found: col.Found, op: str) -> None:
        pending = [payload]
        while pending:  # iterative: generated payloads nest arrays deeper than Python recurses
            node = n.unwrap(pending.pop())
            if node.type == "object":
                found.payload_objects.append(_span(node))
                self._keys(node, found, Role.WRITE, op, found.write)
            elif node.type == "array":
                pending.extend(reversed([e for e in node.named_children if e.type != "comment"]))
            else:
                what = "a variable" if node.type == "identifier" else "an expression"
                found.opaque.append(self._opaque(Role.WRITE, f"{op} payload is {what}: `{_short(node)}`", node))

    def _keys(self, obj: Node, found: col.Found, role: Role, op: str, into: list) -> None:  # type: ignore[type-arg]
        obj = n.unwrap(obj)
        if obj.type != "object":
            found.opaque.append(self._opaque(role, f"{op} argument is not an object literal: `{_short(obj)}`", obj))
            return
        for child in obj.named_children:
            if child.type == "pair":
                key = child.child_by_field_name("key")
                name = n.property_name(key) if key is not None else None
                if key is None or name is None:
                    found.opaque.append(self._opaque(role, f"{op} has a computed key: `{_short(child)}`", child))
                    continue
                lit = n.string_literal(key)
                span = lit.content_span if lit is not None else _span(key)
                pos = self.src.position(key.start_byte + (1 if lit is not None else 0))
                value_node = child.child_by_field_name("value")
                value = _value_text(value_node) if value_node is not None else None
                null = value_node is not None and n.unwrap(value_node).type == "null"
                into.append(Column(name, role, op, pos, span, value=value, null=null))
            elif child.type == "shorthand_property_identifier":
                into.append(Column(n.text(child), role, op, self.src.position(child.start_byte), _span(child), shorthand=True))
            elif child.type == "spread_element":
                found.opaque.append(self._opaque(role, f"{op} spreads `{_short(child)}`", child))
            elif child.type not in ("comment",):
                found.opaque.append(self._opaque(role, f"{op} has a member that is not a plain key: `{_short(child)}`", child))

    def _opaque(self, role: Role, reason: str, node: Node) -> Opaque:
        return Opaque(role, reason, self.src.position(node.start_byte))


def _referenced_table(options: Node) -> str | None:
    """`{ referencedTable: 'rel' }` (or its old name, foreignTable) of an order, or, limit or range."""
    options = n.unwrap(options)
    if options.type != "object":
        return None
    for key in ("referencedTable", "foreignTable"):
        value = n.object_value(options, key)
        lit = n.string_literal(value) if value is not None else None
        if lit is not None:
            return lit.value
    return None


def _options_of(links: list[Link]) -> tuple[tuple[str, str], ...]:
    """limit / range, a select's count and head, an upsert's ignoreDuplicates: what `verify` builds SQL from.
    A limit or range on an embedded resource is keyed as postgrest-js sends it: `rel.limit`."""
    out: list[tuple[str, str]] = []
    for link in links:
        args = link.args
        if link.name in ("limit", "range") and len(args) >= (1 if link.name == "limit" else 2):
            scope = _referenced_table(args[-1]) if len(args) > (1 if link.name == "limit" else 2) else None
            key = f"{scope}.{link.name}" if scope else link.name
            if link.name == "limit":
                out.append((key, _value_text(args[0]) or "?"))
            else:
                out.append((key, f"{_value_text(args[0]) or '?'},{_value_text(args[1]) or '?'}"))
        elif link.name in ("single", "maybeSingle"):
            out.append(("single", link.name))
        elif link.name in ("select", "upsert", "insert") and len(args) > 1 and n.unwrap(args[1]).type == "object":
            for key, name in (("count", "count"), ("head", "head"), ("ignoreDuplicates", "ignore_duplicates"), ("defaultToNull", "default_to_null")):
                value = n.object_value(n.unwrap(args[1]), key)
                if value is not None:
                    out.append((name, _value_text(value) or "?"))
    return tuple(out)


# what postgrest-js sends for an array or object argument (PostgrestFilterBuilder): `in.(a,"b,c")`,
# `cs.{a,b}`, `cs.{"k":1}` (JSON.stringify), `like(any).{a,b}`
_RESERVED = re.compile(r"[,()]")


def _method_value(name: str, args: list[Node]) -> str | None:
    """A filter method's value as postgrest-js writes it after the operator, or None when the code
    computes it. `textSearch` gives its whole filter (`wfts(english).cat`): its options choose the operator."""
    if len(args) < 2:
        return None
    if name == "textSearch":
        query = _filter_value(args[1])
        options = n.unwrap(args[2]) if len(args) > 2 else None
        kind = config = None
        if options is not None:
            if options.type != "object":
                return None
            for key in ("type", "config"):
                node = n.object_value(options, key)
                text = _value_text(node) if node is not None else None
                if node is not None and text is None:
                    return None
                kind, config = (text, config) if key == "type" else (kind, text)
        prefix = {"plain": "pl", "phrase": "ph", "websearch": "w"}.get(kind or "", "")
        return None if query is None else f"{prefix}fts{f'({config})' if config is not None else ''}.{query}"
    if name in ("in", "contains", "containedBy", "overlaps", "likeAllOf", "likeAnyOf", "ilikeAllOf", "ilikeAnyOf"):
        node = n.unwrap(args[1])
        if node.type == "array":
            items = _array_items(node)
            if items is None:
                return None
            if name == "in":
                unique = list(dict.fromkeys(items))  # `new Set(values)`
                return "(" + ",".join(f'"{t}"' if quoted and _RESERVED.search(t) else t for t, quoted in unique) + ")"
            return "{" + ",".join(t for t, _ in items) + "}"
        if node.type == "object" and name in ("contains", "containedBy"):
            value = _json_value(node)
            return None if value is _COMPUTED else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return _filter_value(args[1])


_COMPUTED = object()


def _template_value(node: Node) -> str | None:
    """A value as a template literal writes it (`${value}`): an array is its elements joined by
    commas, without the parentheses an `in` list needs (postgrest-js's not() and filter())."""
    inner = n.unwrap(node)
    if inner.type == "array":
        items = _array_items(inner)
        return None if items is None else ",".join(t for t, _ in items)
    return _filter_value(node)


def _array_items(node: Node) -> list[tuple[str, bool]] | None:
    """Each element of an array literal as JavaScript writes it in a template (`${s}`), and whether
    it is a string; None if any is computed."""
    out = []
    for element in node.named_children:
        if element.type == "comment":
            continue
        text = _filter_value(element)
        if text is None:
            return None
        out.append((text, n.string_literal(n.unwrap(element)) is not None))
    return out


def _json_value(node: Node):  # type: ignore[no-untyped-def]
    """An object or array literal as JSON.stringify sees it, or _COMPUTED."""
    node = n.unwrap(node)
    lit = n.string_literal(node)
    if lit is not None:
        return lit.value
    if node.type == "null":
        return None
    if node.type in ("true", "false"):
        return node.type == "true"
    if node.type == "number" or node.type == "unary_expression":
        text = _value_text(node)
        try:
            number = float(text) if text is not None else None
        except ValueError:
            return _COMPUTED
        return _COMPUTED if number is None else int(number) if number.is_integer() else number
    if node.type == "array":
        items = [_json_value(e) for e in node.named_children if e.type != "comment"]
        return _COMPUTED if any(i is _COMPUTED for i in items) else items
    if node.type == "object":
        out = {}
        for child in node.named_children:
            if child.type == "comment":
                continue
            key = child.child_by_field_name("key") if child.type == "pair" else None
            name = n.property_name(key) if key is not None else None
            value = child.child_by_field_name("value") if key is not None else None
            if name is None or value is None:
                return _COMPUTED
            out[name] = _json_value(value)
            if out[name] is _COMPUTED:
                return _COMPUTED
        return out
    return _COMPUTED


def _filter_value(node: Node) -> str | None:
    """A filter's value as postgrest-js puts it in the URL: `eq.${value}`, so `null` and
    `undefined` are the text `null` / `undefined` (which only a text column takes), not NULL."""
    inner = n.unwrap(node)
    if inner.type == "null":
        return "null"
    if inner.type == "undefined" or (inner.type == "identifier" and n.text(inner) == "undefined"):
        return "undefined"
    return _value_text(node)


def _value_text(node: Node) -> str | None:
    """A literal value as PostgREST sends it (text), or None for anything computed."""
    node = n.unwrap(node)
    lit = n.string_literal(node)
    if lit is not None:
        return lit.value
    if node.type == "number":
        return n.text(node).replace("_", "")
    if node.type in ("true", "false"):
        return node.type
    if node.type == "unary_expression" and n.text(node).startswith("-") and node.named_children and node.named_children[0].type == "number":
        return n.text(node).replace(" ", "")
    return None


def _callee(call: Node) -> Node | None:
    """What a call calls. tree-sitter-typescript reads `await x.from<Row>(...)` as a call of
    `await x.from` with type arguments: the member inside the await is the callee."""
    func = call.child_by_field_name("function")
    if func is not None and func.type == "await_expression" and call.child_by_field_name("type_arguments") is not None:
        inner = next((c for c in func.named_children if c.type == "member_expression"), None)
        return inner if inner is not None else func
    return func


def _call_of_hit(node: Node | None) -> Node | None:
    """The nearest call holding a candidate hit whose method a query starts with."""
    while node is not None:
        if node.type == "call_expression" and _start_method(node) is not None:
            return node
        if node.type in ("program", "statement_block", "class_body"):
            return None
        node = node.parent
    return None


def _start_method(call: Node) -> Node | None:
    """The `from` of `x.from(...)` when a call's method is one a query starts with, else None."""
    func = _callee(call)
    args = call.child_by_field_name("arguments")
    if func is None or func.type != "member_expression" or args is None or args.type != "arguments":
        return None
    prop = func.child_by_field_name("property")
    if prop is None or prop.type != "property_identifier" or n.text(prop) not in _STARTS:
        return None
    return prop


def _chain_up(node: Node, parents: n.Parents) -> tuple[list[Link], Node]:
    """The method calls chained onto `node`, in order, and the outermost node of the chain."""
    links: list[Link] = []
    cur = node
    while True:
        parent = parents.parent(cur)
        while parent is not None and parent.type in n.WRAPPERS:
            cur, parent = parent, parents.parent(parent)
        if parent is None or parent.type != "member_expression" or parent.child_by_field_name("object") != cur:
            break
        grand = parents.parent(parent)
        prop = parent.child_by_field_name("property")
        if grand is None or grand.type != "call_expression" or grand.child_by_field_name("function") != parent:
            break
        if prop is None:
            break
        links.append(Link(n.text(prop), grand, n.arguments(grand.child_by_field_name("arguments"))))
        cur = grand
    return links, cur


def _storage_member(node: Node) -> bool:
    """`X.storage` or `X['storage']`, under parentheses, casts and `await`: the storage API of any client."""
    node = n.unwrap(node)
    while node.type == "await_expression" and node.named_children:
        node = n.unwrap(node.named_children[0])
    if node.type == "member_expression":
        prop = node.child_by_field_name("property")
        return prop is not None and prop.type == "property_identifier" and n.text(prop) == "storage"
    if node.type == "subscript_expression":
        index = node.child_by_field_name("index")
        lit = n.string_literal(index) if index is not None else None
        return lit is not None and lit.value == "storage"
    return False


def _statement(node: Node, parents: n.Parents) -> Node:
    """The statement a chain belongs to: a syntax error anywhere in it makes the chain's reading unsure."""
    for anc in chain((node,), parents.ancestors(node)):  # up to the statement, not the root
        kind = anc.type
        if kind.endswith(("statement", "declaration")) or kind in ("program", "statement_block", "class_body"):
            return anc if kind not in ("program", "statement_block", "class_body") else node
    return node


def _destructures_result(top: Node, parents: n.Parents) -> bool:
    """`const { data, error } = await ...`: the signature of a supabase-js result."""
    node = parents.parent(top)
    while node is not None and node.type in ("await_expression", "parenthesized_expression"):
        node = parents.parent(node)
    if node is None or node.type != "variable_declarator":
        return False
    target = node.child_by_field_name("name")
    if target is None or target.type != "object_pattern":
        return False
    names = {name for name, _ in n._pattern_names(target)}
    keys = {n.text(c.child_by_field_name("key")) for c in target.named_children if c.type == "pair_pattern" and c.child_by_field_name("key")}
    return bool({"data", "error", "count"} & (names | keys))


def _star(src: SourceText, call: Node) -> Column:
    return Column("*", Role.SELECT, "select", src.position(call.start_byte), None)


def _span(node: Node) -> Span:
    return Span(node.start_byte, node.end_byte)


def _short(node: Node, limit: int = 60) -> str:
    code = " ".join(n.text(node).split())
    return code if len(code) <= limit else code[: limit - 1] + "…"


_LINE_BREAK = re.compile(r"\s*\n\s*")


def _client_text(node: Node) -> str:
    code = n.text(node)
    return _LINE_BREAK.sub("", code) if "\n" in code else code
