"""SQL in a string (a postgres.js `sql` template, `pool.query('UPDATE tweets ...')`,
`cursor.execute("DELETE FROM tweets ...")`): the tables it reads and writes, as PostgreSQL's own
parser (pglast) reads it. Interpolations are parameters (`$n`); a string whose interpolation
stands where a name goes does not parse, and names nothing."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tableshift.model import Operation

# a string that starts like a statement (a quote, then SELECT / INSERT / UPDATE / DELETE / WITH)
# and names a table within it (FROM, INTO, SET, JOIN): UI text starting with "Select" or "Update"
# seldom does, and a file holding only such text is not parsed for it. A '...' or "..." string
# holds no line break (JavaScript ends it there; a `\` before one is no whitespace), so the space
# around its keyword is spaces and tabs: an apostrophe in a comment followed by "with" at the end
# of the line is no string (a 266 KB component was parsed for one)
SQL_CANDIDATE = re.compile(
    rb"""(?:`\s*(?i:select|insert|update|delete|with)\s[^`]{0,4000}?"""
    rb"""|'[ \t\f\v]*(?i:select|insert|update|delete|with)[ \t\f\v][^'\n]{0,4000}?"""
    rb"""|"[ \t\f\v]*(?i:select|insert|update|delete|with)[ \t\f\v][^"\n]{0,4000}?)(?i:\bfrom|\binto|\bset|\bjoin)\b"""
)
# a quote, then a statement's first keyword: searched for in the bytes folded by one translation
# (ASCII letters lower-cased, each quote made a NUL, a NUL made something else), where the pattern
# is led by a literal byte: five literal searches for the keywords, each then looking back for its
# quote, took twice as long
_FOLD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ`'\"\x00", b"abcdefghijklmnopqrstuvwxyz\x00\x00\x00\x01")
_QUOTED_KEYWORD = re.compile(rb"\x00\s*(?:select|insert|update|delete|with)\s")


def sql_hits(data: bytes) -> Iterator[re.Match[bytes]]:
    """`SQL_CANDIDATE.finditer(data)`, tried only at the quotes a keyword follows: the pattern
    itself tries every quote of a file. Every match starts at such a quote, and they come in
    order, so trying each from where the last match ended finds the same matches."""
    return _hits(data, data.translate(_FOLD))


def _hits(data: bytes, folded: bytes) -> Iterator[re.Match[bytes]]:
    """`sql_hits`, given the file's bytes folded (`_FOLD`)."""
    end = 0
    for quote in _QUOTED_KEYWORD.finditer(folded):
        start = quote.start()
        if start >= end and (match := SQL_CANDIDATE.match(data, start)) is not None:
            end = match.end()
            yield match


def has_sql(data: bytes) -> bool:
    """Whether a string of the file may be SQL the scanner finds a table in: the file has a hit
    (`sql_hits`), and some literal that starts like a statement (`_STATEMENT_START`), read off
    the bytes, is one PostgreSQL parses and finds a table in. A literal that cannot be read off
    its bytes alone (an interpolation holding a quote, an escape in a quoted string) counts: the
    scanner decides.

    Every literal the scanner reports starts so (its text matches `_STATEMENT`), whether or not
    its own quote is a hit: a hit may be a quote inside it, or inside a component's markup. So
    each such start is tried, not each hit. Of capgo's 1,484 files, 11 whose strings only start
    like statements ("Update requests from", "Delete an app from", a table interpolated:
    318 KB) were parsed for nothing."""
    folded = data.translate(_FOLD)  # once, for both searches
    if next(_hits(data, folded), None) is None:
        return False
    return any(_may_be_sql(data, start.start()) for start in _STATEMENT_START.finditer(folded))


# where a literal whose text matches `_STATEMENT` may start, in the folded bytes (quotes made
# NULs, letters lower-cased): a quote, white space or escapes (`_sql_text` makes each escape a
# space, a tab or a line break), a statement's first keyword, then white space or an escape.
# Bytes past ASCII may be white space (U+2028, a no-break space): taken as such
_STATEMENT_START = re.compile(
    rb"\x00(?:[\s\x80-\xff]|\\(?:u\{[0-9a-f]*\}|u[0-9a-f]{4}|x[0-9a-f]{2}|[0-7]{1,3}|.))*"
    rb"(?:select|insert|update|delete|with)(?:[\s\x80-\xff]|\\)",
    re.S,
)


def _may_be_sql(data: bytes, quote: int) -> bool:
    text = literal_text(data, quote)
    if text is None:
        return True
    # given to a call that takes SQL or not, which the bytes cannot always tell (a comment, a
    # later argument, a tree rebuilt around a syntax error): taken as given
    return looks_like_sql(text, sql_context=True) and bool(tables(text))


# what tree-sitter reads as one escape sequence in a template (its JavaScript grammar's
# `escape_sequence`), where the next byte is ASCII and neither a `\r` nor a `?` (the grammar
# reads `\?` before a line break as one escape) is involved; else it is not read here
_ESCAPE_SEQUENCE = re.compile(rb"\\(?:u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[0-7]{1,3}|[^xu0-7?\r\x80-\xff])")
_TEMPLATE_PART = re.compile(rb"[`\\]|\$\{")
_IN_INTERPOLATION = re.compile(rb"[{}'\"`/]")


