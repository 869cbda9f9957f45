"""Python files LibCST cannot take: spotted by their nesting before LibCST sees them, scanned with tree-sitter."""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from tableshift.model import (
    Call,
    Column,
    Kind,
    Opaque,
    Operation,
    Role,
    Span,
    TableArg,
    TableSource,
)
from tableshift.scan import columns as col
from tableshift.scan.py_columns import link_columns
from tableshift.scan.python import AMBIGUOUS, OPERATIONS, POSTGREST
from tableshift.scan.shared import (
    CLIENTISH,
    PY_CANDIDATE,
    UNKNOWN_SCHEMA,
    chain_evidence,
    fold,
    schema_qualified,
    table_call,
)
from tableshift.scan.source import BOM, SourceText, StringLiteral

if TYPE_CHECKING:
    from tree_sitter import Node, Parser, TreeCursor

# -- how deep LibCST would recurse --------------------------------------------------------------
#
# LibCST parses in native code that recurses once per level of nesting: a file nested deeply
# enough overflows the C stack and the process dies (SIGSEGV), which no `except` catches. It is
# also quadratic in depth. Measured with libcst 1.9 on x86-64, on an 8 MiB stack it crashes at
# about 1,270 nested parentheses or lists, 3,200 links of a method chain, 5,900 attributes, 6,900
# `+`, 8,200 unary minus; a chain of 2,000 links takes 38 s to parse. On a 1 MiB stack the same
# crashes come at 1/8 of those counts, which gives the stack each level takes: 6.5 to 7.8 KiB for
# a bracket or an f-string's placeholder, 1 to 2.7 KiB for an operator, a keyword, an attribute,
# a call trailer or an `elif`, 0.84 KiB for a string joined to the one before.
#
# Units below are quarter KiB: a bracket 32, an operator character, a keyword, a `.` or a closed
# trailer 8, an `elif` 5. A string is 1: implicit concatenation is common (prompts, SQL, Sphinx's
# 2,200-string topics table), cheap in time, and even 4,000 strings take only 3.4 MiB.
MAX_DEPTH = 4_000  # about 1 MiB of stack; real code peaks near 1,400 (pip's idna tables)
# LibCST's time grows with the square of a statement's depth: the sum over a file's statements
# bounds it (a few seconds at this budget; the deepest real files stay under 16,000,000).
MAX_COST = 160_000_000
_BRACKET, _STEP, _ELIF, _STRING = 32, 8, 5, 1

_TOKEN = re.compile(
    # LibCST's tokenizer takes a string prefix only at the start of a name: `elif"x"` is `elif` "x"
    rb"(?P<string>(?:(?<![\w\x80-\xff])(?:[uU]|[bBfF][rR]|[rR][bBfFtT]|[rRbBfFtT]))?(?:'''|\"\"\"|'|\"))"
    rb"|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<comma>[,;])|(?P<newline>\\?(?:\r\n|\r|\n))|#[^\r\n]*"
    # a keyword may follow a number directly: `1or 2` is `1 or 2`
    rb"|(?P<elif>\belif\b)|(?P<step>[-+*/%@&|^~<>=!.:]|(?<![A-Za-z_\x80-\xff])(?:not|and|or|in|is|if|else|lambda|await|for|yield)\b)"
)
_STRING_END = {
    b"'": re.compile(rb"[^'\\\r\n]*(?:\\(?:\r\n|[\s\S])[^'\\\r\n]*)*'"),
    b'"': re.compile(rb'[^"\\\r\n]*(?:\\(?:\r\n|[\s\S])[^"\\\r\n]*)*"'),
    b"'''": re.compile(rb"[^'\\]*(?:(?:\\[\s\S]|'(?!''))[^'\\]*)*'''"),
    b'"""': re.compile(rb'[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*"""'),
}
_FSTRING_TEXT = re.compile(rb"[^'\"\\{}\r\n]*")
_PAIRS = {b")": b"(", b"]": b"[", b"}": b"{"}
_ESCAPED = frozenset(b"\r\n\\'\"abfnrtvx0123456789NuU")  # what a backslash swallows in f-string text


