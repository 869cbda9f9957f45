"""Python (supabase-py): source bytes -> Supabase query Calls, found with LibCST and its byte spans."""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import libcst as cst
from libcst.metadata import (
    ByteSpanPositionProvider,
    MetadataWrapper,
    ParentNodeProvider,
)

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
from tableshift.scan.py_columns import COLUMN_FILTERS, link_columns
from tableshift.scan.shared import (
    CLIENTISH,
    UNKNOWN_SCHEMA,
    chain_evidence,
    fold,
    schema_qualified,
    table_call,
)
from tableshift.scan.source import BOM, SourceText, StringLiteral

OPERATIONS = frozenset(op.value for op in Operation)
# COLUMN_FILTERS: filters whose first argument is a column name (scan/py_columns.py)
MODIFIERS = frozenset(
    {"limit", "range", "single", "maybe_single", "execute", "csv", "explain", "match", "or_", "not_", "offset", "count"}
)  # fmt: skip
POSTGREST = OPERATIONS | COLUMN_FILTERS | MODIFIERS
AMBIGUOUS = frozenset({"filter", "match", "contains", "range", "count", "limit", "offset", "order"})
_T = TypeVar("_T")
_ENV = ("os.environ", "os.getenv", "environ.get", "getenv", "settings.", "config.")


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    node: cst.CSTNode  # the Call, or the Attribute of a property link (`.not_`)
    args: Sequence[cst.Arg]


def scan(data: bytes, *, path: str) -> tuple[list[Call], bool]:
    """All query calls in one file, and whether LibCST could not parse it: then tree-sitter found
    the calls, every one flagged for review."""
    from tableshift.scan import python_fallback as fallback

    if not fallback.beyond_libcst(data):
        try:
            return _with_deep_stack(_scan, data, path), False
        except (cst.ParserSyntaxError, UnicodeDecodeError, LookupError, SyntaxError, RecursionError):
            pass
    return fallback.scan(data, path=path), True


def error_count(data: bytes) -> int:
    """0 when LibCST parses the file; otherwise 1 and tree-sitter's error nodes, so that breaking a
    broken file further still counts as worse."""
    from tableshift.scan import python_fallback as fallback

    if not fallback.beyond_libcst(data):
        try:
            _with_deep_stack(cst.parse_module, data)
            return 0
        except Exception:  # noqa: BLE001 - any failure to parse is what is being counted
            pass
    return 1 + fallback.syntax_errors(data)


def _scan(data: bytes, path: str) -> list[Call]:
    module = cst.parse_module(data)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    ctx = _FileScan(path, data, module, wrapper)
    wrapper.visit(ctx.collector)
    calls = [c for c in (ctx.call_at(node) for node in ctx.collector.candidates) if c is not None]
    calls.sort(key=lambda c: c.span.start)
    return calls


# LibCST recurses natively and in Python, once or more per level of nesting: python_fallback keeps
# files deeper than ~1 MiB of its stack away from it, and LibCST runs on a 256 MiB stack anyway, so
# that a misjudged file costs a RecursionError (a fallback scan), never the process. The memory is
# only reserved: pages are used as deep as a parse goes.
_STACK_SIZE = 256 << 20
_RECURSION_LIMIT = 100_000  # LibCST's visitors take a few Python frames a level: far more than MAX_DEPTH lets through


