"""Core records of tableshift: dataclasses and enums, no I/O.

The records are never changed once made, and hash by their fields (`unsafe_hash`), but are not
`frozen`: a frozen dataclass sets each field through `object.__setattr__`, in `__init__` and when
unpickled, which made building them four times slower (a twentieth of a scan's time). Make a
changed copy with `dataclasses.replace`."""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

_T = TypeVar("_T")


def compact_pickle(cls: type[_T]) -> type[_T]:
    """Pickle as `cls(*fields)`: several times faster to load than slots dataclasses' default."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (cls, tuple([getattr(self, name) for name in names]))

    cls.__reduce__ = __reduce__  # type: ignore[method-assign,assignment]
    return cls


class FastEnum(StrEnum):
    """A StrEnum that unpickles as an attribute lookup (in C), not through EnumMeta.__call__:
    cached results hold thousands of them, and loading them was a third of a warm run. Its
    `value` is read by a C getter: Python 3.11's own `enum.property` runs two Python calls for
    each read (360 ns against 100), and an audit reads one 35,000 times on capgo."""

    value = property(operator.attrgetter("_value_"))  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: object) -> tuple:  # type: ignore[override,type-arg]
        return getattr, (self.__class__, self._name_)


class Kind(FastEnum):
    TABLE = "table"
    STORAGE = "storage"
    RPC = "rpc"
    REALTIME = "realtime"
    HELPER = "helper"  # a call of a helper that queries the table it is given (found by the link pass)
    REST = "rest"  # PostgREST over plain HTTP: `fetch(`${url}/rest/v1/x?select=a`, { method: 'PATCH' })`
    SQL = "sql"  # SQL in a string: `sql\`SELECT ... FROM x\``, `pool.query('UPDATE x ...')`
    TYPE = "type"  # a generated type naming a table: `Tables<'x'>`, `Database['public']['Tables']['x']['Row']`


class Operation(FastEnum):
    SELECT = "select"
    INSERT = "insert"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"

    @property
    def is_read(self) -> bool:
        return self is Operation.SELECT


class TableSource(FastEnum):
    """How the table name of a call is known."""

    LITERAL = "literal"
    CONSTANT = "constant"
    DYNAMIC = "dynamic"


class Role(FastEnum):
    SELECT = "select"
    FILTER = "filter"
    WRITE = "write"
    ON_CONFLICT = "on_conflict"


class Status(FastEnum):
    OK = "ok"
    LEGACY = "legacy"
    DYNAMIC = "dynamic"


class Confidence(FastEnum):
    """How sure the scanner is that a `.from()` is a Supabase query."""

    HIGH = "high"  # the chain or the receiver is PostgREST-shaped
    MEDIUM = "medium"  # a client-like receiver and a table-like argument, nothing more


@compact_pickle
@dataclass(unsafe_hash=True, slots=True, order=True)
class Span:
    """Byte offsets into a file's original bytes, end exclusive."""

    start: int
    end: int


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Position:
    """1-based line and character column, for people and editors."""

    line: int
    column: int


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Column:
    """One column reference in a call, with the span of its name."""

    name: str
    role: Role
    op: str  # the method or place it came from: select, eq, order, match, or, insert, onConflict...
    position: Position
    span: Span | None  # None when the name cannot be mapped to bytes (escaped string)
    alias: str | None = None
    cast: str | None = None
    json_path: str | None = None
    aggregate: str | None = None
    shorthand: bool = False  # `{ decision_id }` in an object literal
    qualifier: str | None = None  # embedded resource that qualifies it: 'author' in 'author.name'
    # the value a filter compares with or a payload writes, as PostgREST sends it (text), when the
    # code spells it out: `.eq('status', 'queued')` -> 'queued'; None when it is a variable
    value: str | None = None
    bare: bool = False  # `count` without parentheses: to PostgREST a column, or count(row), never an aggregate
    null: bool = False  # a payload writes `null` (None in Python) to it: SQL NULL, where value None is a variable
    aggregate_cast: str | None = None  # `amount.sum()::int` casts the sum; `amount::int.sum()` (cast) the column


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Embedded:
    """An embedded resource inside a select string: another table read through this call."""

    table: str
    alias: str | None
    hints: tuple[str, ...]
    position: Position
    span: Span | None
    columns: tuple[Column, ...] = ()
    embedded: tuple[Embedded, ...] = ()
    spread: bool = False  # `...profiles(name)`: its columns read as the parent's

    def walk(self) -> tuple[Embedded, ...]:
        """This embed and every embed nested in it, depth first."""
        out: list[Embedded] = [self]
        for child in self.embedded:
            out.extend(child.walk())
        return tuple(out)


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Opaque:
    """A part of a call that is not statically visible: recorded, never guessed."""

    role: Role
    reason: str
    position: Position


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Columns:
    select: tuple[Column, ...] = ()
    embedded: tuple[Embedded, ...] = ()
    filter: tuple[Column, ...] = ()
    write: tuple[Column, ...] = ()
    on_conflict: tuple[Column, ...] = ()
    opaque: tuple[Opaque, ...] = ()

    def all_embedded(self) -> tuple[Embedded, ...]:
        out: list[Embedded] = []
        for emb in self.embedded:
            out.extend(emb.walk())
        return tuple(out)


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Origin:
    """A constant another module may use too, which names a call's table: where its literal stands."""

    file: str  # the defining module, as reports show it
    path: str  # the same, resolved: the constant's identity with `span`
    span: Span  # its literal's content
    name: str  # `TABLES.content.queue`: how the call reaches it

    @property
    def key(self) -> tuple[str, int]:
        return (self.path, self.span.start)

    def shown(self) -> str:
        return f"constant `{self.name}` in {self.file}"


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class TableArg:
    """The table a call names, and how sure we are of it."""

    name: str | None
    source: TableSource
    span: Span | None = None  # the literal's content, for a rewrite; None unless LITERAL
    candidates: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    # a file-private constant holding the name: its literal, and how often the file names it
    binding: Span | None = None
    binding_refs: int = 0
    # an imported name, for the project-wide link pass: (module specifier, imported name, member path...)
    link: tuple[str, ...] = ()
    candidate_links: tuple[tuple[str, ...], ...] = ()  # imported names a parameter is given at call sites
    # (function, index) of the parameter it is, and the property it destructures (`{ table }`): callers elsewhere are linked
    parameter: tuple[str, int] | tuple[str, int, str] | None = None
    exported_as: tuple[str, ...] = ()  # the names other modules import that function by
    origin: Origin | None = None  # a constant of another module (or an exported one): settled project-wide

    @property
    def certain(self) -> bool:
        return self.source is not TableSource.DYNAMIC


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Call:
    """One Supabase query call as found in source, before any rules apply."""

    file: str
    language: str
    kind: Kind
    span: Span  # the whole chain
    start: Position  # the method token: `from` of `.from(`, `rpc`, `on`
    end: Position  # end of the whole chain
    client: str
    code: str  # the source line of the method token, stripped
    chain: str = ""  # the whole chain on one line, white space folded: what a baseline matches on
    schema: str | None = None
    table: TableArg | None = None  # table and realtime calls
    name: str | None = None  # storage bucket or rpc function
    operation: Operation | None = None
    event: str | None = None  # realtime event
    columns: Columns = Columns()
    confidence: Confidence = Confidence.HIGH
    in_error_region: bool = False
    notes: tuple[str, ...] = ()  # what the scanner could not read (malformed strings...)
    operation_span: Span | None = None  # the operation's call (`...select(...)`), where filters can be appended
    payload_objects: tuple[Span, ...] = ()  # object literals written by insert / upsert / update
    suppression: str | None = None  # `tableshift-ignore: reason`; "" when the reason is missing
    # what the chain asks besides columns, as the code spells it (for `verify`): ("limit", "10"),
    # ("range", "0,9"), ("count", "exact"), ("head", "true"), ("ignore_duplicates", "true"); "?" when computed
    options: tuple[tuple[str, str], ...] = ()
    # the builder goes on elsewhere (a variable chained onto later, passed on, returned): more may
    # be chained onto it than the scanner saw
    open_chain: bool = False
    # PostgREST strings (select, or(), onConflict) that do not parse: PostgREST refuses the request (PGRST100)
    malformed: tuple[str, ...] = ()
    # a type reference's form: `Tables`, `TablesInsert`, `TablesUpdate` (generic) or `['Tables']`,
    # `['Tables'][…]['Row']`, `['Insert']`, `['Update']` (index)
    form: str | None = None

    @property
    def is_read(self) -> bool | None:
        return None if self.operation is None else self.operation.is_read


@compact_pickle
@dataclass(unsafe_hash=True, slots=True, order=True)
class Edit:
    """Replace the bytes of `span` with `text`; a file's edits never overlap."""

    span: Span
    text: str


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class FileResult:
    """Everything scanning one file produced; errors are values, never raised."""

    path: str
    language: str | None
    calls: tuple[Call, ...] = ()
    parsed: bool = False  # False when the prefilter found nothing to parse
    parse_error: bool = False
    error: str | None = None  # could not read or decode the file at all
    skipped: str | None = None  # why the file was not scanned
    candidates: bool = False  # a skipped file mentions `.from(` or the like: a gate must not pass it unseen
    generated_types: bool = False  # `supabase gen types` output (a Database type declaring `Tables: {`): regenerated, not patched


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Verdict:
    """A call judged against a rules file."""

    call: Call
    status: Status | None  # None when no rules were given
    target: str | None = None
    reasons: tuple[str, ...] = ()
    legacy_tables: tuple[str, ...] = ()  # legacy tables involved, own or embedded