def literal_text(data: bytes, quote: int) -> str | None:
    """The text the scanner reads as SQL (`_sql_text`) of the string or template literal whose
    opening quote is at `quote`, read off the bytes: an interpolation is `$n`, an escape `\\n` a
    line break, `\\t` a tab, any other a space. None where the bytes alone cannot say: a quoted
    string holding a line break, a `\\` or a `&` (a JSX attribute's string reads neither as
    escapes), an interpolation holding a quote, a comment or a regex, an escape tree-sitter may
    read otherwise, or no closing quote."""
    mark = data[quote]
    if mark != 0x60:  # '...' or "...": up to the same quote, on the same line
        end = data.find(b"'" if mark == 0x27 else b'"', quote + 1)
        if end == -1:
            return None
        body = data[quote + 1 : end]
        if any(c in body for c in (b"\n", b"\r", b"\\", b"&")):
            return None
        return body.decode("utf-8", "surrogateescape")
    pieces: list[bytes] = []
    number = 0
    at = quote + 1
    while True:
        part = _TEMPLATE_PART.search(data, at)
        if part is None:
            return None
        pieces.append(data[at : part.start()])
        token = part.group()
        if token == b"`":
            break
        if token == b"\\":
            escape = _ESCAPE_SEQUENCE.match(data, part.start())
            if escape is None:
                return None
            pieces.append(b"\n" if escape.group() == b"\\n" else b"\t" if escape.group() == b"\\t" else b" ")
            at = escape.end()
            continue
        depth = 0  # `${`: to its `}`, with nothing in it that could hold a brace of its own
        for inner in _IN_INTERPOLATION.finditer(data, part.end()):
            brace = inner.group()
            if brace == b"{":
                depth += 1
            elif brace == b"}" and depth:
                depth -= 1
            elif brace == b"}":
                break
            else:
                return None
        else:
            return None
        number += 1
        pieces.append(f"${number}".encode())
        at = inner.end()
    return b"".join(pieces).decode("utf-8", "surrogateescape")


_STATEMENT = re.compile(r"\s*(?i:select|insert|update|delete|with)\s")


@dataclass(unsafe_hash=True, slots=True)
class SqlUse:
    table: str
    schema: str | None
    operation: Operation
    offset: int  # the name's character offset in the text parsed


# English parses as SQL now and then ("Select an option from the list"): a statement in code
# has more than its keywords (a WHERE, a placeholder, an operator, a list of columns)
_CODE = re.compile(r"(?i)\b(?:where|join|set|values|returning|order\s+by|group\s+by|limit|on\s+conflict|using|distinct)\b|[=*$(,;]|::")
# calls that take SQL: postgres.js / pg / knex / Deno postgres / better-sqlite3 / Prisma raw
SQL_CALLEES = frozenset({"sql", "query", "execute", "raw", "unsafe", "queryObject", "queryArray", "prepare", "exec", "$queryRaw", "$executeRaw", "$queryRawUnsafe", "$executeRawUnsafe", "queryRaw", "executeRaw"})


def looks_like_sql(text: str, *, sql_context: bool = False) -> bool:
    """A string that starts like a statement and reads like code (or is given to a call that
    takes SQL)."""
    return _STATEMENT.match(text) is not None and (sql_context or _CODE.search(text) is not None)


# a statement naming a table says FROM, INTO, UPDATE or JOIN somewhere: UI text starting with
# "Select" or "Update" does not, and is never handed to the parser
_NAMES_A_TABLE = re.compile(r"(?i)\b(?:from|into|update|join)\s")
_WRITES = {"InsertStmt": Operation.INSERT, "UpdateStmt": Operation.UPDATE, "DeleteStmt": Operation.DELETE}


def tables(text: str) -> list[SqlUse]:
    """Each table the SQL reads (select) or writes (insert, upsert, update, delete), in order; []
    when the text is not SQL PostgreSQL parses. Names a CTE defines are not tables. (The parse
    tree is read as pglast's JSON: several times faster than its Python nodes, on code that
    holds hundreds of statements.)"""
    if _NAMES_A_TABLE.search(text) is None:
        return []
    return list(_tables(text))


@functools.cache
def _parser():  # type: ignore[no-untyped-def]
    """pglast's parser, with its node classes and enums built only when something reads them.
    Building them is most of pglast's import (25 to 55 ms, in each worker that meets SQL), and
    the JSON parse never reads them; the database side, in the same process, finds them as if
    imported (each module is run in place on its first attribute read)."""
    import sys

    if "pglast" not in sys.modules:
        try:
            _defer_submodules("pglast", ("enums", "ast"))
        except Exception:  # a pglast laid out otherwise: imported as it is
            pass
    from pglast import parser

    return parser


