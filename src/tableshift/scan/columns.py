"""Column references inside PostgREST strings, as Columns with byte spans (any language)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tableshift import postgrest
from tableshift.model import Column, Columns, Embedded, Operation, Position, Role, Span

_OPERATIONS = frozenset(op.value for op in Operation)
from tableshift.scan.source import SourceText, StringLiteral


@dataclass
class Found:
    """Columns collected from one chain, in source order, plus what could not be read."""

    select: list[Column] = field(default_factory=list)
    embedded: list[Embedded] = field(default_factory=list)
    filter: list[Column] = field(default_factory=list)
    write: list[Column] = field(default_factory=list)
    on_conflict: list[Column] = field(default_factory=list)
    opaque: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    payload_objects: list[Span] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # PostgREST strings that do not parse

    def freeze(self) -> Columns:
        return Columns(
            select=tuple(self.select),
            embedded=tuple(self.embedded),
            filter=tuple(self.filter),
            write=tuple(self.write),
            on_conflict=tuple(self.on_conflict),
            opaque=tuple(self.opaque),
        )


def first_operation(links: Iterable[tuple[str, Span]]) -> tuple[Operation | None, Span | None]:
    """The chain's operation: the first select / insert / update / upsert / delete, and its call's span."""
    for name, span in links:
        if name in _OPERATIONS:
            return Operation(name), span
    return None, None


def _where(lit: StringLiteral, src: SourceText, start: int, end: int) -> tuple[Span | None, Position]:
    span = lit.span_of(start, end)
    return span, src.position(span.start if span else lit.content_start)


def add_select(found: Found, lit: StringLiteral, src: SourceText, *, op: str = "select") -> None:
    """Columns and embeds of a select string; a malformed one becomes a note."""
    try:
        tree = postgrest.parse_select(lit.value)
    except postgrest.PostgrestSyntaxError as exc:
        found.notes.append(f"select string does not parse ({exc}): {lit.value!r}")
        found.malformed.append(f"failed to parse select parameter ({lit.value}): {exc}")
        return
    if not tree.items:
        span, pos = _where(lit, src, 0, 0)
        found.select.append(Column("*", Role.SELECT, op, pos, None))
        return
    cols, embeds = _items(tree.items, lit, src, op)
    found.select.extend(cols)
    found.embedded.extend(embeds)


def _items(
    items: tuple[postgrest.Field | postgrest.Embed, ...], lit: StringLiteral, src: SourceText, op: str
) -> tuple[list[Column], list[Embedded]]:
    cols: list[Column] = []
    embeds: list[Embedded] = []
    for item in items:
        span, pos = _where(lit, src, item.start, item.end)
        if isinstance(item, postgrest.Embed):
            sub_cols, sub_embeds = _items(item.items, lit, src, op)
            embeds.append(
                Embedded(
                    table=item.relation,
                    alias=item.alias,
                    hints=item.hints,
                    position=pos,
                    span=span,
                    columns=tuple(sub_cols),
                    embedded=tuple(sub_embeds),
                    spread=item.spread,
                )
            )
        else:
            cols.append(
                Column(
                    item.name,
                    Role.SELECT,
                    op,
                    pos,
                    span,
                    alias=item.alias,
                    cast=item.cast,
                    aggregate_cast=item.aggregate_cast,
                    json_path=item.json_path,
                    aggregate=item.aggregate,
                    bare=item.bare,
                )
            )
    return cols, embeds


def column_from_string(
    lit: StringLiteral, src: SourceText, *, role: Role, op: str, qualifier: str | None = None, value: str | None = None
) -> Column:
    """A filter-style column argument: `col`, `col->>key`, `embed.col`."""
    text = lit.value
    base_end = text.find("->")
    base = text if base_end == -1 else text[:base_end]
    json_path = None if base_end == -1 else text[base_end:]
    start = len(base) - len(base.lstrip())
    base = base.strip()
    if "." in base:
        qual, _, name = base.rpartition(".")
        qualifier = qual if qualifier is None else f"{qualifier}.{qual}"
        start += len(qual) + 1
    else:
        name = base
    span, pos = _where(lit, src, start, start + len(name))
    return Column(name, role, op, pos, span, json_path=json_path, qualifier=qualifier, value=value)


def add_logic(found: Found, lit: StringLiteral, src: SourceText, *, op: str, qualifier: str | None) -> None:
    """Columns inside an `or('a.eq.1,b.is.null')` string; a malformed one becomes a note."""
    try:
        conditions = postgrest.parse_logic(lit.value)
    except postgrest.PostgrestSyntaxError as exc:
        found.notes.append(f"{op}() string does not parse ({exc}): {lit.value!r}")
        found.malformed.append(f"failed to parse logic tree ({lit.value}): {exc}")
        return
    for cond in conditions:
        column = cond.column
        start, qual = cond.start, qualifier
        if "." in column:
            prefix, _, column = column.rpartition(".")
            start += len(prefix) + 1
            qual = prefix if qual is None else f"{qual}.{prefix}"
            # PostgREST's logic trees take no embed path (`rel.col.eq.1`): `{ referencedTable }` does that
            found.malformed.append(f"failed to parse logic tree ({lit.value}): '{prefix}.{column}' is not a column of the filtered table")
        span, pos = _where(lit, src, start, start + len(column))
        # the condition as PostgREST reads it (`not.eq.1`): verify turns it into SQL
        modifier = f"({cond.modifier})" if cond.modifier else ""
        condition = f"{'not.' if cond.negated else ''}{cond.operator}{modifier}.{cond.value}"
        found.filter.append(Column(column, Role.FILTER, op, pos, span, qualifier=qual, value=condition))


def add_realtime_filter(found: Found, lit: StringLiteral, src: SourceText) -> None:
    try:
        cond = postgrest.parse_realtime_filter(lit.value)
    except postgrest.PostgrestSyntaxError as exc:
        found.notes.append(f"realtime filter does not parse ({exc}): {lit.value!r}")
        return
    span, pos = _where(lit, src, cond.start, cond.end)
    found.filter.append(Column(cond.column, Role.FILTER, "filter", pos, span))


def add_conflict(found: Found, lit: StringLiteral, src: SourceText, *, op: str) -> None:
    try:
        parts = postgrest.split_columns(lit.value)
    except postgrest.PostgrestSyntaxError as exc:
        found.notes.append(f"{op} string does not parse ({exc}): {lit.value!r}")
        found.malformed.append(f"failed to parse on_conflict ({lit.value}): {exc}")
        return
    for name, start, end in parts:
        span, pos = _where(lit, src, start, end)
        found.on_conflict.append(Column(name, Role.ON_CONFLICT, op, pos, span))