class _FString:
    """One open f-string (or t-string), as LibCST's tokenizer tracks it."""

    __slots__ = ("quote", "raw", "parens", "specs")

    def __init__(self, quote: bytes, raw: bool) -> None:
        self.quote = quote
        self.raw = raw
        self.parens = 0  # brackets open inside it, its `{` included
        self.specs = 0  # format specs open inside it (`{x:>{w}}`)

    @property
    def in_text(self) -> bool:
        return self.parens <= self.specs


@dataclass(frozen=True, slots=True)
class Nesting:
    depth: int  # the deepest statement, in quarter KiB of LibCST's stack
    cost: int  # the sum over statements of depth squared
    elifs: int  # `elif` branches: each nests the next one level deeper
    broken: bool  # LibCST's tokenizer would stop here: an unterminated string, an unmatched bracket...


def beyond_libcst(data: bytes) -> bool:
    """Whether LibCST must not be given this file: too deep for its stack or its time, or not even tokens."""
    n = nesting(data)
    return n.broken or n.depth > MAX_DEPTH or n.elifs * _ELIF > MAX_DEPTH or n.cost > MAX_COST


def nesting(data: bytes) -> Nesting:
    """How deep LibCST would recurse on a file, from its tokens alone: one pass, no recursion.

    Strings and f-strings follow LibCST's own tokenizer, so that no bracket hides in what only
    looks like a string. Each open bracket carries the steps (operators, attributes, trailers)
    taken at its level since the last comma: a comma separates items that do not nest.
    """
    brackets: list[bytes] = []
    steps = [0]  # per open bracket, and the statement's own level first
    fstrings: list[_FString] = []
    depth = deepest = statement = cost = elifs = 0
    pos, end = 0, len(data)
    while pos < end:
        top = fstrings[-1] if fstrings else None
        if top is not None and top.in_text:
            pos = _fstring_text(data, pos, top)
            if pos < 0:
                return Nesting(deepest, cost, elifs, broken=True)
            if data.startswith(top.quote, pos):
                fstrings.pop()
                pos += len(top.quote)
                continue
        m = _TOKEN.search(data, pos)
        if m is None:
            break
        pos = m.end()
        kind = m.lastgroup
        token = m.group()
        if kind == "step" or kind == "string":
            weight = _STRING if kind == "string" else _STEP
            steps[-1] += weight
            depth += weight
            if kind == "string":
                quote = token.lstrip(b"rRbBuUfFtT")
                prefix = token[: len(token) - len(quote)].lower()
                if b"f" in prefix or b"t" in prefix:
                    fstrings.append(_FString(quote, b"r" in prefix))
                else:
                    closed = _STRING_END[quote].match(data, pos)
                    if closed is None:
                        return Nesting(deepest, cost, elifs, broken=True)
                    pos = closed.end()
            elif token == b":" and top is not None and top.parens - top.specs == 1:
                top.specs += 1  # `{x:` opens a format spec
        elif kind == "open":
            brackets.append(token)
            steps.append(0)
            depth += _BRACKET
            if top is not None:
                top.parens += 1
        elif kind == "close":
            if not brackets or brackets.pop() != _PAIRS[token]:
                return Nesting(deepest, cost, elifs, broken=True)
            depth -= _BRACKET + steps.pop()
            steps[-1] += _STEP  # the closed bracket is a trailer of what precedes it: `f(x)(y)`
            depth += _STEP
            if top is not None:
                if top.in_text and top.specs:  # `}` ends a format spec with its placeholder
                    top.specs -= 1
                top.parens -= 1
        elif kind == "elif":
            elifs += 1
        elif kind == "comma" or (kind == "newline" and not brackets and not token.startswith(b"\\")):
            depth -= steps[-1]
            steps[-1] = 0
            if not brackets:  # a statement ends
                cost += statement * statement
                statement = 0
        deepest = max(deepest, depth)
        statement = max(statement, depth)
    return Nesting(deepest, cost + statement * statement, elifs, broken=bool(fstrings))


