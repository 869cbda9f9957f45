"""What both scanners share past their parsers: prefilters, evidence, fingerprints, the table call."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from tableshift.model import Call, Confidence, Operation, Span, TableArg, TableSource

if TYPE_CHECKING:
    from tableshift.scan.columns import Found

UNKNOWN_SCHEMA = "?"
# Receiver names that read as a database client, in either language.
CLIENTISH = re.compile(r"supabase|client|admin|(?<![a-z])db|database|(?<![a-z])sb(?![a-z])|postgrest", re.I)
# Byte-level prefilters: a file that matches none is never parsed. TypeScript also matches
# around each hit, so the two must stay one pattern.
TS_CANDIDATE = re.compile(rb"\.\s*(?:from|rpc)\s*(?:<[^()]{0,200}?>\s*)?\(|postgres_changes")  # `.from<Row>(` too
# the same hits, found from the literal `from` / `rpc` (a regex led by a literal searches many times
# faster than one led by `\.`, which every member access in a file starts)
_FROM_LED = re.compile(rb"from\s*(?:<[^()]{0,200}?>\s*)?\(")
_RPC_LED = re.compile(rb"rpc\s*(?:<[^()]{0,200}?>\s*)?\(")
_SPACE = frozenset(b" \t\n\r\f\v")  # what `\s` matches in a bytes pattern
WORD_BYTES = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")  # `\w` in a bytes pattern
NAME_BYTES = WORD_BYTES | {0x24}  # `[\w$]`: what a name's bytes may be next to without being part of it


def name_occurrences(data: bytes, name: str) -> Iterator[re.Match[bytes]]:
    """Each place `name` stands alone in `data` (`(?<![\\w$])name(?![\\w$])`), searched for from
    the name itself and its start tested by hand: a pattern led by a look-behind is tried at every
    byte of a file, one led by a literal is searched for."""
    for match in re.finditer(re.escape(name.encode("utf-8", "surrogateescape")) + rb"(?![\w$])", data):
        if match.start() == 0 or data[match.start() - 1] not in NAME_BYTES:  # not the end of a longer name
            yield match


def byte_before(data: bytes, end: int) -> int:
    """The offset of the last byte before `end` that is not whitespace (-1 when there is none)."""
    i = end - 1
    while i >= 0 and data[i] in _SPACE:
        i -= 1
    return i


def _member_calls(data: bytes) -> Iterator[tuple[int, int]]:
    """The `.from(` and `.rpc(` spans `TS_CANDIDATE` matches (from the `.`), the first kind first."""
    for pattern in (_FROM_LED, _RPC_LED):
        for match in pattern.finditer(data):
            i = byte_before(data, match.start())
            if i >= 0 and data[i] == 0x2E:  # `.`
                yield i, match.end()


def has_query_hit(data: bytes) -> bool:
    """`any(data.startswith(b"postgres", start) or not noise_hit(data, start) for start, _ in
    ts_hits(data))`: a realtime subscription, or a `.from(` / `.rpc(` not called on a noise receiver,
    found without listing every hit of a file that has one."""
    return b"postgres_changes" in data or any(not noise_hit(data, start) for start, _ in _member_calls(data))


def ts_hits(data: bytes) -> list[tuple[int, int]]:
    """The spans `TS_CANDIDATE.finditer(data)` matches, in order."""
    hits = list(_member_calls(data))
    i = data.find(b"postgres_changes")
    while i != -1:
        hits.append((i, i + 16))
        i = data.find(b"postgres_changes", i + 16)
    hits.sort()
    return hits


# generated Supabase types naming a table: `Tables<'x'>`, `TablesInsert<`, `['Tables']['x']`
TYPE_CANDIDATE = re.compile(rb"\bTables(?:Insert|Update)?\s*<|\[\s*['\"]Tables['\"]\s*\]")
# PostgREST addressed over plain HTTP: `${SUPABASE_URL}/rest/v1/table?select=...`
REST_CANDIDATE = re.compile(rb"/rest/v1/")
# `supabase gen types` output: a `Database` type whose schemas declare `Tables: {` of `Row: {` types
GENERATED_TYPES = re.compile(rb"\bTables\s*:\s*\{")


# Receivers whose `.from()` is never a query (`Array.from`, `Buffer.from`, typed arrays, other libraries)
NOISE_RECEIVERS = frozenset(
    {"Array", "Buffer", "Object", "Set", "Map", "WeakMap", "WeakSet", "Promise", "String", "Number", "Date",
     "Symbol", "Iterator", "AsyncIterator", "Observable", "Rx", "rxjs", "Stream", "Readable", "Blob", "gsap",
     "TweenMax", "TweenLite", "anime", "Velocity", "moment", "dayjs", "Temporal", "Intl", "Immutable", "List",
     "Seq", "_", "R", "knex", "kysely", "drizzle", "sequelize", "prisma", "qb", "sql", "Effect",
     "Chunk", "HashSet", "HashMap", "Option", "Either"}
)  # fmt: skip
_TYPED_ARRAY = r"(?:Big)?(?:U?[Ii]nt|Float)\d+(?:Clamped)?Array"  # `Uint8Array`, `BigInt64Array`...
TYPED_ARRAY = re.compile(f"^{_TYPED_ARRAY}$")
# a name standing alone: not a member (`x.Array`, `#Array`), yet spread (`...Array.from(xs)`) is alone
_NOISE_BEFORE = re.compile(
    rb"(?:(?<=\.\.\.)|(?<![\w$.#\\\x80-\xff]))(?:"
    + b"|".join(re.escape(name.encode()) for name in sorted(NOISE_RECEIVERS, key=len, reverse=True))
    + b"|" + _TYPED_ARRAY.encode() + rb")\s*\Z"
)


def noise_hit(data: bytes, start: int) -> bool:
    """Whether the `.from(` hit at `start` is called on a bare noise receiver (`Buffer.from(`), as
    the scanner reads it: only an identifier standing alone (no `x.` or `#` before it, a spread's
    `...` is no member access) counts."""
    return _NOISE_BEFORE.search(data, max(0, start - 64), start) is not None


def generated_types(data: bytes) -> bool:
    """A file of generated Supabase types: the tables' own declarations, regenerated, never patched.
    (`GENERATED_TYPES.search(data)` and `\\bRow\\s*:\\s*\\{`, found from their literal words.)"""
    return b"Tables" in data and b"Row" in data and _word_led(_TABLES_DECLARED, data) and _word_led(_ROW_DECLARED, data)


_TABLES_DECLARED = re.compile(rb"Tables\s*:\s*\{")
_ROW_DECLARED = re.compile(rb"Row\s*:\s*\{")


def _word_led(pattern: re.Pattern[bytes], data: bytes) -> bool:
    """`re.search(rb"\\b" + pattern.pattern, data) is not None` for a pattern led by a word that
    cannot start inside one of its own matches: a pattern led by `\\b` is tried at every byte,
    one led by a literal is searched for (many times faster)."""
    return any(m.start() == 0 or data[m.start() - 1] not in WORD_BYTES for m in pattern.finditer(data))


_TYPE_NAME = re.compile(rb"Tables(?:Insert|Update)?\s*<")
_TYPE_INDEX = re.compile(rb"Tables['\"]\s*\]")


def type_hits(data: bytes) -> list[tuple[int, int]]:
    """The spans `TYPE_CANDIDATE.finditer(data)` matches, in order, found from each `Tables` in the
    bytes: `Tables<`, `TablesInsert <` (a word of its own), or `[ 'Tables' ]` around it."""
    hits: list[tuple[int, int]] = []
    end = 0
    i = data.find(b"Tables")
    while i != -1:
        span: tuple[int, int] | None = None
        if (i == 0 or data[i - 1] not in WORD_BYTES) and (m := _TYPE_NAME.match(data, i)) is not None:
            span = (i, m.end())
        elif i > 0 and data[i - 1] in b"'\"" and (k := byte_before(data, i - 1)) >= 0 and data[k] == 0x5B and (m := _TYPE_INDEX.match(data, i)) is not None:
            span = (k, m.end())
        if span is not None and span[0] >= end:
            hits.append(span)
            end = span[1]
        i = data.find(b"Tables", i + 6)
    return hits
PY_CANDIDATE = re.compile(rb"\.\s*(?:table|from_|rpc|on_postgres_changes)\s*\(")
_PUNCTUATION = re.compile(r"([.()\[\]{},:])")


def chain_evidence(links: Iterable[tuple[str, bool]], *, postgrest: frozenset[str], ambiguous: frozenset[str]) -> bool:
    """Whether a chain reads as PostgREST: a method only it has, or a shared name (`filter`,
    `match`...) called with PostgREST-shaped arguments. Each link is (method, first argument is
    a string literal or an object/dict literal)."""
    for name, shaped in links:
        if name in postgrest and (name not in ambiguous or shaped):
            return True
    return False


def fold(code: str, limit: int = 240) -> str:
    """Code on one line, white space around punctuation removed and quotes made alike:
    stable under reformatting, so a baseline can match a call that a formatter touched.

    Folding a prefix of the code gives a prefix of the folded code (a space is kept or dropped by
    its two neighbours, and a prefix never ends in one): a long chain or string of SQL is folded
    from its start alone when that already gives more than `limit` characters."""
    if len(code) > 4 * limit:
        head = _folded(code[: 4 * limit])
        if len(head) > limit:
            return head[: limit - 1] + "…"
    folded = _folded(code)
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def _folded(code: str) -> str:
    parts = _PUNCTUATION.split(" ".join(code.split()))
    # white space on either side of punctuation goes: strip every piece between punctuation
    parts[::2] = [p.strip() for p in parts[::2]]
    return "".join(parts).replace('"', "'").replace("`", "'")


def in_unknown_schema(table: TableArg) -> TableArg:
    """A table named through `.schema(expr)`: the same name in another schema is another table,
    so the call only may be this one."""
    return TableArg(
        None,
        TableSource.DYNAMIC,
        candidates=(table.name,) if table.certain and table.name else table.candidates,
        reasons=("the .schema() argument is not known statically", *table.reasons),
    )


def schema_qualified(table: TableArg, schema: str | None) -> tuple[TableArg, str | None]:
    """The table and schema a Python call names: `.schema(x)` unknown makes the table dynamic, and
    `'analytics.events'` names both (the rewrite span keeps to the table part)."""
    if schema == UNKNOWN_SCHEMA:
        return in_unknown_schema(table), None
    if table.certain and table.name and "." in table.name and schema is None:
        schema, name = table.name.split(".", 1)
        span = table.span
        if span is not None:
            span = Span(span.start + len(schema) + 1, span.end)
        return TableArg(name, table.source, span=span), schema
    return table, schema


def table_call(
    base: dict,  # type: ignore[type-arg]
    found: Found,
    *,
    schema: str | None,
    table: TableArg,
    operation: Operation | None,
    operation_span: Span | None,
    evidence: bool,
    continued: bool,
    escaped: str | None,
    options: tuple[tuple[str, str], ...] = (),
) -> Call:
    """A table call from what either scanner found, with the notes both add about its chain."""
    notes = list(found.notes)
    if continued:
        notes.append("the query chain continues in a variable")
    if escaped is not None:
        notes.append(escaped)
    return Call(
        **base,
        schema=schema,
        table=table,
        operation=operation,
        columns=found.freeze(),
        confidence=Confidence.HIGH if evidence else Confidence.MEDIUM,
        notes=tuple(notes),
        operation_span=operation_span,
        payload_objects=tuple(found.payload_objects),
        open_chain=continued or escaped is not None,
        malformed=tuple(found.malformed),
        options=options,
    )
