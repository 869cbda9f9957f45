"""tree-sitter node helpers for the TypeScript family: literals, wrappers, bindings, scopes."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from tableshift.scan.source import StringLiteral

# Expressions that only dress a value up for the type checker, or group it.
WRAPPERS = frozenset(
    {"parenthesized_expression", "as_expression", "satisfies_expression", "non_null_expression", "type_assertion"}
)
FUNCTIONS = frozenset(
    {
        "function_declaration",
        "function_expression",
        "function",
        "arrow_function",
        "method_definition",
        "generator_function_declaration",
        "generator_function",
    }
)
SCOPES = FUNCTIONS | {"statement_block", "program", "class_body"}

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|.)", re.S)


def text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogateescape")


def unwrap(node: Node) -> Node:
    """The expression inside parentheses, `as T`, `satisfies T`, `!` and `<T>` casts."""
    while node.type in WRAPPERS:
        inner = [c for c in node.named_children if c.type not in _TYPE_NODES]
        if not inner:
            break
        node = inner[-1] if node.type == "type_assertion" else inner[0]
    return node


_TYPE_NODES = frozenset(
    {
        "type_arguments",
        "predefined_type",
        "type_identifier",
        "generic_type",
        "union_type",
        "literal_type",
        "object_type",
        "array_type",
        "nested_type_identifier",
        "comment",
    }
)


def _unescape(raw: str) -> str:
    def sub(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc.startswith("u{"):
            return chr(int(esc[2:-1], 16))
        if esc.startswith("u") and len(esc) == 5:
            return chr(int(esc[1:], 16))
        if esc.startswith("x") and len(esc) == 3:
            return chr(int(esc[1:], 16))
        if esc in ("\n", "\r\n"):
            return ""
        return _ESCAPES.get(esc, esc)

    return _ESCAPE.sub(sub, raw)


def string_literal(node: Node) -> StringLiteral | None:
    """The value of a string literal or a template literal without substitutions, else None."""
    node = unwrap(node)
    kind = node.type
    if kind != "string" and kind != "template_string":
        return None
    has_escape = False
    for piece in node.named_children:
        piece_kind = piece.type
        if piece_kind == "template_substitution":
            return None
        has_escape = has_escape or piece_kind == "escape_sequence"
    code = node.text or b""
    decoded = code[1:-1].decode("utf-8", "surrogateescape")
    value = _unescape(decoded) if has_escape else decoded
    return StringLiteral(value, node.start_byte + 1, not has_escape, code[:1].decode() if code else "'")


def arguments(args: Node | None) -> list[Node]:
    """Named argument nodes, comments excluded."""
    if args is None:
        return []
    return [a for a in args.named_children if a.type != "comment"]


class Parents:
    """Parents of one tree's nodes, remembered once found.

    tree-sitter's `Node.parent` searches down from the root on every call, so walking up a
    chain n calls deep with it costs n² steps; one descent from the root records a whole path instead.
    """

    def __init__(self, root: Node) -> None:
        self.root = root
        self.steps = 0  # levels descended: the work spent finding parents
        self._of: dict[int, Node | None] = {root.id: None}

    def parent(self, node: Node) -> Node | None:
        found = self._of.get(node.id, self)
        if found is not self:
            return found  # type: ignore[return-value]
        if not self._descend(node):
            return node.parent  # a node the descent cannot reach (zero-width)
        return self._of[node.id]

    def ancestors(self, node: Node) -> Iterator[Node]:
        parent = self.parent(node)
        while parent is not None:
            yield parent
            parent = self.parent(parent)

    def enclosing_scope(self, node: Node) -> Node:
        for anc in self.ancestors(node):
            if anc.type in SCOPES:
                return anc
        return node

    def _descend(self, target: Node) -> bool:
        """Walk from the root down to `target`, remembering each node's parent on the way: each
        step is tree-sitter's own search for the child holding `target`."""
        parent = self.root
        while parent != target:
            self.steps += 1
            child = parent.child_with_descendant(target)
            if child is None:
                return False
            self._of[child.id] = parent
            parent = child
        return True


def contains(outer: Node, inner: Node) -> bool:
    return outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


def property_name(key: Node) -> str | None:
    """The name of an object key: `a`, `'a'`, `"a"`; None for computed keys."""
    if key.type in ("property_identifier", "identifier", "shorthand_property_identifier"):
        return text(key)
    lit = string_literal(key)
    if lit is not None:
        return lit.value
    if key.type == "number":
        return text(key)
    return None


def object_pairs(obj: Node) -> Iterator[tuple[str, Node, Node]]:
    """(name, key node, value node) for the plain `key: value` pairs of an object literal."""
    for child in obj.named_children:
        if child.type == "pair":
            key = child.child_by_field_name("key")
            value = child.child_by_field_name("value")
            if key is not None and value is not None:
                name = property_name(key)
                if name is not None:
                    yield name, key, value


def object_value(obj: Node, name: str) -> Node | None:
    """The value JavaScript reads for `name` in an object literal: the last `name: value` pair, unless
    something after it may set the key again (a spread, a computed key, a method or accessor, a
    shorthand), in which case it is not known (None), as when the key is absent."""
    value: Node | None = None
    for child in obj.named_children:
        kind = child.type
        if kind == "pair":
            key = child.child_by_field_name("key")
            key_name = property_name(key) if key is not None else None
            if key_name == name:
                value = child.child_by_field_name("value")
            elif key_name is None:  # `[k]: v`: may be this key
                value = None
        elif kind in ("spread_element", "method_definition", "shorthand_property_identifier"):
            if kind == "spread_element":
                value = None
            else:
                member = child.child_by_field_name("name") if kind == "method_definition" else child
                member_name = property_name(member) if member is not None else None
                if member_name is None or member_name == name:
                    value = None
    return value


