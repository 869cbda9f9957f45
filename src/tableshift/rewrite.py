"""Pure: a verdict and the rules -> byte-span edits for one call, or the reasons it needs a person."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tableshift.model import (
    FastEnum,
    Call,
    Column,
    Edit,
    Embedded,
    Kind,
    Operation,
    Origin,
    Role,
    Span,
    Status,
    TableSource,
    Verdict,
    compact_pickle,
)
from tableshift.rules import RuleSet, Scalar, TableRule
from tableshift.schema import TargetSchema

# Join hints that do not name a constraint: they survive a change of table.
_JOIN_HINTS = frozenset({"inner", "left"})


class Fix(FastEnum):
    """What patch can do with a call."""

    OK = "ok"  # no legacy table involved
    AUTO = "auto"  # every part can be rewritten
    REVIEW = "review"  # legacy, but a person must look
    DYNAMIC = "dynamic"  # the table is not known statically


class Fate(FastEnum):
    KEPT = "kept"
    RENAMED = "renamed"
    MISSING = "missing"  # the target has no such column
    DROPPED = "dropped"  # the rules drop it


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class ColumnFate:
    legacy: str
    column: str
    fate: Fate
    new: str | None = None


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class ConstantEdit:
    """A constant of another module (or an exported one) that names the table: the edit of its literal."""

    file: str  # the defining module, as reports show it
    path: str  # the same, resolved
    span: Span
    text: str  # the target table
    digest: str  # of the module as searched for uses: it is edited only if it is still that

    @property
    def edit(self) -> Edit:
        return Edit(self.span, self.text)


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Plan:
    verdict: Verdict
    fix: Fix
    edits: tuple[Edit, ...] = ()
    reasons: tuple[str, ...] = ()
    fates: tuple[ColumnFate, ...] = ()
    constant: ConstantEdit | None = None  # `auto` through a shared constant: its edit, in its own module
    held: str | None = None  # `review` only because of a shared constant: why (the coverage lists it as left out)

    @property
    def call(self) -> Call:
        return self.verdict.call


def plan(verdict: Verdict, rules: RuleSet, data: bytes) -> Plan:
    """How to rewrite one call; a call is rewritten whole or not at all."""
    if verdict.status is Status.DYNAMIC:
        return Plan(verdict, Fix.DYNAMIC, reasons=verdict.reasons)
    if verdict.status is not Status.LEGACY:
        return Plan(verdict, Fix.OK)
    return _Planner(verdict, rules, data).run()


class _Planner:
    def __init__(self, verdict: Verdict, rules: RuleSet, data: bytes) -> None:
        self.verdict = verdict
        self.call = verdict.call
        self.rules = rules
        self.schema: TargetSchema | None = rules.target_schema
        self.data = data
        self.edits: list[Edit] = []
        self.reasons: list[str] = []
        self.fates: dict[tuple[str, str], ColumnFate] = {}
        self.quote = _quote_style(verdict.call, data)
        self.pending: str | None = None  # the table comes from a shared constant: settled project-wide
        self.appended: dict[Edit, list[str]] = {}  # links added on the operation's line

    def run(self) -> Plan:
        call = self.call
        if call.in_error_region:
            self.reasons.append("call sits in a region with syntax errors")
        self.reasons.extend(call.notes)
        if call.kind is Kind.RPC:  # legacy through the function it calls: the database side, not this call
            self.reasons.extend(self.verdict.reasons)
        self.reasons.extend(o.reason for o in call.columns.opaque)
        rule = self.rules.lookup(call.table.name, call.schema) if call.table and call.table.certain else None
        table_now = call.table.name if call.table else None
        if rule is not None and call.kind is Kind.SQL:
            renames = "; renamed columns: " + ", ".join(f"{old} -> {new}" for old, new in rule.renames) if rule.renames else ""
            where = "; keep its rows with " + " AND ".join(f"{c} = {v!r}" for c, v in rule.where) if rule.where else ""
            self.reasons.append(f"SQL in a string {call.operation.value if call.operation else 'uses'}s {rule.legacy!r}: rewrite it by hand for {rule.target!r}{renames}{where}")
            rule = None
        if rule is not None:
            if call.kind is Kind.TABLE and call.operation is None:
                self.reasons.append(
                    "the query chain continues elsewhere (a variable, a return, a helper): its columns are not visible"
                )
            self._table(rule)
            table_now = table_part(rule.target)
            if call.kind is Kind.TYPE:
                self._row_type(rule)
            for column in (*call.columns.select, *call.columns.filter, *call.columns.write, *call.columns.on_conflict):
                if column.qualifier is None:
                    self._column(column, rule)
            if call.kind is Kind.REALTIME:
                self._realtime_where(rule)
            else:
                self._where(rule)
            self._set(rule)
            self._required(rule)
        for embed in call.columns.embedded:
            self._embed(embed, parent=table_now, parent_moved=rule is not None, path=())
        for column in call.columns.filter:
            if column.qualifier is not None:
                self._qualified(column)
        fix = Fix.REVIEW if self.reasons else Fix.AUTO
        if fix is Fix.AUTO and call.kind is Kind.TABLE and call.language != "python":
            self._break_long_chain()
        # a call whose only obstacle is a shared constant keeps its edits for the project-wide pass
        ready = fix is Fix.AUTO or (self.pending is not None and set(self.reasons) == {self.pending})
        edits = _merged(self.edits) if ready else ()
        return Plan(self.verdict, fix, edits, tuple(dict.fromkeys(self.reasons)), tuple(self.fates.values()))

    def _break_long_chain(self, width: int = 80) -> None:
        """A chain on one line that the rewrite makes longer than a line holds (Prettier's 80
        columns) is laid out as Prettier lays it out: each link on a line of its own, indented one
        step from the statement (`supabase\n  .from(...)\n  .select(...)`). A line that was
        longer already is left as its author wrote it."""
        span = self.call.span
        chain = self.data[span.start : span.end]
        if b"\n" in chain or not self.edits:
            return
        line_start = self.data.rfind(b"\n", 0, span.start) + 1
        line_end = self.data.find(b"\n", span.end)
        line_end = len(self.data) if line_end == -1 else line_end
        on_line = [e for e in self.edits if line_start <= e.span.start <= line_end]
        grown = sum(len(e.text.encode()) - (e.span.end - e.span.start) for e in on_line)
        newline = "\r\n" if self.data[line_end - 1 : line_end] == b"\r" else "\n"  # the file's own line ends
        line = self.data[line_start:line_end].decode("utf-8", "replace").rstrip("\r")
        if len(line) > width or len(line) + grown <= width or any("\n" in e.text for e in on_line):
            return  # a line longer than that already is not Prettier's (at its default width): kept as written
        dots = _top_level_dots(chain)
        head = chain[: dots[0]] if dots else b""
        if not dots or not re.fullmatch(rb"(?:this\.)?[A-Za-z_$][\w$]*", head):
            return  # a head Prettier would lay out otherwise (a call, an index): left as it is
        indent = re.match(r"[ \t]*", line).group(0)  # type: ignore[union-attr]
        step = "\t" if indent.startswith("\t") else "  "
        for dot in dots:
            at = span.start + dot
            self.edits.append(Edit(Span(at, at), f"{newline}{indent}{step}"))
        # links the rewrite appends after the operation go on lines of their own too
        for i, e in enumerate(self.edits):
            if e in self.appended:
                self.edits[i] = Edit(e.span, "".join(f"{newline}{indent}{step}{link}" for link in self.appended[e]))

    # -- pieces -----------------------------------------------------------

    def _table(self, rule: TableRule) -> None:
        table = self.call.table
        assert table is not None
        if table.source is TableSource.CONSTANT and table.origin is not None and self._same_schema(rule.target):
            self.pending = pending(table.origin)
            self.reasons.append(self.pending)
        elif table.source is TableSource.CONSTANT and table.binding is not None and self._same_schema(rule.target):
            # a file-private constant: rewritten only if every use of it is (see `settle_shared`)
            self.edits.append(Edit(table.binding, table_part(rule.target)))
        elif table.source is TableSource.CONSTANT:
            where = table.reasons[0] if table.reasons else "a constant"  # `constant X in file`, from the link pass
            self.reasons.append(f"table name comes from {where}: change the constant (it may serve other calls)")
        elif table.span is None:
            self.reasons.append("table name is a string with escape sequences")
        elif not self._same_schema(rule.target):
            self.reasons.append(f"target {rule.target!r} is in another schema: change `.schema()` by hand")
        else:
            self.edits.append(Edit(table.span, table_part(rule.target)))

    def _row_type(self, rule: TableRule) -> None:
        """A generated type of the legacy table means the same to the code as the target's only
        when the table is renamed and nothing else: renamed or dropped columns, or a merged table's
        discriminator, change the row type the code relies on."""
        changes = []
        if rule.renames:
            changes.append("renames " + ", ".join(f"{old} -> {new}" for old, new in rule.renames))
        if rule.drop:
            changes.append("drops " + ", ".join(sorted(rule.drop)))
        if rule.where or rule.set:
            columns = dict.fromkeys([c for c, _ in (*rule.where, *rule.set)])
            changes.append(f"merges it into {rule.target!r} with {', '.join(columns)}")
        target = self.schema.table(rule.target) if self.schema is not None else None
        if target is not None and target.required and self.call.form in ("TablesInsert", "['Tables'][…]['Insert']"):
            changes.append(f"an insert into {rule.target!r} must give {', '.join(target.required)}")
        if changes:
            self.reasons.append(f"the row type of {rule.legacy!r} changes ({'; '.join(changes)}): the code using this type must follow")

    def _same_schema(self, target: str) -> bool:
        if "." not in target:
            return self.call.schema in (None, "public")
        return target.split(".", 1)[0] == (self.call.schema or "public")

    def _star(self, column: Column, rule: TableRule) -> None:
        """`*` keeps the row shape: renamed columns come back under their old names too."""
        if rule.drop:
            dropped = ", ".join(sorted(rule.drop))
            self.reasons.append(f"select * on {rule.legacy!r}: rows lose the dropped column(s) {dropped}")
            return
        if not rule.renames:
            return
        if column.span is None:
            self.reasons.append(f"select() of every column on {rule.legacy!r}: renamed columns change the row shape")
            return
        sep = "," if self.call.kind is Kind.REST else ", "  # a URL holds no spaces
        aliases = sep.join(f"{old}:{new}" for old, new in rule.renames)
        self.edits.append(Edit(column.span, f"*{sep}{aliases}"))

    def _column(self, column: Column, rule: TableRule) -> None:
        name = column.name
        if name == "*":
            if column.role is Role.SELECT:
                self._star(column, rule)
            return
        if column.aggregate is not None and name == "count":
            return
        key = (rule.legacy, name)
        if name in rule.drop:
            self.fates[key] = ColumnFate(rule.legacy, name, Fate.DROPPED)
            self.reasons.append(f"column {name!r} of {rule.legacy!r} is dropped by the rules: it has no home in {rule.target!r}")
            return
        new = rule.rename(name) or name
        target = self.schema.table(rule.target) if self.schema is not None else None
        if target is not None and new not in target.columns:
            self.fates[key] = ColumnFate(rule.legacy, name, Fate.MISSING, new if new != name else None)
            self.reasons.append(f"column {new!r} is not in target {rule.target!r}" + (f" (renamed from {name!r})" if new != name else ""))
            return
        if new == name:
            self.fates.setdefault(key, ColumnFate(rule.legacy, name, Fate.KEPT))
            return
        self.fates[key] = ColumnFate(rule.legacy, name, Fate.RENAMED, new)
        if column.span is None:
            self.reasons.append(f"column {name!r} sits in a string with escape sequences")
            return
        self.edits.append(Edit(column.span, _renamed(column, new, self.call.language)))

    def _qualified(self, column: Column) -> None:
        """A column of an embedded resource (`referencedTable`, `author.name`): renamed by that table's rules.

        The embed keeps its old name as an alias, so the qualifier itself stays valid.
        """
        qualifier = (column.qualifier or "").split(".")[-1]
        names = {e.alias or e.table: e for e in self.call.columns.all_embedded()}
        embed = names.get(qualifier)
        rule = self.rules.lookup(embed.table, self.call.schema) if embed is not None else None
        if rule is None and embed is None:
            rule = self.rules.lookup(qualifier, self.call.schema)
            if rule is not None:
                self.reasons.append(f"filter on {qualifier!r}, which names no embed of this call: rewrite by hand")
                return
        if rule is not None:
            self._column(column, rule)

    def _embed(self, embed: Embedded, *, parent: str | None, parent_moved: bool, path: tuple[str, ...]) -> None:
        rule = self.rules.lookup(embed.table, self.call.schema)
        path = (*path, embed.alias or embed.table)  # how filters name it: the alias kept by the rewrite
        now = table_part(rule.target) if rule is not None else embed.table
        constraint_hints = [h for h in embed.hints if h not in _JOIN_HINTS]
        if constraint_hints and (rule is not None or parent_moved):
            # a foreign-key name belongs to the old tables; the new ones name theirs differently
            self.reasons.append(f"embed {embed.table!r} names a foreign key of a legacy table: !{constraint_hints[0]}")
        if rule is not None and not constraint_hints:
            if embed.span is None:
                self.reasons.append(f"embed {embed.table!r} sits in a string with escape sequences")
            else:
                target = table_part(rule.target)
                text = target if embed.alias is not None else f"{embed.table}:{target}"
                self.edits.append(Edit(embed.span, text))
        if rule is not None:
            for column in embed.columns:
                self._column(column, rule)
            self._embed_where(rule, ".".join(path))
        if parent is not None and self.schema is not None and (rule is not None or self.rules.lookup(parent) is None):
            if self.schema.table(parent) and self.schema.table(now) and not self.schema.linked(parent, now):
                self.reasons.append(f"no foreign key between {parent!r} and {now!r} in the target schema: the embed would fail")
        for child in embed.embedded:
            self._embed(child, parent=now, parent_moved=rule is not None, path=path)

    def _where(self, rule: TableRule) -> None:
        op = self.call.operation
        if rule.where and self.call.kind is Kind.REST and op not in (Operation.INSERT, Operation.UPSERT):
            self._rest_where(rule)
            return
        if not rule.where or op in (Operation.INSERT, Operation.UPSERT) or self.call.kind is not Kind.TABLE:
            return
        if op is None or self.call.operation_span is None:
            self.reasons.append("where filter cannot be placed: the query chain continues elsewhere")
            return
        # the call naming a `where` column itself would fight the rules' value: a person decides
        own = [c for c in (*self.call.columns.filter, *self.call.columns.write) if c.qualifier is None]
        touched = [col for col, _ in rule.where if any((rule.rename(c.name) or c.name) == col for c in own)]
        if touched:
            self.reasons.append(
                f"the call filters on or writes {touched[0]!r} itself, which the rules' where sets for {rule.target!r}: merge them by hand"
            )
            return
        self._append_links([f".eq({_literal(col, self.quote, self.call.language)}, {_literal(value, self.quote, self.call.language)})" for col, value in rule.where])

    def _append_links(self, links: list[str]) -> None:
        """Links added after the operation, laid out as the chain is: in a chain written one link
        per line, each on a line of its own with the chain's indentation; else on the same line."""
        assert self.call.operation_span is not None
        end = self.call.operation_span.end
        head = self.data[self.call.span.start : end]
        ops = [m for m in re.finditer(rb"(?m)^([ \t]*)\??\.[ \t]*(?:select|insert|update|upsert|delete)\b", head)]
        last_op = [m for m in re.finditer(rb"\.[ \t]*(?:select|insert|update|upsert|delete)\b", head)]
        if ops and last_op and ops[-1].end() == last_op[-1].end():  # the operation starts a line of its own
            indent = ops[-1].group(1).decode("utf-8", "replace")
            newline = "\r\n" if b"\r\n" in head else "\n"
            self.edits.append(Edit(Span(end, end), "".join(f"{newline}{indent}{link}" for link in links)))
        else:
            added = Edit(Span(end, end), "".join(links))
            self.appended[added] = links  # laid out again if the chain is broken over lines
            self.edits.append(added)

    def _rest_where(self, rule: TableRule) -> None:
        """A merged table read over HTTP keeps only its own rows: `&kind=eq.document` at the URL's end."""
        call = self.call
        if call.operation is None:
            self.reasons.append("where filter cannot be placed: the request's method is not visible (the URL is sent elsewhere)")
            return
        if call.operation_span is None:
            self.reasons.append("where filter cannot be placed: the URL ends in an interpolation")
            return
        own = [c for c in call.columns.filter if c.qualifier is None]
        touched = [col for col, _ in rule.where if any((rule.rename(c.name) or c.name) == col for c in own)]
        if touched:
            self.reasons.append(f"the URL filters on {touched[0]!r} itself, which the rules' where sets for {rule.target!r}: merge them by hand")
            return
        from urllib.parse import quote as url_quote

        text = "".join(f"&{col}=eq.{url_quote(str(value).lower() if isinstance(value, bool) else str(value), safe='')}" for col, value in rule.where)
        if "?" not in call.chain:
            text = "?" + text[1:]
        end = call.operation_span.end
        self.edits.append(Edit(Span(end, end), text))

    def _embed_where(self, rule: TableRule, path: str) -> None:
        """A merged table read through an embed keeps only its own rows: a filter on the embed."""
        if not rule.where:
            return
        if self.call.operation is not Operation.SELECT or self.call.operation_span is None:
            self.reasons.append(
                f"embed {path!r} reads merged table {rule.target!r}: its where filter cannot be placed on this call"
            )
            return
        named = {(c.qualifier, rule.rename(c.name) or c.name) for c in self.call.columns.filter}
        touched = [col for col, _ in rule.where if (path, col) in named]
        if touched:
            self.reasons.append(f"the call filters embed {path!r} on {touched[0]!r} itself, which the rules' where sets: merge them by hand")
            return
        quote, lang = self.quote, self.call.language
        self._append_links([f".eq({_literal(f'{path}.{col}', quote, lang)}, {_literal(value, quote, lang)})" for col, value in rule.where])

    def _realtime_where(self, rule: TableRule) -> None:
        """A subscription to a merged table must still hear only its own rows: `filter: 'kind=eq.x'`."""
        if not rule.where:
            return
        table = self.call.table
        if len(rule.where) > 1:
            self.reasons.append(f"realtime takes one filter, and the rules filter {rule.target!r} on {len(rule.where)} columns")
            return
        where = self.call.operation_span or self.call.span  # the options object (not the callback after it)
        options = self.data[where.start : where.end]
        if re.search(rb"(?<![\w$])filter\s*[:,}]|\.\.\.", options):
            # a spread may carry a filter of its own, which an added key would override
            self.reasons.append("subscription has a filter already, and realtime takes one: add the rules' where by hand")
            return
        if self.call.event is None or self.call.event.upper() in ("*", "DELETE"):
            self.reasons.append(
                f"realtime cannot filter DELETE events: a subscription to merged table {rule.target!r} would hear every kind's deletes"
            )
            return
        span = table.span if table is not None and table.source is TableSource.LITERAL else None
        if span is None or self.data[span.end : span.end + 1] not in (b"'", b'"', b"`"):
            self.reasons.append(f"subscription to merged table {rule.target!r} needs a filter, and its table is not a plain string")
            return
        if self.call.language == "python":
            self.reasons.append(f"subscription to merged table {rule.target!r} needs filter=\"{rule.where[0][0]}=eq...\": add it by hand")
            return
        [(column, value)] = rule.where
        shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
        condition = _literal(f"{column}=eq.{shown}", self.quote, self.call.language)
        self.edits.append(Edit(Span(span.end + 1, span.end + 1), f", filter: {condition}"))

    def _set(self, rule: TableRule) -> None:
        if self.call.operation in (Operation.INSERT, Operation.UPSERT):
            self._discriminated(rule)
        if not rule.set or self.call.operation not in (Operation.INSERT, Operation.UPSERT):
            return
        if any(o.role is Role.WRITE for o in self.call.columns.opaque) or not self.call.payload_objects:
            self.reasons.append("set values cannot be placed: the payload is not visible")
            return
        written = {c.name for c in self.call.columns.write}
        clash = [col for col, _ in rule.set if col in written]
        if clash:
            self.reasons.append(f"payload already sets {clash[0]!r}, which the rules set too")
            return
        lang = self.call.language
        pairs = ", ".join(f"{_key(col, self.quote, lang)}: {_literal(v, self.quote, lang)}" for col, v in rule.set)
        for obj in self.call.payload_objects:
            inside = self.data[obj.start + 1 : obj.end - 1]
            first_line = re.match(rb"[ \t]*\r?\n([ \t]*)\S", inside)
            if first_line is not None:  # an object written one key per line: each added key on a line of its own
                indent = first_line.group(1).decode("utf-8", "replace")
                newline = "\r\n" if b"\r\n" in inside else "\n"
                text = "".join(f"{newline}{indent}{_key(col, self.quote, lang)}: {_literal(v, self.quote, lang)}," for col, v in rule.set)
                self.edits.append(Edit(Span(obj.start + 1, obj.start + 1), text))
                continue
            if not inside.strip():
                text = f" {pairs} "
            elif inside[:1].isspace():
                text = f" {pairs},"
            else:
                text = f"{pairs}, "
            self.edits.append(Edit(Span(obj.start + 1, obj.start + 1), text))

    def _discriminated(self, rule: TableRule) -> None:
        """Rows written to a merged table must carry what its reads filter on, or they vanish from them."""
        given = {c for c, _ in rule.set} | {rule.rename(c.name) or c.name for c in self.call.columns.write}
        unset = [c for c, _ in rule.where if c not in given]
        if unset:
            self.reasons.append(
                f"insert into merged table {rule.target!r} does not set {unset[0]!r}, which the rules' where filters on: "
                "add it to [table.set]"
            )

    def _required(self, rule: TableRule) -> None:
        if self.call.operation not in (Operation.INSERT, Operation.UPSERT) or self.schema is None:
            return
        target = self.schema.table(rule.target)
        if target is None or any(o.role is Role.WRITE for o in self.call.columns.opaque):
            return
        given = {rule.rename(c.name) or c.name for c in self.call.columns.write} | {c for c, _ in rule.set}
        missing = [c for c in target.required if c not in given]
        if missing:
            self.reasons.append(f"insert omits NOT NULL column(s) of {rule.target!r} without a default: {', '.join(missing)}")