class _DeepStack:
    """One thread with that stack, kept for the life of the process: LibCST compiles its
    tokenizer's regular expressions once per thread, which a thread per file would pay each time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # one parse at a time: the recursion limit is process-wide
        self.jobs: queue.SimpleQueue[tuple[Callable[[], object], queue.SimpleQueue[tuple[bool, object]]]] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.unavailable = False

    def run(self, fn: Callable[..., _T], *args: object) -> _T:
        with self.lock:
            if self.thread is None and not self.unavailable:
                self.thread = self._start()
                self.unavailable = self.thread is None
            if self.thread is None:
                return fn(*args)  # no such thread to be had here: python_fallback's limits alone keep LibCST safe
            done: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
            try:
                self.jobs.put((lambda: fn(*args), done))
                ok, value = done.get()
            finally:
                sys.setrecursionlimit(limit)
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    def _start(self) -> threading.Thread | None:
        try:
            previous = threading.stack_size(_STACK_SIZE)
        except (ValueError, RuntimeError):
            return None
        try:
            thread = threading.Thread(target=self._serve, name="tableshift-libcst", daemon=True)
            thread.start()
        except RuntimeError:
            return None
        finally:
            threading.stack_size(previous)
        return thread

    def _serve(self) -> None:
        while True:
            job, done = self.jobs.get()
            try:
                done.put((True, job()))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
                done.put((False, exc))


def _fresh_deep_stack() -> None:
    global _DEEP
    _DEEP = _DeepStack()


_DEEP = _DeepStack()
if hasattr(os, "register_at_fork"):
    # a forked worker process has no copy of the thread: it starts its own
    os.register_at_fork(after_in_child=_fresh_deep_stack)


def _with_deep_stack(fn: Callable[..., _T], *args: object) -> _T:
    return _DEEP.run(fn, *args)


class _Collector(cst.CSTVisitor):
    """One pass: candidate calls, module constants, class attributes, and every call for call sites."""

    def __init__(self) -> None:
        self.candidates: list[cst.Call] = []
        self.calls: dict[str, list[cst.Call]] = {}  # by the name called: `f(...)` and `x.f(...)` under "f"
        self.module_assigns: dict[str, list[cst.BaseExpression]] = {}
        self.class_attrs: dict[str, list[tuple[str, cst.BaseExpression]]] = {}  # attr -> (class, value)
        self._classes: list[str] = []
        self.bases: dict[str, list[str]] = {}  # class -> the names of its bases defined anywhere
        self.method_calls: dict[str, list[cst.Call]] = {}  # `q.eq(...)`, by the variable's name
        self.assigns: dict[str, list[cst.Assign]] = {}
        self.escapes: dict[str, list[cst.Name]] = {}  # a variable passed as an argument or returned
        self.imports: dict[str, tuple[str, str]] = {}  # local name -> (module, imported name or '*')
        self.enums: dict[str, dict[str, cst.BaseExpression]] = {}  # module-level class -> its constant members
        # names bound other than by `=`: loop, except, with, walrus, comprehension and augmented
        # targets, `global` declarations, nested defs (the binding node, to find its scope)
        self.rebinds: dict[str, list[cst.CSTNode]] = {}
        self._depth = 0  # function nesting

    def _rebind(self, target: cst.CSTNode | None, at: cst.CSTNode) -> None:
        pending = [target]
        while pending:
            node = pending.pop()
            if isinstance(node, cst.Name):
                self.rebinds.setdefault(node.value, []).append(at)
            elif isinstance(node, cst.Tuple | cst.List):
                pending.extend(e.value for e in node.elements)
            elif isinstance(node, cst.StarredElement):
                pending.append(node.value)

    def visit_For(self, node: cst.For) -> None:
        self._rebind(node.target, node)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._rebind(node.target, node)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self._rebind(node.name.name, node)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._rebind(node.asname.name, node)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._rebind(node.target, node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._rebind(node.target, node)

    def visit_Global(self, node: cst.Global) -> None:
        for item in node.names:
            self._rebind(item.name, node)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if self._depth or self._classes or isinstance(node.names, cst.ImportStar) or node.module is None and not node.relative:
            return
        module = "." * len(node.relative) + (_name(node.module) if node.module is not None else "")
        for alias in node.names:
            imported = _name(alias.name)
            local = _name(alias.asname.name) if alias.asname is not None else imported
            self.imports[local] = (module, imported)

    def visit_Import(self, node: cst.Import) -> None:
        if self._depth or self._classes:
            return
        for alias in node.names:
            if alias.asname is not None:  # `import app.db.tables as t`: t is the module
                self.imports[_name(alias.asname.name)] = (_name(alias.name), "*")
            else:  # `import app.db.tables`: `app.db.tables.X` names it in full
                self.imports[_name(alias.name).split(".")[0]] = (_name(alias.name).split(".")[0], "*")

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if not self._classes and not self._depth:
            self.enums[node.name.value] = _class_constants(node)
        self._classes.append(node.name.value)
        self.bases[node.name.value] = [b.value.value for b in node.bases if isinstance(b.value, cst.Name)]

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._depth += 1

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._depth -= 1

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            self.assigns.setdefault(node.targets[0].target.value, []).append(node)
        for target in node.targets:
            t = target.target
            if isinstance(t, cst.Name) and self._depth == 0:
                if self._classes:
                    self.class_attrs.setdefault(t.value, []).append((self._classes[-1], node.value))
                else:
                    self.module_assigns.setdefault(t.value, []).append(node.value)
            elif isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name) and t.value.value in ("self", "cls"):
                owner = self._classes[-1] if self._classes else ""
                self.class_attrs.setdefault(t.attr.value, []).append((owner, node.value))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None and isinstance(node.target, cst.Name) and self._depth == 0:
            if self._classes:
                self.class_attrs.setdefault(node.target.value, []).append((self._classes[-1], node.value))
            else:
                self.module_assigns.setdefault(node.target.value, []).append(node.value)

    def visit_Arg(self, node: cst.Arg) -> None:
        if isinstance(node.value, cst.Name):
            self.escapes.setdefault(node.value.value, []).append(node.value)

    def visit_Return(self, node: cst.Return) -> None:
        if isinstance(node.value, cst.Name):
            self.escapes.setdefault(node.value.value, []).append(node.value)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        called = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) else None
        if called is not None:
            self.calls.setdefault(called, []).append(node)
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            self.method_calls.setdefault(func.value.value, []).append(node)
        if isinstance(func, cst.Attribute) and func.attr.value in ("table", "from_", "rpc", "on_postgres_changes"):
            self.candidates.append(node)


def _name(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _path(node: cst.BaseExpression) -> list[str] | None:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Attribute):
        base = _path(node.value)
        return None if base is None else [*base, node.attr.value]
    return None


class _FileScan:
    def __init__(self, path: str, data: bytes, module: cst.Module, wrapper: MetadataWrapper) -> None:
        self.path = path
        self.data = data
        self.src = SourceText(data)
        self.module = module
        self.collector = _Collector()
        self.spans = wrapper.resolve(ByteSpanPositionProvider)
        self.parents = wrapper.resolve(ParentNodeProvider)
        self.encoding = module.encoding
        self.bom = len(BOM) if data.startswith(BOM) else 0
        self._text: str | None = None
        self.escaped: dict[int, str] = {}

    # -- positions --------------------------------------------------------

    def _offset(self, utf8_offset: int) -> int:
        """LibCST counts bytes of the text re-encoded as UTF-8 without a BOM; map back to the file's bytes."""
        if self.encoding.replace("_", "-").lower() in ("utf-8", "utf8", "utf-8-sig"):
            return utf8_offset + self.bom
        if self._text is None:
            self._text = self.module.code
        prefix = self._text.encode("utf-8")[:utf8_offset].decode("utf-8", "ignore")
        return len(prefix.encode(self.encoding, "replace"))

    def span(self, node: cst.CSTNode) -> Span:
        sp = self.spans[node]
        start = self._offset(sp.start)
        return Span(start, self._offset(sp.start + sp.length))

    def string(self, node: cst.BaseExpression | None) -> StringLiteral | None:
        """A str literal (any quotes, any prefix but b) or an f-string without placeholders."""
        if isinstance(node, cst.SimpleString):
            if "b" in node.prefix.lower():
                return None
            value = node.evaluated_value
            if not isinstance(value, str):
                return None
            raw = node.raw_value
            mappable = "r" in node.prefix.lower() or "\\" not in raw
            start = self.span(node).start + len(node.prefix) + len(node.quote)
            text = value if not mappable else raw
            return StringLiteral(text, start, mappable and self._offsets_safe(text), node.quote)
        if isinstance(node, cst.FormattedString) and all(isinstance(p, cst.FormattedStringText) for p in node.parts):
            raw = "".join(p.value for p in node.parts)  # type: ignore[union-attr]
            value = raw.replace("{{", "{").replace("}}", "}")
            mappable = value == raw and "\\" not in raw
            start = self.span(node).start + len(node.start)
            return StringLiteral(value, start, mappable and self._offsets_safe(value), node.start[-1])
        return None

    def scalar(self, node: cst.BaseExpression | None) -> str | None:
        """A str, number, bool or None literal as supabase-py writes it into a request
        (`_serialize_filter_value`: True is `true`, None is `null`), else None."""
        if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
            return {"True": "true", "False": "false", "None": "null"}[node.value]
        if isinstance(node, cst.Integer | cst.Float):
            return node.value.replace("_", "")
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus) and isinstance(node.expression, cst.Integer | cst.Float):
            return "-" + node.expression.value.replace("_", "")
        lit = self.string(node)
        return lit.value if lit is not None else None

    def _offsets_safe(self, text: str) -> bool:
        # offsets inside strings are computed from UTF-8 lengths: right for UTF-8 files and ASCII text
        return text.isascii() or self.encoding.replace("_", "-").lower() in ("utf-8", "utf8", "utf-8-sig")

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    # -- detection --------------------------------------------------------

    def call_at(self, node: cst.Call) -> Call | None:
        func = node.func
        assert isinstance(func, cst.Attribute)
        method = func.attr.value
        receiver = func.value
        links, top = self._chain_up(node)
        if method == "on_postgres_changes":
            return self._realtime(node, func, receiver, top)
        storage = isinstance(receiver, cst.Attribute) and receiver.attr.value == "storage"
        if method == "from_" and storage:
            return self._named(Kind.STORAGE, node, func, receiver.value, links, top)  # type: ignore[union-attr]
        schema, client = self._schema_of(receiver)
        continuation = self._continuation(top, links)
        # supabase-py queries run through `.execute()`: without it, `.table(` is as likely TinyDB,
        # PySpark or pypika, so only a receiver named for Supabase still counts
        executes = any(link.name == "execute" for link in (*links, *continuation))
        postgrest = self._chain_evidence([*links, *continuation])
        evidence = schema is not None or (executes and postgrest)
        client_code = _name(client)
        likely = "supabase" in client_code.lower() or (postgrest and CLIENTISH.search(client_code) is not None)
        if not evidence and not likely:
            return None
        if isinstance(receiver, cst.Name) and receiver.value[:1].isupper() and not evidence:
            return None  # a class: pypika's Query.from_, rich's Table...
        positional = [a for a in node.args if a.keyword is None and not a.star]
        if not positional:
            return None
        if method == "rpc":
            return self._named(Kind.RPC, node, func, client, links, top, schema=schema)
        if len(node.args) != 1 or len(positional) != 1:
            return None
        return self._table(node, func, client, schema, positional[0].value, links, top, evidence, continuation)

    def _realtime(self, node: cst.Call, func: cst.Attribute, receiver: cst.BaseExpression, top: cst.CSTNode) -> Call | None:
        """`channel.on_postgres_changes("INSERT", schema="public", table="t", callback=cb)`."""
        keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        event_node = keywords.get("event", positional[0] if positional else None)
        event = self.string(event_node) if event_node is not None else None
        if "table" in keywords:
            table = self.table_arg(keywords["table"], node)
        else:
            table = TableArg(None, TableSource.DYNAMIC, reasons=("subscription names no table: every table in the schema",))
        schema_lit = self.string(keywords.get("schema"))
        schema = schema_lit.value if schema_lit is not None else None
        found = col.Found()
        filter_lit = self.string(keywords.get("filter"))
        if filter_lit is not None:
            col.add_realtime_filter(found, filter_lit, self.src)
        notes = list(found.notes)
        if "filter" in keywords and filter_lit is None:
            notes.append("realtime filter is not a literal")
        return Call(
            **self._base(Kind.REALTIME, func, top, receiver),
            schema=None if schema == "public" else schema,
            table=table,
            event=event.value if event is not None else None,
            columns=found.freeze(),
            notes=tuple(notes),
        )

    def _schema_of(self, receiver: cst.BaseExpression) -> tuple[str | None, cst.BaseExpression]:
        if isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute) and receiver.func.attr.value == "schema":
            resolved = self.table_arg(receiver.args[0].value, receiver) if receiver.args else None
            name = resolved.name if resolved is not None and resolved.certain else None
            return (name or UNKNOWN_SCHEMA), receiver.func.value
        return None, receiver

    def _chain_evidence(self, links: list[Link]) -> bool:
        return chain_evidence(
            ((link.name, bool(link.args) and (self.string(link.args[0].value) is not None or isinstance(link.args[0].value, cst.Dict))) for link in links),
            postgrest=POSTGREST,
            ambiguous=AMBIGUOUS,
        )

    def _chain_up(self, node: cst.CSTNode) -> tuple[list[Link], cst.CSTNode]:
        links: list[Link] = []
        cur = node
        while True:
            parent = self.parent(cur)
            if not isinstance(parent, cst.Attribute) or parent.value is not cur:
                break
            grand = self.parent(parent)
            if isinstance(grand, cst.Call) and grand.func is parent:
                links.append(Link(parent.attr.value, grand, grand.args))
                cur = grand
            else:
                links.append(Link(parent.attr.value, parent, ()))  # a property such as `.not_`
                cur = parent
        return links, cur

    # -- building calls ---------------------------------------------------

    def _base(self, kind: Kind, method: cst.Attribute, top: cst.CSTNode, client: cst.BaseExpression) -> dict:
        top_span = self.span(top)
        start = self.src.position(self.span(method.attr).start)
        first = self.src.line(top_span.start)
        return {
            "file": self.path,
            "language": "python",
            "kind": kind,
            "span": top_span,
            "start": start,
            "end": self.src.position(top_span.end),
            "client": " ".join(_name(client).split()),
            "code": self.src.line_text(start.line).strip(),
            "chain": fold(self.src.text(top_span)),
            "suppression": self.src.suppression(
                tuple(dict.fromkeys((start.line, first))),
                tuple(dict.fromkeys((start.line - 1, first - 1, self._statement_line(top) - 1))),
            ),
        }

    def _statement_line(self, node: cst.CSTNode) -> int:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, cst.SimpleStatementLine | cst.BaseCompoundStatement):
            current = self.parent(current)
        return self.src.line(self.span(current if current is not None else node).start)

    def _named(self, kind, node, func, client, links, top, *, schema=None) -> Call | None:  # type: ignore[no-untyped-def]
        args = [a for a in node.args if a.keyword is None and not a.star]
        if not args:
            return None
        resolved = self.table_arg(args[0].value, node)
        notes = () if resolved.certain else tuple(f"{'bucket' if kind is Kind.STORAGE else 'function'}: {r}" for r in resolved.reasons)
        return Call(**self._base(kind, func, top, client), schema=schema, name=resolved.name, notes=notes)

    def _table(self, node, func, client, schema, arg, links, top, evidence, continuation) -> Call:  # type: ignore[no-untyped-def]
        table = self.table_arg(arg, node)
        table, schema = schema_qualified(table, schema)
        found = col.Found()
        operation, operation_span = col.first_operation((link.name, self.span(link.node)) for link in links)
        for link in [*links, *continuation]:
            self._columns(link, found)
        return table_call(
            self._base(Kind.TABLE, func, top, client),
            found,
            schema=schema,
            table=table,
            operation=operation,
            operation_span=operation_span,
            evidence=evidence,
            continued=bool(continuation) and not links,
            escaped=self.escaped.get(id(top)),
        )

    def _continuation(self, top: cst.CSTNode, links: list[Link]) -> list[Link]:
        """Method calls on the variable a builder was stored in (`q = q.eq(...)`), up to its next new value."""
        if any(link.name == "execute" for link in links):
            return []  # the variable holds a response, not a builder
        holder = self.parent(top)
        if not isinstance(holder, cst.Assign) or len(holder.targets) != 1 or not isinstance(holder.targets[0].target, cst.Name):
            return []
        name = holder.targets[0].target.value
        scope = self._scope(holder)
        end = self.span(top).end
        resets = [
            self.span(a.value).start
            for a in self.collector.assigns.get(name, [])
            if _chain_base(a.value) != name and self.span(a.value).start > end
        ]
        boundary = min(resets, default=None)
        for escape in self.collector.escapes.get(name, []):
            start = self.span(escape).start
            if start > end and (boundary is None or start < boundary) and self._scope(escape) is scope:
                self.escaped[id(top)] = f"the query builder `{name}` is passed on or returned: what is chained onto it there is not visible"
                break
        links: list[Link] = []
        for call in self.collector.method_calls.get(name, []):
            start = self.span(call).start
            if start < end or (boundary is not None and start >= boundary) or self._scope(call) is not scope:
                continue
            func = call.func
            assert isinstance(func, cst.Attribute)
            links.append(Link(func.attr.value, call, call.args))
            more, _ = self._chain_up(call)
            links.extend(more)
        return links

    def _scope(self, node: cst.CSTNode) -> cst.CSTNode | None:
        current = self.parent(node)
        while current is not None and not isinstance(current, cst.FunctionDef | cst.Module):
            current = self.parent(current)
        return current

    # -- table names ------------------------------------------------------

    def table_arg(self, arg: cst.BaseExpression, at: cst.CSTNode, depth: int = 0) -> TableArg:
        lit = self.string(arg)
        if lit is not None:
            return TableArg(lit.value, TableSource.LITERAL, span=lit.content_span)
        code = " ".join(_name(arg).split())
        if depth > 3:
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"expression `{code}`",))
        if isinstance(arg, cst.Name):
            return self._name_arg(arg.value, at, depth)
        if isinstance(arg, cst.Attribute) and isinstance(arg.value, cst.Name) and arg.value.value in ("self", "cls"):
            return self._class_attr(arg.attr.value, code, depth, at)
        path = _path(arg)
        if path is not None and len(path) > 1:
            member = self._member(path, at)
            if member is not None:
                return member
        if isinstance(arg, cst.Call) or isinstance(arg, cst.BooleanOperation):
            return self._fallback(arg, code, at, depth)
        if isinstance(arg, cst.FormattedString):
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"f-string with placeholders `{code}`",))
        return TableArg(None, TableSource.DYNAMIC, reasons=(f"expression `{code}`",))

    def _rebound(self, name: str, at: cst.CSTNode) -> bool:
        """Whether `name`, where `at` reads it, may be bound by a loop, except, with, walrus,
        comprehension or augmented assignment, or a function's `global` (which rebinds the module's)."""
        scope = self._scope(at)
        for node in self.collector.rebinds.get(name, ()):
            if isinstance(node, cst.Global) or isinstance(self._scope(node), cst.Module) or self._scope(node) is scope:
                if isinstance(node, cst.CompFor) and not self._inside(at, node):
                    continue  # a comprehension's variable is its own
                return True
        return False

    def _inside(self, node: cst.CSTNode, comp: cst.CompFor) -> bool:
        current = self.parent(node)
        holder = self.parent(comp)
        while current is not None:
            if current is holder:
                return True
            current = self.parent(current)
        return False

    def _name_arg(self, name: str, at: cst.CSTNode, depth: int) -> TableArg:
        fn = self._param_owner(name, at)
        if fn is not None:
            return self._parameter(name, fn, depth)
        if self._rebound(name, at):
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"`{name}` is bound again by a loop, except, with, := or global",))
        scope = self._scope(at)
        if not isinstance(scope, cst.Module):
            local = [a.value for a in self.collector.assigns.get(name, []) if self._scope(a) is scope]
            if local:
                literals = [self.string(v) for v in local]
                return TableArg(
                    None,
                    TableSource.DYNAMIC,
                    candidates=tuple(dict.fromkeys(lit.value for lit in literals if lit is not None)),
                    reasons=(f"`{name}` is a local variable",),
                )
        values = self.collector.module_assigns.get(name, [])
        if len(values) == 1:
            inner = self.table_arg(values[0], at, depth + 1)
            if inner.certain:
                return TableArg(inner.name, TableSource.CONSTANT)
            return TableArg(None, TableSource.DYNAMIC, candidates=inner.candidates, reasons=inner.reasons)
        if len(values) > 1:
            cands = [self.string(v) for v in values]
            return TableArg(
                None,
                TableSource.DYNAMIC,
                candidates=tuple(dict.fromkeys(c.value for c in cands if c)),
                reasons=(f"`{name}` is assigned more than once",),
            )
        if name in self.collector.imports:
            return self._imported([name])
        return TableArg(None, TableSource.DYNAMIC, reasons=(f"`{name}` is local or global: not a module constant of this file",))

    def _imported(self, path: list[str]) -> TableArg:
        """A name bound by an import: left for the link pass, which reads the other module."""
        module, imported = self.collector.imports[path[0]]
        rest = path[1:]
        if imported == "*" and "." not in module and module == path[0]:
            # `import app.db.tables` then `app.db.tables.X`: the longest module prefix is the module
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"`{'.'.join(path)}` is imported",), link=("py:" + ".".join(path[:-1]), "*", path[-1]))
        return TableArg(
            None,
            TableSource.DYNAMIC,
            reasons=(f"`{'.'.join(path)}` is imported from '{module}'",),
            link=("py:" + module, imported, *rest),
        )

    def _member(self, path: list[str], at: cst.CSTNode) -> TableArg | None:
        """`Tables.QUEUE` (a same-file Enum or class constant, `.value` allowed) or `t.QUEUE` (imported)."""
        if self._param_owner(path[0], at) is not None:
            return None
        if path[0] in self.collector.enums:
            members = self.collector.enums[path[0]]
            key = path[1] if len(path) == 2 or (len(path) == 3 and path[2] == "value") else None
            lit = self.string(members.get(key)) if key is not None and key in members else None
            if lit is not None:
                return TableArg(lit.value, TableSource.CONSTANT)
            return None
        if path[0] in self.collector.imports and path[0] not in self.collector.module_assigns:
            return self._imported(path)
        return None

    def _lineage(self, name: str) -> list[str]:
        seen: list[str] = []
        todo = [name]
        while todo:
            current = todo.pop(0)
            if current in seen:
                continue
            seen.append(current)
            todo.extend(self.collector.bases.get(current, []))
        return seen

    def _class_attr(self, attr: str, code: str, depth: int, at: cst.CSTNode) -> TableArg:
        assigned = self.collector.class_attrs.get(attr, [])
        owner = self._enclosing_class(at)
        if owner is not None:
            # the value this class sees: its own or its nearest base's, and what subclasses override
            definer = next((c for c in self._lineage(owner) if any(o == c for o, _ in assigned)), None)
            if definer is not None:
                family = {definer} | {c for c in self.collector.bases if c != owner and owner in self._lineage(c)}
                assigned = [(o, v) for o, v in assigned if o in family]
        literals = [(owner, self.string(v)) for owner, v in assigned]
        names = tuple(dict.fromkeys(lit.value for _, lit in literals if lit is not None))
        if len(assigned) == 1 and literals[0][1] is not None:
            return TableArg(literals[0][1].value, TableSource.CONSTANT)
        if not assigned:
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"class attribute `{code}` is not assigned in this file",))
        return TableArg(
            None,
            TableSource.DYNAMIC,
            candidates=names,
            reasons=(f"class attribute `{code}` is assigned in several places (subclasses, methods)",),
        )

    def _enclosing_class(self, node: cst.CSTNode) -> str | None:
        current = self.parent(node)
        while current is not None and not isinstance(current, cst.ClassDef):
            current = self.parent(current)
        return current.name.value if isinstance(current, cst.ClassDef) else None

    def _fallback(self, arg: cst.BaseExpression, code: str, at: cst.CSTNode, depth: int) -> TableArg:
        """`os.environ.get("X", "t")`, `os.getenv("X") or "t"`, `settings.TABLE or "t"`."""
        candidates: list[str] = []
        if isinstance(arg, cst.BooleanOperation):
            for side in (arg.left, arg.right):
                inner = self.table_arg(side, at, depth + 1)
                candidates.extend([inner.name] if inner.certain and inner.name else inner.candidates)
        else:
            for a in arg.args:  # type: ignore[union-attr]
                lit = self.string(a.value)
                if lit is not None and a is not arg.args[0]:  # type: ignore[union-attr]
                    candidates.append(lit.value)
        env = any(marker in code for marker in _ENV)
        lead = f"environment override `{code}`" if env else f"expression `{code}`"
        return TableArg(None, TableSource.DYNAMIC, candidates=tuple(dict.fromkeys(candidates)), reasons=(lead,))

    def _param_owner(self, name: str, at: cst.CSTNode) -> cst.FunctionDef | None:
        node: cst.CSTNode | None = at
        while node is not None:
            if isinstance(node, cst.FunctionDef):
                params = node.params
                every = [*params.posonly_params, *params.params, *params.kwonly_params]
                if any(p.name.value == name for p in every):
                    return node
            node = self.parent(node)
        return None

    def _parameter(self, name: str, fn: cst.FunctionDef, depth: int) -> TableArg:
        params = [*fn.params.posonly_params, *fn.params.params]
        candidates: list[str] = []
        index = None
        for i, p in enumerate(params):
            if p.name.value == name:
                index = i
                lit = self.string(p.default) if p.default is not None else None
                if lit is not None:
                    candidates.append(lit.value)
        for p in fn.params.kwonly_params:
            if p.name.value == name and p.default is not None:
                lit = self.string(p.default)
                if lit is not None:
                    candidates.append(lit.value)
        is_method = index is not None and params and params[0].name.value in ("self", "cls")
        fname = fn.name.value
        given: list[TableArg] = []
        for call in self.collector.calls.get(fname, []):
            callee = call.func
            for a in call.args:
                if a.keyword is not None and a.keyword.value == name:
                    given.append(self.table_arg(a.value, call, depth + 1))
            positional = [a for a in call.args if a.keyword is None and not a.star]
            if index is not None:
                at = index - 1 if is_method and isinstance(callee, cst.Attribute) else index
                if 0 <= at < len(positional):
                    given.append(self.table_arg(positional[at].value, call, depth + 1))
        candidates += [n for arg in given for n in ((arg.name,) if arg.certain and arg.name else arg.candidates)]
        links = [link for arg in given for link in ((arg.link,) if arg.link else ()) + arg.candidate_links]
        # a module-level function other modules can import: its callers there are found by the link pass
        importable = index is not None and not is_method and isinstance(self.parent(fn), cst.Module)
        return TableArg(
            None,
            TableSource.DYNAMIC,
            candidates=tuple(dict.fromkeys(candidates)),
            reasons=(f"parameter `{name}` of `{fname}`",),
            candidate_links=tuple(dict.fromkeys(links)),
            parameter=(fname, index) if importable and index is not None else None,
            exported_as=(fname,) if importable else (),
        )

    # -- columns ----------------------------------------------------------

    def _columns(self, link: Link, found: col.Found) -> None:
        positional = [a.value for a in link.args if a.keyword is None and not a.star]
        keywords = {a.keyword.value: a.value for a in link.args if a.keyword is not None}
        link_columns(self, link.name, positional, keywords, found, at=self.src.position(self.span(link.node).start))

    def code(self, node: cst.CSTNode) -> str:
        return _name(node)

    def _payload(self, payload: cst.BaseExpression, found: col.Found, op: str) -> None:
        if isinstance(payload, cst.Dict):
            self._keys(payload, found, Role.WRITE, op, found.write, record=True)
        elif isinstance(payload, cst.List | cst.Tuple):
            for element in payload.elements:
                if isinstance(element, cst.StarredElement):
                    found.opaque.append(self._opaque(Role.WRITE, f"{op} payload unpacks `{_name(element)}`", element))
                else:
                    self._payload(element.value, found, op)
        else:
            what = "a variable" if isinstance(payload, cst.Name) else "an expression"
            found.opaque.append(self._opaque(Role.WRITE, f"{op} payload is {what}: `{_short(payload)}`", payload))

    def _keys(self, obj: cst.BaseExpression, found: col.Found, role: Role, op: str, into: list, *, record: bool) -> None:  # type: ignore[type-arg]
        if not isinstance(obj, cst.Dict):
            found.opaque.append(self._opaque(role, f"{op} argument is not a dict literal: `{_short(obj)}`", obj))
            return
        if record:
            found.payload_objects.append(self.span(obj))
        for element in obj.elements:
            if isinstance(element, cst.StarredDictElement):
                found.opaque.append(self._opaque(role, f"{op} unpacks `{_short(element)}`", element))
                continue
            lit = self.string(element.key)
            if lit is None:
                found.opaque.append(self._opaque(role, f"{op} has a computed key: `{_short(element.key)}`", element.key))
                continue
            span = lit.content_span
            value = self.scalar(element.value)
            null = value == "null" and isinstance(element.value, cst.Name)
            into.append(Column(lit.value, role, op, self.src.position(lit.content_start), span, value=None if null and role is Role.WRITE else value, null=null))

    def _opaque(self, role: Role, reason: str, node: cst.CSTNode) -> Opaque:
        return Opaque(role, reason, self.src.position(self.span(node).start))