def _fstring_text(data: bytes, pos: int, top: _FString) -> int:
    """Past the literal text of the innermost f-string: to a brace that opens or closes a
    placeholder or spec, or to its closing quote; -1 where LibCST's tokenizer fails."""
    multiline = len(top.quote) == 3
    spec = top.specs > 0
    named = False  # inside `\N{...}`
    end = len(data)
    while True:
        pos = _FSTRING_TEXT.match(data, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            return -1
        char = data[pos : pos + 1]
        if char in (b"\r", b"\n"):
            if not multiline:
                return -1
            pos += 1
        elif char in (b"'", b'"'):
            if data.startswith(top.quote, pos):
                return pos
            pos += 1
        elif char == b"\\":
            after = data[pos + 1 : pos + 2]
            pos += 1
            if top.raw:
                pos += after in (b"'", b'"', b"\\")
            elif spec:
                pos += after not in (b"{", b"}", b"")
            elif after and after[0] in _ESCAPED:
                pos += 1
                if after == b"N" and data.startswith(b"{", pos):
                    named = True
                    pos += 1
        elif char == b"{":
            if spec or not data.startswith(b"{{", pos):
                return pos
            pos += 2
        elif named:
            named = False
            pos += 1
        elif spec:
            return pos
        elif data.startswith(b"}}", pos):
            pos += 2
        else:
            return -1


# -- calls, with tree-sitter ---------------------------------------------------------------------

_READ_LIMIT = 4_096  # bytes of an expression read to judge or quote it: nested chains must not cost their square
_STATEMENTS = frozenset({"module", "block", "ERROR"})  # what a statement's parent is


@cache
def _language():  # type: ignore[no-untyped-def]
    # imported when a file needs it: most runs never meet a file LibCST cannot parse
    import tree_sitter_python
    from tree_sitter import Language

    return Language(tree_sitter_python.language())


def _parser() -> Parser:
    from tree_sitter import Parser

    return Parser(_language())


def _body(data: bytes) -> tuple[bytes, int]:
    """What tree-sitter parses, and the bytes cut off before it: a BOM is not Python."""
    return (data[len(BOM) :], len(BOM)) if data.startswith(BOM) else (data, 0)


def syntax_errors(data: bytes) -> int:
    """tree-sitter's ERROR and MISSING nodes: how broken a file is, whatever its nesting."""
    root = _parser().parse(_body(data)[0]).root_node
    if not root.has_error:
        return 0
    count = 0
    cursor = root.walk()
    while True:  # depth first, iterative, entering only subtrees that hold an error
        node = cursor.node
        count += node.is_error or node.is_missing  # type: ignore[union-attr]
        if node.has_error and cursor.goto_first_child():  # type: ignore[union-attr]
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return count


def scan(data: bytes, *, path: str) -> list[Call]:
    """Query calls in a file LibCST cannot parse, found as python.py finds them, columns included;
    every one is `in_error_region`, so none is ever rewritten without review."""
    body, base = _body(data)
    root = _parser().parse(body).root_node
    ctx = _FileScan(path, data, base)
    walker = _Walker(root)
    calls: list[Call] = []
    done: set[int] = set()  # method names already met in the chain of an earlier one: each chain is read once
    for hit in PY_CANDIDATE.finditer(data, base):
        name = hit.start() + 1
        while data[name : name + 1].isspace():
            name += 1
        if name not in done:
            calls.extend(ctx.chain_calls(walker.to(name - base), walker.statements, done))
    calls.sort(key=lambda c: c.span.start)
    return calls


class _Walker:
    """The path from the root to a byte, moved along as the bytes asked for grow: each node on the
    way is entered once, however deep the file nests."""

    def __init__(self, root: Node) -> None:
        self.cursor: TreeCursor = root.walk()
        self.path: list[Node] = [root]
        self.statements: list[int] = [0]  # per node on the path: where its statement sits on the path

    def to(self, offset: int) -> list[Node]:
        cursor = self.cursor
        while len(self.path) > 1 and not (self.path[-1].start_byte <= offset < self.path[-1].end_byte):
            cursor.goto_parent()
            self.path.pop()
            self.statements.pop()
        while cursor.goto_first_child_for_byte(offset) is not None:
            node = cursor.node
            assert node is not None
            if node.start_byte > offset:  # the offset falls between two children
                cursor.goto_parent()
                break
            parent = self.path[-1]
            self.statements.append(len(self.path) if parent.type in _STATEMENTS else self.statements[-1])
            self.path.append(node)
        return self.path


@dataclass(frozen=True, slots=True)
class _Link:
    name: str
    node: Node  # the call, or the attribute of a property link (`.not_`)
    args: tuple[Node, ...]
    method: Node | None  # the attribute whose name this is, when the link is a call


class _FileScan:
    def __init__(self, path: str, data: bytes, base: int) -> None:
        self.path = path
        self.data = data
        self.base = base
        self.src = SourceText(data)

    # -- text and strings ------------------------------------------------------

    def span(self, node: Node) -> Span:
        return Span(node.start_byte + self.base, node.end_byte + self.base)

    def text(self, node: Node, limit: int | None = None) -> str:
        start = node.start_byte + self.base
        end = node.end_byte + self.base if limit is None else min(node.end_byte + self.base, start + limit)
        return self.data[start:end].decode("utf-8", "replace")

    def string(self, node: Node | None) -> StringLiteral | None:
        """A str literal (any quotes, any prefix but b) or an f-string without placeholders."""
        if node is None or node.type != "string" or node.child_count < 2:
            return None
        first, last = node.children[0], node.children[-1]
        if first.type != "string_start" or last.type != "string_end" or last.is_missing:
            return None
        if any(c.type == "interpolation" for c in node.children):
            return None
        opener = self.text(first)
        quote = opener.lstrip("rRbBuUfFtT")
        prefix = opener[: len(opener) - len(quote)].lower()
        if "b" in prefix or "t" in prefix:
            return None
        start, end = first.end_byte + self.base, last.start_byte + self.base
        try:
            raw = self.data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            return None  # not the text the file declares: no name can be read from it
        if "f" in prefix:
            value = raw.replace("{{", "{").replace("}}", "}")
            return StringLiteral(value, start, value == raw and "\\" not in raw, quote)
        if "r" in prefix or "\\" not in raw:
            return StringLiteral(raw, start, True, quote)
        value = _evaluate(self.text(node))
        return None if value is None else StringLiteral(value, start, False, quote)

    # -- chains -----------------------------------------------------------------

    def chain_calls(self, path: list[Node], statements: list[int], done: set[int]) -> list[Call]:
        """The calls of the chain whose method name the path ends on: its own and those of any
        `.table(` / `.from_(` / `.rpc(` further up the same chain, whose names go into `done`."""
        if len(path) < 3 or path[-1].type != "identifier":
            return []
        method, call = path[-2], path[-3]
        if method.type != "attribute" or method.child_by_field_name("attribute") != path[-1]:
            return []
        if call.type != "call" or call.child_by_field_name("function") != method:
            return []
        links, top = self._chain_up(path, len(path) - 3)
        chain = [_Link(self.text(path[-1]), call, _arguments(call), method), *links]
        statement = path[statements[top]]
        out: list[Call] = []
        # from the top down, what lies above each link is known when it is reached: linear in the chain
        executes = postgrest = False
        operation: _Link | None = None
        upper = len(chain)  # columns of a call stop at the next query call above it
        for i in range(len(chain) - 1, -1, -1):
            link = chain[i]
            if link.method is not None and link.name in ("table", "from_", "rpc"):
                done.add(self.span(link.method.child_by_field_name("attribute")).start)  # type: ignore[arg-type]
                built = self._call(link, _Above(chain[i + 1 : upper], executes, postgrest, operation), path[top], statement)
                if built is not None:
                    out.append(built)
                upper = i
            executes = executes or link.name == "execute"
            postgrest = postgrest or self._evidence(link)
            if link.name in OPERATIONS:
                operation = link
        return out

    def _chain_up(self, path: list[Node], index: int) -> tuple[list[_Link], int]:
        """The links chained onto path[index], and the path index of the chain's top; parentheses
        around a part of the chain are looked through, as LibCST keeps them on the node."""
        links: list[_Link] = []
        top = current = index
        while True:
            up = current - 1
            while up >= 0 and path[up].type == "parenthesized_expression":
                up -= 1
            if up < 0 or path[up].type != "attribute" or path[up].child_by_field_name("object") != path[up + 1]:
                return links, top
            attribute = path[up]
            name = self.text(attribute.child_by_field_name("attribute"))  # type: ignore[arg-type]
            grand = path[up - 1] if up >= 1 else None
            if grand is not None and grand.type == "call" and grand.child_by_field_name("function") == attribute:
                links.append(_Link(name, grand, _arguments(grand), attribute))
                current = up - 1
            else:
                links.append(_Link(name, attribute, (), None))  # a property such as `.not_`
                current = up
            top = current

    def _evidence(self, link: _Link) -> bool:
        first = _value(link.args[0]) if link.args else None
        shaped = first is not None and (self.string(first) is not None or first.type == "dictionary")
        return chain_evidence([(link.name, shaped)], postgrest=POSTGREST, ambiguous=AMBIGUOUS)

    # -- building calls --------------------------------------------------------

    def _call(self, link: _Link, above: _Above, top: Node, statement: Node) -> Call | None:
        """python.py's call_at, on tree-sitter nodes: the same evidence, the same refusals."""
        method = link.method
        assert method is not None
        receiver = method.child_by_field_name("object")
        assert receiver is not None
        storage = receiver.type == "attribute" and self._attr_name(receiver) == "storage"
        if link.name == "from_" and storage:
            return self._named(Kind.STORAGE, link, receiver.child_by_field_name("object"), top, statement)  # type: ignore[arg-type]
        schema, client = self._schema_of(receiver)
        evidence = schema is not None or (above.executes and above.postgrest)
        client_code = self.text(client, _READ_LIMIT)
        likely = "supabase" in client_code.lower() or (above.postgrest and CLIENTISH.search(client_code) is not None)
        if not evidence and not likely:
            return None
        if receiver.type == "identifier" and self.text(receiver)[:1].isupper() and not evidence:
            return None  # a class: pypika's Query.from_, rich's Table...
        positional = [a for a in link.args if a.type not in _NOT_POSITIONAL]
        if not positional:
            return None
        if link.name == "rpc":
            return self._named(Kind.RPC, link, client, top, statement, schema=schema)
        if len(link.args) != 1 or len(positional) != 1:
            return None
        return self._table(link, client, schema, positional[0], above, top, statement, evidence)

    def _attr_name(self, attribute: Node) -> str:
        return self.text(attribute.child_by_field_name("attribute"))  # type: ignore[arg-type]

    def _schema_of(self, receiver: Node) -> tuple[str | None, Node]:
        function = receiver.child_by_field_name("function") if receiver.type == "call" else None
        if function is None or function.type != "attribute" or self._attr_name(function) != "schema":
            return None, receiver
        args = _arguments(receiver)
        lit = self.string(_value(args[0])) if args else None
        return (lit.value if lit is not None and lit.value else UNKNOWN_SCHEMA), function.child_by_field_name("object")  # type: ignore[return-value]

    def _base(self, kind: Kind, link: _Link, top: Node, client: Node, statement: Node) -> dict:  # type: ignore[type-arg]
        top_span = self.span(top)
        start = self.src.position(self.span(link.method.child_by_field_name("attribute")).start)  # type: ignore[union-attr, arg-type]
        first = self.src.line(top_span.start)
        above = self.src.line(self.span(statement).start) - 1
        return {
            "file": self.path,
            "language": "python",
            "kind": kind,
            "span": top_span,
            "start": start,
            "end": self.src.position(top_span.end),
            "client": " ".join(self.text(client, _READ_LIMIT).split()),
            "code": self.src.line_text(start.line).strip(),
            "chain": self._fold(top_span),
            "suppression": self.src.suppression(
                tuple(dict.fromkeys((start.line, first))), tuple(dict.fromkeys((start.line - 1, first - 1, above)))
            ),
            "in_error_region": True,
        }

    def _fold(self, span: Span) -> str:
        """fold() of a chain, reading only as much of it as the 240 characters it keeps need: a chain
        nested in the arguments of another must not cost the length of the outer one again."""
        size = 1024
        while True:
            head = self.src.text(Span(span.start, min(span.end, span.start + size)))
            # cutting the text changes only the end of its fold: past 240 characters, fold(head) is fold(all)
            if span.start + size >= span.end or len(fold(head, limit=len(head) + 1)) > 240:
                return fold(head)
            size *= 4

    def _named(self, kind: Kind, link: _Link, client: Node, top: Node, statement: Node, *, schema: str | None = None) -> Call | None:
        args = [a for a in link.args if a.type not in _NOT_POSITIONAL]
        if not args:
            return None
        resolved = self._table_arg(args[0])
        what = "bucket" if kind is Kind.STORAGE else "function"
        notes = () if resolved.certain else tuple(f"{what}: {r}" for r in resolved.reasons)
        return Call(**self._base(kind, link, top, client, statement), schema=schema, name=resolved.name, notes=notes)

    def _table(self, link: _Link, client: Node, schema: str | None, arg: Node, above: _Above, top: Node, statement: Node, evidence: bool) -> Call:  # fmt: skip
        table = self._table_arg(arg)
        table, schema = schema_qualified(table, schema)
        found = col.Found()
        for other in above.links:
            self._columns(other, found)
        operation = above.operation
        return table_call(
            self._base(Kind.TABLE, link, top, client, statement),
            found,
            schema=schema,
            table=table,
            operation=None if operation is None else Operation(operation.name),
            operation_span=None if operation is None else self.span(operation.node),
            evidence=evidence,
            continued=False,
            escaped=None,
        )

    def _table_arg(self, arg: Node) -> TableArg:
        lit = self.string(arg)
        if lit is not None:
            return TableArg(lit.value, TableSource.LITERAL, span=lit.content_span)
        code = _short(self.text(arg, _READ_LIMIT))
        if arg.type == "identifier":
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"`{code}` is not resolved: the file does not parse",))
        return TableArg(None, TableSource.DYNAMIC, reasons=(f"expression `{code}`",))

    # -- columns: the literal ones, as python.py reads them ---------------------------

    def _columns(self, link: _Link, found: col.Found) -> None:
        positional = [a for a in link.args if a.type not in _NOT_POSITIONAL]
        keywords = {self.text(a.child_by_field_name("name")): a.child_by_field_name("value") for a in link.args if a.type == "keyword_argument"}  # type: ignore[arg-type]
        link_columns(self, link.name, positional, keywords, found, at=self.src.position(self.span(link.node).start))

    def scalar(self, node: Node | None) -> str | None:
        """A str, number, bool or None literal as supabase-py writes it into a request, else None."""
        if node is None:
            return None
        if node.type in ("true", "false", "none"):
            return {"true": "true", "false": "false", "none": "null"}[node.type]
        if node.type in ("integer", "float"):
            return self.text(node, 100).replace("_", "")
        if node.type == "unary_operator" and self.text(node, 100).startswith("-") and node.named_children and node.named_children[0].type in ("integer", "float"):
            return "-" + self.text(node.named_children[0], 100).replace("_", "")
        lit = self.string(node)
        return lit.value if lit is not None else None

    def code(self, node: Node) -> str:
        return _short(self.text(node, _READ_LIMIT))

    def _payload(self, payload: Node, found: col.Found, op: str) -> None:
        if payload.type == "dictionary":
            self._keys(payload, found, Role.WRITE, op, found.write, record=True)
        elif payload.type in ("list", "tuple"):
            for element in payload.named_children:
                if element.type == "list_splat":
                    found.opaque.append(self._opaque(Role.WRITE, f"{op} payload unpacks `{_short(self.text(element, _READ_LIMIT))}`", element))
                elif element.type != "comment":
                    self._payload(element, found, op)
        else:
            what = "a variable" if payload.type == "identifier" else "an expression"
            found.opaque.append(self._opaque(Role.WRITE, f"{op} payload is {what}: `{_short(self.text(payload, _READ_LIMIT))}`", payload))

    def _keys(self, obj: Node, found: col.Found, role: Role, op: str, into: list, *, record: bool) -> None:  # type: ignore[type-arg]
        if obj.type != "dictionary":
            found.opaque.append(self._opaque(role, f"{op} argument is not a dict literal: `{_short(self.text(obj, _READ_LIMIT))}`", obj))
            return
        if record:
            found.payload_objects.append(self.span(obj))
        for element in obj.named_children:
            if element.type == "dictionary_splat":
                found.opaque.append(self._opaque(role, f"{op} unpacks `{_short(self.text(element, _READ_LIMIT))}`", element))
                continue
            if element.type != "pair":
                continue
            key = element.child_by_field_name("key")
            lit = self.string(key)
            if lit is None:
                found.opaque.append(self._opaque(role, f"{op} has a computed key: `{_short(self.text(key, _READ_LIMIT))}`", key))  # type: ignore[arg-type]
                continue
            value_node = element.child_by_field_name("value")
            value = self.scalar(value_node)
            null = value_node is not None and value_node.type == "none"
            into.append(Column(lit.value, role, op, self.src.position(lit.content_start), lit.content_span, value=None if null and role is Role.WRITE else value, null=null))

    def _opaque(self, role: Role, reason: str, node: Node) -> Opaque:
        return Opaque(role, reason, self.src.position(self.span(node).start))


