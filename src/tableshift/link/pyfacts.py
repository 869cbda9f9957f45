"""What a Python module says about names, for the link pass: constants, constant classes, imports.

Read with tree-sitter-python (error-tolerant, no deep recursion): a module that does not parse
whole still offers the constants it has. Every module-level name is importable in Python.
"""

from __future__ import annotations

import ast

from tree_sitter import Node

from tableshift.link.facts import Import, ModuleFacts, Value
from tableshift.model import Span

PREFIX = "py:"  # marks a Python module name in a link's specifier


def module_facts(root: Node) -> ModuleFacts:
    facts = ModuleFacts()
    assigned: dict[str, int] = {}
    for statement in root.named_children:
        if statement.type == "expression_statement" and statement.named_children:
            node = statement.named_children[0]
            if node.type == "assignment":
                name, value = _assignment(node)
                if name is not None:
                    assigned[name] = assigned.get(name, 0) + 1
                    facts.locals[name] = value if assigned[name] == 1 else Value()
        elif statement.type == "class_definition":
            name = statement.child_by_field_name("name")
            body = statement.child_by_field_name("body")
            if name is not None and body is not None:
                facts.locals[node_text(name)] = Value(members=tuple(_class_members(body)))
        elif statement.type in ("function_definition", "decorated_definition"):
            definition = statement if statement.type == "function_definition" else statement.child_by_field_name("definition")
            name = definition.child_by_field_name("name") if definition is not None and definition.type == "function_definition" else None
            if name is not None:
                facts.locals[node_text(name)] = Value(function=node_text(name))
        elif statement.type == "import_from_statement":
            _import_from(statement, facts)
        elif statement.type == "import_statement":
            _import(statement, facts)
    facts.exports.update(facts.locals)
    return facts


def node_text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogateescape")


def _assignment(node: Node) -> tuple[str | None, Value]:
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if left is None or left.type != "identifier":
        return None, Value()
    return node_text(left), value_of(right) if right is not None else Value()


def value_of(node: Node) -> Value:
    if node.type in ("string", "concatenated_string"):
        if any(c.type == "interpolation" for c in node.named_children) or node.type == "concatenated_string" and any(
            c.type == "interpolation" for s in node.named_children for c in s.named_children
        ):
            return Value()
        try:
            text = ast.literal_eval(node_text(node))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return Value()
        if not isinstance(text, str):
            return Value()
        content = next((c for c in node.named_children if c.type == "string_content"), None)
        span = None
        if node.type == "string" and content is not None and node_text(content) == text:  # no escapes: editable in place
            span = Span(content.start_byte, content.end_byte)
        return Value(text=text, span=span)
    if node.type == "identifier":
        return Value(ref=(node_text(node),))
    if node.type == "attribute":
        parts = dotted(node)
        return Value(ref=tuple(parts)) if parts else Value()
    return Value()


def dotted(node: Node) -> list[str] | None:
    if node.type == "identifier":
        return [node_text(node)]
    if node.type == "attribute":
        obj, attr = node.child_by_field_name("object"), node.child_by_field_name("attribute")
        base = dotted(obj) if obj is not None else None
        return None if base is None or attr is None else [*base, node_text(attr)]
    return None


def _class_members(body: Node) -> list[tuple[str, Value]]:
    """Constant members of a class body: Enum / StrEnum members, or a plain constants class."""
    seen: dict[str, int] = {}
    out: dict[str, Value] = {}
    for statement in body.named_children:
        if statement.type != "expression_statement" or not statement.named_children:
            continue
        node = statement.named_children[0]
        if node.type != "assignment":
            continue
        name, value = _assignment(node)
        if name is None:
            continue
        seen[name] = seen.get(name, 0) + 1
        out[name] = value if seen[name] == 1 else Value()
    return list(out.items())


def _import_from(statement: Node, facts: ModuleFacts) -> None:
    module = statement.child_by_field_name("module_name")
    if module is None:
        return
    spec = PREFIX + node_text(module).replace(" ", "")
    for name in statement.children_by_field_name("name"):
        if name.type == "aliased_import":
            original, alias = name.child_by_field_name("name"), name.child_by_field_name("alias")
            if original is not None and alias is not None:
                facts.imports[node_text(alias)] = Import(node_text(alias), spec, node_text(original))
        elif name.type == "dotted_name":
            facts.imports[node_text(name)] = Import(node_text(name), spec, node_text(name))


def _import(statement: Node, facts: ModuleFacts) -> None:
    for name in statement.children_by_field_name("name"):
        if name.type == "aliased_import":
            original, alias = name.child_by_field_name("name"), name.child_by_field_name("alias")
            if original is not None and alias is not None:
                facts.imports[node_text(alias)] = Import(node_text(alias), PREFIX + node_text(original), "*")
