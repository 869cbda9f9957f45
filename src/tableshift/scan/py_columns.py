"""The columns one link of a supabase-py chain names: shared by the LibCST scan and the tree-sitter one.

Each scanner reads its own parser's nodes through the same few methods (`string`, `code`,
`_opaque`, `_payload`, `_keys` and `src`); what a link means is decided here, once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tableshift.model import Column, Position, Role
from tableshift.scan import columns as col

COLUMN_FILTERS = frozenset(
    {"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "like_all_of", "like_any_of", "ilike_all_of",
     "ilike_any_of", "is_", "in_", "contains", "contained_by", "overlaps", "text_search", "filter", "fts",
     "plfts", "phfts", "wfts", "range_gt", "range_gte", "range_lt", "range_lte", "range_adjacent", "order"}
)  # fmt: skip
_QUALIFIERS = ("foreign_table", "reference_table", "referenced_table")


def link_columns(scan: Any, name: str, positional: list[Any], keywords: dict[str, Any], found: col.Found, *, at: Position) -> None:
    """Record what `name(positional..., **keywords)` reads, writes or filters on; `at` is the link's position."""
    if name == "select":
        if not positional:
            found.select.append(Column("*", Role.SELECT, "select", at, None))
        for arg in positional:
            _literal(scan, arg, found, Role.SELECT, "select columns", lambda lit: col.add_select(found, lit, scan.src))
    elif name in ("insert", "update", "upsert"):
        payload = positional[0] if positional else keywords.get("json")
        if payload is not None:
            scan._payload(payload, found, name)
        conflict = keywords.get("on_conflict")
        if conflict is not None:
            _literal(scan, conflict, found, Role.ON_CONFLICT, "on_conflict", lambda lit: col.add_conflict(found, lit, scan.src, op="on_conflict"))
    elif name in COLUMN_FILTERS:
        first = positional[0] if positional else keywords.get("column")
        if first is not None:
            qualifier = _qualifier(scan, keywords)
            value = _value(scan, name, positional, keywords)

            def add(lit: Any) -> None:
                column = col.column_from_string(lit, scan.src, role=Role.FILTER, op=name, qualifier=qualifier)
                found.filter.append(dataclasses.replace(column, value=value) if value is not None else column)

            _literal(scan, first, found, Role.FILTER, f"{name}() column", add)
    elif name == "match" and positional:
        scan._keys(positional[0], found, Role.FILTER, "match", found.filter, record=False)
    elif name == "or_" and positional:
        qualifier = _qualifier(scan, keywords)
        _literal(scan, positional[0], found, Role.FILTER, "or_() filter", lambda lit: col.add_logic(found, lit, scan.src, op="or", qualifier=qualifier))


# the keyword each filter method names its value with (supabase-py's postgrest builder)
_VALUE_KEYWORD = {"like": "pattern", "ilike": "pattern", "in_": "values", "filter": "criteria"}


def _value(scan: Any, name: str, positional: list[Any], keywords: dict[str, Any]) -> str | None:
    """A filter's value as supabase-py sends it after the operator: `eq.true`, `is.null`,
    `in.(1,"a,b")` (`filter(col, op, v)`: `op.v`); None when the code computes it."""
    node = positional[1] if len(positional) > 1 else keywords.get(_VALUE_KEYWORD.get(name, "value"))
    if name == "filter":
        operator = scan.string(node)
        criteria = positional[2] if len(positional) > 2 else keywords.get("criteria")
        text = scan.scalar(criteria)
        return f"{operator.value}.{text}" if operator is not None and text is not None else None
    if name == "in_":
        items = [scan.scalar(e) for e in _elements(node)] if node is not None else [None]
        if not items or any(i is None for i in items):
            return None
        return "(" + ",".join(_sanitized(i) for i in items) + ")"  # type: ignore[arg-type]
    if name in ("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "is_", "fts", "plfts", "phfts", "wfts"):
        return scan.scalar(node) if node is not None else None
    if name == "text_search":  # the whole filter: supabase-py knows the types plain, phrase and web_search
        query = scan.scalar(positional[1] if len(positional) > 1 else keywords.get("query"))
        options = positional[2] if len(positional) > 2 else keywords.get("options")
        items = _dict_items(scan, options) if options is not None else {}
        if query is None or items is None:
            return None
        kind = {"plain": "pl", "phrase": "ph", "web_search": "w"}.get(items.get("type") or "", "")
        config = f"({items['config']})" if items.get("config") else ""
        return f"{kind}fts{config}.{query}"
    return None


def _dict_items(scan: Any, node: Any) -> dict[str, str | None] | None:
    """A dict literal of literal keys, each value as supabase-py writes it (None: computed);
    None when it is not one."""
    out: dict[str, str | None] = {}
    if type(node).__name__ == "Dict":  # LibCST
        pairs = [(getattr(e, "key", None), getattr(e, "value", None)) for e in node.elements]
    elif getattr(node, "type", None) == "dictionary":  # tree-sitter
        pairs = [(c.child_by_field_name("key"), c.child_by_field_name("value")) for c in node.named_children if c.type == "pair"]
    else:
        return None
    for key, value in pairs:
        lit = scan.string(key) if key is not None else None
        if lit is None:
            return None
        out[lit.value] = scan.scalar(value)
    return out


def _sanitized(text: str) -> str:
    """supabase-py's sanitize_param: a value holding `,:()"\\` is quoted, `"` and `\\` escaped."""
    if not any(ch in text for ch in ',:()"\\'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _elements(node: Any) -> list[Any]:
    """The elements of a list or tuple literal, of either scanner's parser; [None] when it is not one."""
    elements = getattr(node, "elements", None)
    if elements is not None:  # LibCST
        return [getattr(e, "value", None) for e in elements]
    if getattr(node, "type", None) in ("list", "tuple"):  # tree-sitter
        return [c for c in node.named_children if c.type != "comment"]
    return [None]


def _literal(scan: Any, node: Any, found: col.Found, role: Role, what: str, use: Any) -> None:
    lit = scan.string(node)
    if lit is None:
        found.opaque.append(scan._opaque(role, f"{what} is not a literal: `{scan.code(node)}`", node))
    else:
        use(lit)


def _qualifier(scan: Any, keywords: dict[str, Any]) -> str | None:
    """The embedded resource a filter applies to: `foreign_table=` and its later spellings (the last wins)."""
    qualifier = None
    for key in _QUALIFIERS:
        lit = scan.string(keywords.get(key))
        if lit is not None:
            qualifier = lit.value
    return qualifier
