"""PostgREST select, logic, realtime-filter and column-list strings parsed into names with exact offsets."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

AGGREGATES = frozenset({"avg", "count", "max", "min", "sum"})
OPERATORS = frozenset(
    "eq neq gt gte lt lte like ilike match imatch is isdistinct in cs cd ov sl sr nxr nxl adj "
    "fts plfts phfts wfts".split()
)
_MAX_DEPTH = 64


class PostgrestSyntaxError(ValueError):
    """A PostgREST string that does not parse; offset is where reading stopped."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at offset {offset}")
        self.message = message
        self.offset = offset


@dataclass(unsafe_hash=True)
class Field:
    """A column of the table itself, inside a select string."""

    name: str
    start: int
    end: int
    alias: str | None = None
    cast: str | None = None
    json_path: str | None = None
    aggregate: str | None = None
    quoted: bool = False
    bare: bool = False  # `count` without parentheses: PostgREST's old form (a column, or count(row))
    aggregate_cast: str | None = None  # `amount.sum()::int`: the aggregate's result cast; `cast` is the column's


@dataclass(unsafe_hash=True)
class Embed:
    """An embedded resource: `[...][alias:]relation[!hint...](items)`."""

    relation: str
    start: int
    end: int
    alias: str | None = None
    hints: tuple[str, ...] = ()
    spread: bool = False
    items: tuple[Field | Embed, ...] = ()


@dataclass(unsafe_hash=True)
class Select:
    """A parsed select string; no items means no explicit columns (all of them)."""

    items: tuple[Field | Embed, ...]

    def fields(self) -> tuple[Field, ...]:
        """The table's own columns: top-level Fields only."""
        return tuple(i for i in self.items if isinstance(i, Field))

    def embeds(self) -> tuple[Embed, ...]:
        """The top-level embedded resources."""
        return tuple(i for i in self.items if isinstance(i, Embed))


@dataclass(unsafe_hash=True)
class Condition:
    """One `column.[not.]op.value` of a logic string or realtime filter."""

    column: str
    start: int
    end: int
    operator: str
    negated: bool
    value: str
    modifier: str | None = None  # `any` / `all` of eq(any), the language of fts(english)