def member_path(node: Node) -> list[str] | None:
    """`this.config.tables.posts` -> ['this', 'config', 'tables', 'posts']; None for other shapes."""
    parts: list[str] = []
    current: Node | None = unwrap(node)
    while current is not None:  # iterative: generated code nests deeper than Python recurses
        if current.type in ("identifier", "this"):
            parts.append(text(current))
            return parts[::-1]
        if current.type == "member_expression":
            prop = current.child_by_field_name("property")
            if prop is None:
                return None
            parts.append(text(prop))
        elif current.type == "subscript_expression":
            index = current.child_by_field_name("index")
            lit = string_literal(index) if index is not None else None
            if lit is None:
                return None
            parts.append(lit.value)
        else:
            return None
        obj = current.child_by_field_name("object")
        current = unwrap(obj) if obj is not None else None
    return None


def parameter_names(fn: Node) -> list[tuple[str, Node | None]]:
    """(name, default value) of each parameter of a function, destructured names included."""
    params = fn.child_by_field_name("parameters") or fn.child_by_field_name("parameter")
    if params is None:
        return []
    items = [params] if params.type == "identifier" else params.named_children
    out: list[tuple[str, Node | None]] = []
    for param in items:
        out.extend(_pattern_names(param))
    return out


def parameter_index(fn: Node, name: str) -> int | None:
    params = fn.child_by_field_name("parameters") or fn.child_by_field_name("parameter")
    if params is None:
        return None
    items = [params] if params.type == "identifier" else [p for p in params.named_children if p.type != "comment"]
    for index, param in enumerate(items):
        if any(n == name for n, _ in _pattern_names(param)):
            return index
    return None


def destructured_key(fn: Node, index: int, name: str) -> str | None:
    """The property a parameter destructures into `name` (`{ table }`, `{ table: t }`), when the
    parameter at `index` is an object pattern naming it at its top level; else None."""
    params = fn.child_by_field_name("parameters") or fn.child_by_field_name("parameter")
    if params is None or params.type == "identifier":
        return None
    items = [p for p in params.named_children if p.type != "comment"]
    if index >= len(items):
        return None
    pattern = items[index]
    if pattern.type in ("required_parameter", "optional_parameter"):
        pattern = pattern.child_by_field_name("pattern") or pattern
    if pattern.type == "assignment_pattern":
        pattern = pattern.child_by_field_name("left") or pattern
    if pattern.type != "object_pattern":
        return None
    for child in pattern.named_children:
        if child.type == "shorthand_property_identifier_pattern" and text(child) == name:
            return name
        if child.type == "object_assignment_pattern":
            left = child.child_by_field_name("left")
            if left is not None and text(left) == name:
                return name
        if child.type == "pair_pattern":
            key, value = child.child_by_field_name("key"), child.child_by_field_name("value")
            if value is not None and value.type == "assignment_pattern":
                value = value.child_by_field_name("left")
            if key is not None and value is not None and value.type == "identifier" and text(value) == name:
                return property_name(key)
    return None


def _pattern_names(node: Node) -> Iterator[tuple[str, Node | None]]:
    """(name, default) of each name a binding pattern declares, in source order.

    Iterative: generated code nests patterns deeper than Python recurses. A default is carried
    down: a parameter's default holds unless an inner `= x` names another, and a nested
    `{ ... } = x` gives x to every name inside it (`settled`).
    """
    pending: list[tuple[Node, Node | None, bool]] = [(node, None, False)]
    while pending:
        current, default, settled = pending.pop()
        kind = current.type
        if kind in ("identifier", "shorthand_property_identifier_pattern"):
            yield text(current), default
        elif kind in ("required_parameter", "optional_parameter"):
            pattern = current.child_by_field_name("pattern")
            value = current.child_by_field_name("value")
            if pattern is not None:
                pending.append((pattern, default if settled or value is None else value, settled))
        elif kind in ("assignment_pattern", "object_assignment_pattern"):
            left = current.child_by_field_name("left")
            right = current.child_by_field_name("right")
            if left is not None:
                pending.append((left, default if settled or right is None else right, True))
        elif kind in ("object_pattern", "array_pattern", "rest_pattern"):
            pending.extend((child, default, settled) for child in reversed(current.named_children))
        elif kind == "pair_pattern":
            value = current.child_by_field_name("value")
            if value is not None:
                pending.append((value, default, settled))


def function_name(fn: Node, parents: Parents) -> str | None:
    """The name a function is called by in the same file, where one is visible."""
    name = fn.child_by_field_name("name")
    if name is not None:
        return text(name)
    parent = parents.parent(fn)
    if parent is None:
        return None
    if parent.type == "variable_declarator":
        target = parent.child_by_field_name("name")
        return text(target) if target is not None and target.type == "identifier" else None
    if parent.type in ("pair", "public_field_definition", "field_definition"):
        key = parent.child_by_field_name("key") or parent.child_by_field_name("name")
        return property_name(key) if key is not None else None
    if parent.type == "assignment_expression":
        left = parent.child_by_field_name("left")
        path = member_path(left) if left is not None else None
        return path[-1] if path else None
    return None