def _top_level_dots(chain: bytes) -> list[int]:
    """Offsets of the `.` of each link of a chain written on one line (`a.from(x).select('y')`),
    outside strings, templates and brackets: where Prettier breaks it."""
    out: list[int] = []
    depth = 0
    i = 0
    quote: int | None = None
    while i < len(chain):
        ch = chain[i]
        if quote is not None:
            if ch == 0x5C:  # a backslash escapes the next byte
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in (0x27, 0x22, 0x60):
            quote = ch
        elif ch in (0x28, 0x5B, 0x7B):
            depth += 1
        elif ch in (0x29, 0x5D, 0x7D):
            depth -= 1
        elif ch == 0x2E and depth == 0 and i + 1 < len(chain) and (chr(chain[i + 1]).isalpha() or chain[i + 1] in (0x5F, 0x24)):
            out.append(i)
        i += 1
    if chain.startswith(b"this.") and out and out[0] == 4:
        out = out[1:]  # `this.db` is one head
    return out


def pending(origin: Origin) -> str:
    """Why a call whose table comes from a shared constant waits: the project-wide pass settles it."""
    return f"table name comes from {origin.shown()}: other modules may use it too, so it is changed only with all its uses"


def settle_origin(p: Plan, why: str | None, constant: ConstantEdit | None) -> Plan:
    """The project-wide verdict on a call's shared constant: `auto` with its edit, or `review` with why not."""
    table = p.call.table
    if table is None or table.origin is None:
        return p
    waiting = pending(table.origin)
    if waiting not in p.reasons:
        return p
    others = tuple(r for r in p.reasons if r != waiting)
    if why is None and constant is not None and not others:
        return Plan(p.verdict, Fix.AUTO, p.edits, (), p.fates, constant=constant)
    if others:  # this call needs a person anyway: the constant moves only once its calls all can
        why = f"table name comes from {table.origin.shown()}, which changes only when all of its calls can move"
    reasons = tuple(dict.fromkeys(why if r == waiting else r for r in p.reasons)) if why is not None else p.reasons
    return Plan(p.verdict, Fix.REVIEW, (), reasons, p.fates, held=why if why is not None and not others else None)