def _is_ident(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def _ident_end(text: str, i: int) -> int:
    """End of the identifier at i (letters, digits, `_`, `$`, inner `-`), or i if there is none."""
    n = len(text)
    j = i
    while j < n and _is_ident(text[j]):
        j += 1
        if j + 1 < n and text[j] == "-" and _is_ident(text[j + 1]):
            j += 1
    return j


def _quote_end(text: str, i: int) -> int:
    """Offset of the double quote closing the one at i (no escapes inside names)."""
    close = text.find('"', i + 1)
    if close == -1:
        raise PostgrestSyntaxError("unterminated double quote", i)
    if close == i + 1:
        raise PostgrestSyntaxError("empty quoted name", i)
    return close


# --------------------------------------------------------------------------- select

@dataclass(unsafe_hash=True)
class _Tok:
    kind: str  # 'name', 'qname', 'neg' (negative json index) or the punctuation itself
    text: str
    start: int
    end: int


_PUNCT = ("...", "->>", "::", "->", ",", "(", ")", ":", "!", ".", "*")


def _tokens(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == '"':
            close = _quote_end(text, i)
            toks.append(_Tok("qname", text[i + 1 : close], i + 1, close))
            i = close + 1
        elif _is_ident(ch):
            j = _ident_end(text, i)
            toks.append(_Tok("name", text[i:j], i, j))
            i = j
        elif ch == "-" and i + 1 < n and text[i + 1].isdigit():
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            toks.append(_Tok("neg", text[i:j], i, j))
            i = j
        else:
            punct = next((p for p in _PUNCT if text.startswith(p, i)), None)
            if punct is None:
                raise PostgrestSyntaxError(f"unexpected character {ch!r}", i)
            toks.append(_Tok(punct, punct, i, i + len(punct)))
            i += len(punct)
    return toks


class _SelectParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self, ahead: int = 0) -> _Tok | None:
        k = self.pos + ahead
        return self.toks[k] if k < len(self.toks) else None

    def at(self, kind: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok is not None and tok.kind == kind

    def offset(self) -> int:
        tok = self.peek()
        return tok.start if tok else len(self.text)

    def expect(self, what: str, *kinds: str) -> _Tok:
        tok = self.peek()
        if tok is None or tok.kind not in kinds:
            found = "end of string" if tok is None else repr(tok.text)
            raise PostgrestSyntaxError(f"expected {what}, found {found}", self.offset())
        self.pos += 1
        return tok

    def items(self, depth: int, opener: _Tok | None) -> tuple[Field | Embed, ...]:
        if depth > _MAX_DEPTH:
            raise PostgrestSyntaxError("embedding nested too deeply", opener.start if opener else 0)
        closing = ")" if opener else None
        if (closing and self.at(closing)) or (not closing and self.peek() is None):
            return ()
        if opener is not None and self.peek() is None:
            raise PostgrestSyntaxError("unclosed '('", opener.start)
        out: list[Field | Embed] = []
        while True:
            out.append(self.item(depth))
            if self.at(","):
                self.pos += 1
                continue
            if closing and self.at(closing):
                return tuple(out)
            if self.peek() is None:
                if opener is not None:
                    raise PostgrestSyntaxError("unclosed '('", opener.start)
                return tuple(out)
            tok = self.peek()
            assert tok is not None
            if tok.kind == ")":
                raise PostgrestSyntaxError("unbalanced ')'", tok.start)
            raise PostgrestSyntaxError(f"expected ',' before {tok.text!r}", tok.start)

    def item(self, depth: int) -> Field | Embed:
        spread = self.at("...")
        if spread:
            self.pos += 1
        first = self.expect("a column or relation name", "name", "qname", "*")
        if first.kind == "*":
            if spread:
                raise PostgrestSyntaxError("'...' needs a relation", first.start)
            return Field("*", first.start, first.end)
        alias: str | None = None
        name = first
        if self.at(":"):
            self.pos += 1
            alias = first.text
            name = self.expect("a name after the alias", "name", "qname")
        is_count_call = (
            name.kind == "name" and name.text == "count" and self.at("(") and self.at(")", 1)
        )
        if spread or self.at("!") or (self.at("(") and not is_count_call):
            return self.embed(name, alias, spread, depth)
        if is_count_call:
            self.pos += 2
            return Field("count", name.start, name.end, alias=alias, aggregate="count", aggregate_cast=self.cast())
        return self.field(name, alias)

    def embed(self, name: _Tok, alias: str | None, spread: bool, depth: int) -> Embed:
        hints: list[str] = []
        while self.at("!"):
            self.pos += 1
            hints.append(self.expect("a hint after '!'", "name", "qname").text)
        opener = self.expect("'(' after the relation name", "(")
        items = self.items(depth + 1, opener)
        self.expect("')'", ")")
        return Embed(name.text, name.start, name.end, alias, tuple(hints), spread, items)

    def cast(self) -> str | None:
        if not self.at("::"):
            return None
        self.pos += 1
        return self.expect("a type after '::'", "name").text

    def field(self, name: _Tok, alias: str | None) -> Field:
        path_start = path_end = None
        while self.at("->") or self.at("->>"):
            arrow = self.expect("'->'", "->", "->>")
            key = self.expect("a JSON key", "name", "qname", "neg")
            path_start = arrow.start if path_start is None else path_start
            path_end = key.end + (1 if key.kind == "qname" else 0)
        cast = self.cast()
        aggregate = aggregate_cast = None
        if self.at("."):
            self.pos += 1
            fn = self.expect("an aggregate function", "name")
            if fn.text not in AGGREGATES:
                raise PostgrestSyntaxError(f"unknown aggregate {fn.text!r}", fn.start)
            self.expect("'(' after the aggregate", "(")
            self.expect("')' (aggregates take no arguments)", ")")
            aggregate = fn.text
            aggregate_cast = self.cast()
        bare = False
        if aggregate is None and name.kind == "name" and name.text == "count" and path_start is None:
            aggregate, bare = "count", True
        json_path = None if path_start is None else self.text[path_start:path_end]
        return Field(name.text, name.start, name.end, alias, cast, json_path, aggregate, name.kind == "qname", bare, aggregate_cast)


def parse_select(text: str) -> Select:
    """Columns and embeds of a select string with their offsets, so each can be renamed in place."""
    return _parse_select(text)


@lru_cache(maxsize=4096)
def _parse_select(text: str) -> Select:
    # the same select strings recur across a codebase; the result is immutable (errors are not cached)
    return Select(_SelectParser(text).items(0, None))


# --------------------------------------------------------------------------- logic

def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _group_open(text: str, i: int) -> int | None:
    """Offset after `[not.]and(` / `[not.]or(` at i, or None if no group starts there."""
    j = i + 4 if text.startswith("not.", i) else i
    for op in ("and(", "or("):
        if text.startswith(op, j):
            return j + len(op)
    return None


def _column(text: str, i: int) -> tuple[str, int, int, int]:
    """Column at i (name or qualified `embed.name`) -> (column, start, end, offset after JSON path)."""
    if i < len(text) and text[i] == '"':
        close = _quote_end(text, i)
        column, start, end, j = text[i + 1 : close], i + 1, close, close + 1
    else:
        j = _ident_end(text, i)
        if j == i:
            raise PostgrestSyntaxError("expected a column name", i)
        start, first_end = i, j
        while j < len(text) and text[j] == ".":  # qualified `embed.col`: up to the operator
            seg_end = _ident_end(text, j + 1)
            segment = text[j + 1 : seg_end]
            if segment == "not" or segment in OPERATORS:
                break
            if not segment:  # no operator found: let the segment after the name be reported
                j = first_end
                break
            j = seg_end
        if not text.startswith(".", j) and not text.startswith("->", j):
            j = first_end
        column, end = text[start:j], j
    while text.startswith("->", j):
        j += 3 if text.startswith("->>", j) else 2
        if j < len(text) and text[j] == '"':
            j = _quote_end(text, j) + 1
            continue
        k = j + 1 if text.startswith("-", j) else j
        k = _ident_end(text, k)
        if k == j or text[k - 1] == "-":
            raise PostgrestSyntaxError("expected a JSON key", j)
        j = k
    return column, start, end, j


def _operator(text: str, i: int, after: str) -> tuple[str, bool, int]:
    """`[not.]op` at i -> (operator, negated, offset after it)."""
    if i >= len(text) or text[i] != ".":
        raise PostgrestSyntaxError(f"expected '.' and an operator after {after}", i)
    i += 1
    j = _ident_end(text, i)
    negated = text[i:j] == "not" and text.startswith(".", j)
    if negated:
        i = j + 1
        j = _ident_end(text, i)
    op = text[i:j]
    if op not in OPERATORS:
        raise PostgrestSyntaxError(f"unknown operator {op!r}" if op else "expected an operator", i)
    return op, negated, j


def _value(text: str, i: int, op: str) -> int:
    """End of the value at i: an `in` list, a quoted string, a `{...}` array, or text up to `,` / `)`."""
    n = len(text)
    if op == "in":
        if i >= n or text[i] != "(":
            raise PostgrestSyntaxError("expected '(' to open the in list", i)
        j = i + 1
        while True:
            if j < n and text[j] == '"':
                close = text.find('"', j + 1)
                j = close + 1 if close != -1 else j
            while j < n and text[j] not in ",)":
                j += 1
            if j >= n:
                raise PostgrestSyntaxError("unclosed '(' of the in list", i)
            j += 1
            if text[j - 1] == ")":
                return j
    if i < n and text[i] == '"':
        j = i + 1
        while j < n and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        if j >= n:
            raise PostgrestSyntaxError("unterminated double quote", i)
        if _skip_ws(text, j + 1) == n or text[_skip_ws(text, j + 1)] in ",)":
            return j + 1
    if i < n and text[i] == "{":
        close = text.find("}", i)
        if close != -1 and "{" not in text[i + 1 : close]:
            return close + 1
    j = i
    while j < n and text[j] not in ",)":
        j += 1
    return j


def _condition(text: str, i: int) -> tuple[Condition, int]:
    column, start, end, j = _column(text, i)
    op, negated, j = _operator(text, j, f"column {column!r}")
    modifier = None
    if j < len(text) and text[j] == "(":  # modifier: eq(any), like(all), fts(english)
        close = text.find(")", j)
        if close == -1 or _ident_end(text, j + 1) != close or close == j + 1:
            raise PostgrestSyntaxError("bad operator modifier", j)
        modifier = text[j + 1 : close]
        j = close + 1
    if j >= len(text) or text[j] != ".":
        raise PostgrestSyntaxError(f"expected '.' and a value after operator {op!r}", j)
    value_end = _value(text, j + 1, op)
    return Condition(column, start, end, op, negated, text[j + 1 : value_end], modifier), value_end


def _logic_list(text: str, i: int, out: list[Condition], opener: int | None, depth: int) -> int:
    if depth > _MAX_DEPTH:
        raise PostgrestSyntaxError("logic nested too deeply", opener or 0)
    n = len(text)
    while True:
        i = _skip_ws(text, i)
        inner = _group_open(text, i)
        if inner is not None:
            i = _logic_list(text, inner, out, inner - 1, depth + 1)
        else:
            if i >= n or text[i] in ",)":
                raise PostgrestSyntaxError("empty condition", i)
            cond, i = _condition(text, i)
            out.append(cond)
        i = _skip_ws(text, i)
        if i < n and text[i] == ",":
            i += 1
        elif opener is not None and i < n and text[i] == ")":
            return i + 1
        elif i >= n:
            if opener is not None:
                raise PostgrestSyntaxError("unclosed '('", opener)
            return i
        else:
            what = "unbalanced ')'" if text[i] == ")" else f"unexpected character {text[i]!r}"
            raise PostgrestSyntaxError(what, i)


def parse_logic(text: str) -> tuple[Condition, ...]:
    """Every condition of an or()/and() string, nested groups flattened, so filter columns can be renamed."""
    out: list[Condition] = []
    _logic_list(text, 0, out, None, 0)
    return tuple(out)


def parse_realtime_filter(text: str) -> Condition:
    """The column of a realtime `filter: 'col=op.value'`, which names a column like any other filter."""
    start = _skip_ws(text, 0)
    end = _ident_end(text, start)
    if end == start:
        raise PostgrestSyntaxError("expected a column name", start)
    eq = _skip_ws(text, end)
    if eq >= len(text) or text[eq] != "=":
        raise PostgrestSyntaxError("expected '=' after the column", eq)
    op_at = _skip_ws(text, eq + 1)
    k = _ident_end(text, op_at)
    negated = text[op_at:k] == "not" and text.startswith(".", k)
    if negated:
        op_at = k + 1
        k = _ident_end(text, op_at)
    op = text[op_at:k]
    if op not in OPERATORS:
        raise PostgrestSyntaxError(f"unknown operator {op!r}" if op else "expected an operator", op_at)
    if k >= len(text) or text[k] != ".":
        raise PostgrestSyntaxError(f"expected '.' and a value after operator {op!r}", k)
    return Condition(text[start:end], start, end, op, negated, text[k + 1 :])


def split_columns(text: str) -> tuple[tuple[str, int, int], ...]:
    """Names and offsets of an onConflict / on_conflict list, so each can be renamed in place."""
    out: list[tuple[str, int, int]] = []
    i = 0
    while True:
        i = _skip_ws(text, i)
        if i >= len(text) or text[i] == ",":
            raise PostgrestSyntaxError("empty column name", i)
        if text[i] == '"':
            close = _quote_end(text, i)
            start, end, j = i + 1, close, close + 1
        else:
            start = i
            end = j = _ident_end(text, i)
            if end == start:
                raise PostgrestSyntaxError(f"unexpected character {text[i]!r}", i)
        out.append((text[start:end], start, end))
        j = _skip_ws(text, j)
        if j >= len(text):
            return tuple(out)
        if text[j] != ",":
            raise PostgrestSyntaxError("expected ',' after the column name", j)
        i = j + 1