def _class_constants(node: cst.ClassDef) -> dict[str, cst.BaseExpression]:
    """`QUEUE = "content_queue"` in a class body (an Enum, a StrEnum, a constants class): assigned once."""
    out: dict[str, cst.BaseExpression] = {}
    seen: set[str] = set()
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    for line in body:
        if not isinstance(line, cst.SimpleStatementLine):
            continue
        for statement in line.body:
            target = value = None
            if isinstance(statement, cst.Assign) and len(statement.targets) == 1:
                target, value = statement.targets[0].target, statement.value
            elif isinstance(statement, cst.AnnAssign) and statement.value is not None:
                target, value = statement.target, statement.value
            if isinstance(target, cst.Name) and value is not None:
                if target.value in seen:
                    out.pop(target.value, None)
                else:
                    out[target.value] = value
                seen.add(target.value)
    return out


def _chain_base(node: cst.BaseExpression) -> str | None:
    """The variable a method chain starts from: `q` in `q.eq(...).order(...)`."""
    current: cst.BaseExpression = node
    while True:
        if isinstance(current, cst.Name):
            return current.value
        if isinstance(current, cst.Call):
            current = current.func
        elif isinstance(current, cst.Attribute):
            current = current.value
        elif isinstance(current, cst.Await):
            current = current.expression
        else:
            return None


def _short(node: cst.CSTNode, limit: int = 60) -> str:
    code = " ".join(_name(node).split())
    return code if len(code) <= limit else code[: limit - 1] + "…"