SHARED_CONSTANT = "table name comes from a constant that other code uses too: change the constant by hand"


def settle_shared(plans: tuple[Plan, ...]) -> tuple[Plan, ...]:
    """Calls that share a file-private constant are rewritten together or not at all.

    The constant's literal is edited only when every use of the constant in the file is one of
    these calls, all of them `auto`, all going to the same target; otherwise each becomes `review`.
    """
    groups: dict[Span, list[int]] = {}
    for index, p in enumerate(plans):
        table = p.call.table
        if table is not None and table.binding is not None and p.verdict.status is Status.LEGACY:
            groups.setdefault(table.binding, []).append(index)
    if not groups:
        return plans
    out = list(plans)
    for binding, members in groups.items():
        group = [plans[i] for i in members]
        refs = group[0].call.table.binding_refs  # type: ignore[union-attr]
        targets = {p.verdict.target for p in group}
        if len(group) != refs or len(targets) != 1:
            why = SHARED_CONSTANT
        elif not all(p.fix is Fix.AUTO for p in group):
            why = "table name comes from a constant shared with a call that needs review: rewrite them together"
        else:
            continue
        for i in members:
            p = plans[i]
            if p.fix is Fix.AUTO:  # the others are review for reasons of their own already
                out[i] = Plan(p.verdict, Fix.REVIEW, (), (*p.reasons, why), p.fates)
    return tuple(out)