def _defer_submodules(package: str, names: tuple[str, ...]) -> None:
    """Put each submodule in `sys.modules` unrun, to run in place on its first missing attribute
    (PEP 562's module `__getattr__`). importlib's LazyLoader cannot be used: the import statement
    reads a module's `__spec__`, which runs a LazyLoader module at once."""
    import importlib.machinery
    import importlib.util
    import sys

    top = importlib.util.find_spec(package)  # found, not run
    if top is None or top.submodule_search_locations is None:
        return
    deferred = []
    for name in names:
        spec = importlib.machinery.PathFinder.find_spec(f"{package}.{name}", top.submodule_search_locations)
        if spec is None or spec.loader is None:
            return
        deferred.append((name, spec))
    for name, spec in deferred:
        module = importlib.util.module_from_spec(spec)

        def __getattr__(attribute: str, module=module, spec=spec):  # type: ignore[no-untyped-def]
            del module.__dict__["__getattr__"]
            spec.loader.exec_module(module)
            return getattr(module, attribute)

        module.__getattr__ = __getattr__  # type: ignore[attr-defined]
        sys.modules[spec.name] = module
    parent = importlib.import_module(package)
    for name, spec in deferred:
        if not hasattr(parent, name):  # as importing the submodule would have set it
            setattr(parent, name, sys.modules[spec.name])


@functools.lru_cache(maxsize=2048)
def _tables(text: str) -> tuple[SqlUse, ...]:
    """`tables`, remembered per process: tests and migrations repeat the same statements."""
    parser = _parser()
    try:
        tree = parser.parse_sql_json(text)
    except (parser.ParseError, ValueError, RecursionError):
        return ()
    if tree.count('"stmt":') == 1:  # one statement (only a RawStmt has a `stmt`)
        try:
            return tuple(_statement(tree))
        except RecursionError:  # an object nested deeper than Python's decoder goes: walked with a stack
            pass
    return tuple(_walked(tree))


def _walked(tree: str) -> list[SqlUse]:
    """`_tables` of a parse tree (libpg_query's JSON) of any number of statements, walked whole."""
    import orjson

    try:
        stmts = orjson.loads(tree).get("stmts", [])
    except ValueError:
        return []
    out: list[SqlUse] = []
    for raw in stmts:
        ctes: set[str] = set()
        found: list[tuple[dict, Operation]] = []  # type: ignore[type-arg]
        stack: list[object] = [raw.get("stmt")]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                for key, value in item.items():
                    if key == "RangeVar" and isinstance(value, dict):
                        found.append((value, Operation.SELECT))
                    elif key in _WRITES and isinstance(value, dict):
                        relation = value.get("relation")
                        if isinstance(relation, dict):  # the written table: a RangeVar without its wrapper
                            found.append((relation, _written(key, value)))
                        stack.append({k: v for k, v in value.items() if k != "relation"})
                    elif key == "CommonTableExpr" and isinstance(value, dict):
                        ctes.add(value.get("ctename", ""))
                        stack.append(value)
                    elif isinstance(value, (dict, list)):
                        stack.append(value)
        out += _uses(found, ctes)
    return out


def _statement(tree: str) -> list[SqlUse]:
    """`_walked` of one statement's parse tree, without loading all of it: only the objects that
    name tables are decoded, where their keys stand in the text (a key cannot stand inside a
    string there: a string's own quotes are escaped). The tree of a long query is mostly
    expressions: loading and walking it all was most of what SQL cost."""
    decode = _decoder().raw_decode
    found: list[tuple[dict, Operation]] = []  # type: ignore[type-arg]
    ctes: set[str] = set()
    for key in ("RangeVar", *_WRITES, "CommonTableExpr"):
        marker = f'"{key}":{{'
        at = tree.find(marker)
        while at != -1:
            value, _ = decode(tree, at + len(marker) - 1)
            if key == "RangeVar":
                found.append((value, Operation.SELECT))
            elif key == "CommonTableExpr":
                ctes.add(value.get("ctename", ""))
            elif isinstance(relation := value.get("relation"), dict):
                found.append((relation, _written(key, value)))
            at = tree.find(marker, at + len(marker))
    return _uses(found, ctes)


@functools.cache
def _decoder():  # type: ignore[no-untyped-def]
    import json

    return json.JSONDecoder()


def _written(key: str, statement: dict) -> Operation:  # type: ignore[type-arg]
    upsert = key == "InsertStmt" and statement.get("onConflictClause") is not None
    return Operation.UPSERT if upsert else _WRITES[key]


def _uses(found: list[tuple[dict, Operation]], ctes: set[str]) -> list[SqlUse]:  # type: ignore[type-arg]
    """One statement's tables in the order they are named, each once per operation; names its
    CTEs define are not tables."""
    out: list[SqlUse] = []
    seen: set[tuple[str | None, str, Operation]] = set()
    for node, op in sorted(found, key=lambda f: f[0].get("location", 0)):
        schema, name = node.get("schemaname"), node.get("relname")
        if not name or (schema is None and name in ctes) or (schema, name, op) in seen:
            continue
        seen.add((schema, name, op))
        out.append(SqlUse(name, schema, op, node.get("location", 0)))
    return out