@dataclass(frozen=True, slots=True)
class _Above:
    """What the chain holds above one query call."""

    links: list[_Link]  # up to the next query call: the links whose columns are this call's
    executes: bool
    postgrest: bool
    operation: _Link | None  # the first select / insert / update / upsert / delete


_NOT_POSITIONAL = frozenset({"keyword_argument", "list_splat", "dictionary_splat", "comment"})


def _arguments(call: Node) -> tuple[Node, ...]:
    args = call.child_by_field_name("arguments")
    if args is None:
        return ()
    if args.type == "generator_expression":
        return (args,)
    return tuple(a for a in args.named_children if a.type != "comment")


def _value(arg: Node) -> Node | None:
    """The value an argument passes: `x` of `k=x`, of `*x` and of `x`."""
    if arg.type == "keyword_argument":
        return arg.child_by_field_name("value")
    if arg.type in ("list_splat", "dictionary_splat"):
        return arg.named_children[0] if arg.named_children else None
    return arg


def _evaluate(literal: str) -> str | None:
    """The value of a string literal with escapes; None when it is not one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # `"\d"` is an invalid escape, but still a string
            value = ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _short(code: str, limit: int = 60) -> str:
    code = " ".join(code.split())
    return code if len(code) <= limit else code[: limit - 1] + "…"