def shared_binding(p: Plan) -> Span | None:
    """The constant a rewrite of this plan edits, which its siblings must be rewritten with."""
    table = p.call.table
    return table.binding if table is not None and p.fix is Fix.AUTO else None


def _merged(edits: list[Edit]) -> tuple[Edit, ...]:
    """A call's edits, sorted; insertions at one point (two embeds' filters after one select) become one."""
    inserted: dict[int, list[str]] = {}
    others: set[Edit] = set()
    for edit in edits:
        if edit.span.start == edit.span.end:
            texts = inserted.setdefault(edit.span.start, [])
            if edit.text not in texts:
                texts.append(edit.text)
        else:
            others.add(edit)
    merged = {Edit(Span(at, at), "".join(texts)) for at, texts in inserted.items()}
    return tuple(sorted(others | merged))


def table_part(name: str) -> str:
    return name.split(".", 1)[-1]


def _renamed(column: Column, new: str, language: str) -> str:
    """Replacement text for a renamed column that keeps the shape of returned rows and objects."""
    if column.role is Role.SELECT and column.alias is None and column.json_path is None and column.aggregate is None:
        return f"{column.name}:{new}"
    if column.shorthand:
        return f"{new}: {column.name}"
    return new


def _quote_style(call: Call, data: bytes) -> str:
    span = call.table.span if call.table is not None else None
    if span is not None and span.start > 0:
        char = data[span.start - 1 : span.start].decode("ascii", "replace")
        if char in ("'", '"'):
            return char
    return '"' if call.language == "python" else "'"


def _literal(value: Scalar, quote: str, language: str) -> str:
    if isinstance(value, bool):
        return ("True" if value else "False") if language == "python" else ("true" if value else "false")
    if isinstance(value, int | float):
        return repr(value)
    body = json.dumps(value, ensure_ascii=False)[1:-1]
    if quote == "'":
        body = body.replace('\\"', '"').replace("'", "\\'")
    return f"{quote}{body}{quote}"


def _key(name: str, quote: str, language: str) -> str:
    return _literal(name, quote, language) if language == "python" else name
