"""What a TS/JS module says about names, for the project-wide link pass: imports, exports, constants.

Facts are small records read off one file's syntax tree; the linker joins them across files.
Only module-level statements are read, so the work is one walk over the program's children.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tree_sitter import Node

from tableshift.model import Span, compact_pickle
from tableshift.scan import ts_nodes as n

_MAX_DEPTH = 4  # object nesting read into a value: TABLES.content.queue needs 2


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Value:
    """What a name holds, as far as table names go: a string, an object of values, or another name."""

    text: str | None = None  # a string constant
    span: Span | None = None  # its literal's content, in the defining file
    members: tuple[tuple[str, Value], ...] = ()  # object, enum or namespace members
    ref: tuple[str, ...] = ()  # another name of the same module, and a member path
    function: str | None = None  # a function of this module, by its local name: a helper's definition

    def member(self, key: str) -> Value | None:
        for name, value in self.members:
            if name == key:
                return value
        return None


@compact_pickle
@dataclass(unsafe_hash=True, slots=True)
class Import:
    """`local` is bound to `imported` ('*': the whole module, 'default') of the module `specifier`."""

    local: str
    specifier: str
    imported: str


@dataclass(slots=True)
class ModuleFacts:
    imports: dict[str, Import] = field(default_factory=dict)
    exports: dict[str, Value] = field(default_factory=dict)  # 'default' included
    locals: dict[str, Value] = field(default_factory=dict)  # module-level constants, enums
    star: list[str] = field(default_factory=list)  # `export * from 'x'`
    commonjs: bool = False  # `module.exports` / `exports.X`: a default import is the whole module


def module_facts(root: Node) -> ModuleFacts:
    """Facts of one module from its syntax tree (module-level statements only)."""
    facts = ModuleFacts()
    counter = 0
    for statement in root.named_children:
        kind = statement.type
        if kind == "import_statement":
            _import(statement, facts)
        elif kind == "export_statement":
            counter = _export(statement, facts, counter)
        elif kind in ("lexical_declaration", "variable_declaration"):
            _declaration(statement, facts, exported=False)
        elif kind == "enum_declaration":
            _enum(statement, facts, exported=False)
        elif kind in _FUNCTION_DECLARATIONS:
            _function(statement, facts, exported=None)
        elif kind == "expression_statement":
            _commonjs_export(statement, facts)
    return facts


def imports_of(root: Node) -> dict[str, Import]:
    """Only the import table: what a file with calls needs to have linked."""
    facts = ModuleFacts()
    for statement in root.named_children:
        if statement.type == "import_statement":
            _import(statement, facts)
        elif statement.type in ("lexical_declaration", "variable_declaration"):
            for decl in statement.named_children:
                if decl.type == "variable_declarator":
                    _require(decl, facts)
    return facts.imports


def _source(statement: Node) -> str | None:
    source = statement.child_by_field_name("source")
    lit = n.string_literal(source) if source is not None else None
    return lit.value if lit is not None else None


def _import(statement: Node, facts: ModuleFacts) -> None:
    spec = _source(statement)
    if spec is None:
        return
    for clause in statement.named_children:
        if clause.type != "import_clause":
            continue
        for part in clause.named_children:
            if part.type == "identifier":
                facts.imports[n.text(part)] = Import(n.text(part), spec, "default")
            elif part.type == "namespace_import":
                ident = next((c for c in part.named_children if c.type == "identifier"), None)
                if ident is not None:
                    facts.imports[n.text(ident)] = Import(n.text(ident), spec, "*")
            elif part.type == "named_imports":
                for item in part.named_children:
                    if item.type != "import_specifier":
                        continue
                    name = item.child_by_field_name("name")
                    alias = item.child_by_field_name("alias") or name
                    if name is not None and alias is not None:
                        facts.imports[n.text(alias)] = Import(n.text(alias), spec, _name_text(name))


def _name_text(node: Node) -> str:
    lit = n.string_literal(node)  # `import { "a-b" as c }`
    return lit.value if lit is not None else n.text(node)


def _export(statement: Node, facts: ModuleFacts, counter: int) -> int:
    spec = _source(statement)
    declaration = statement.child_by_field_name("declaration")
    value = statement.child_by_field_name("value")
    clause = next((c for c in statement.named_children if c.type == "export_clause"), None)
    namespace = next((c for c in statement.named_children if c.type == "namespace_export"), None)
    default = any(c.type == "default" for c in statement.children)
    if declaration is not None:
        if declaration.type in ("lexical_declaration", "variable_declaration"):
            _declaration(declaration, facts, exported=True)
        elif declaration.type == "enum_declaration":
            _enum(declaration, facts, exported=True)
        elif declaration.type in _FUNCTION_DECLARATIONS:
            _function(declaration, facts, exported="default" if default else "")
    elif value is not None:
        facts.exports["default"] = _value(value)
    elif clause is not None:
        for item in clause.named_children:
            if item.type != "export_specifier":
                continue
            name = item.child_by_field_name("name")
            alias = item.child_by_field_name("alias") or name
            if name is None or alias is None:
                continue
            if spec is None:
                facts.exports[_name_text(alias)] = Value(ref=(n.text(name),))
            else:  # a re-export binds a name of its own, never visible in this module's scope
                counter += 1
                local = f"\0reexport{counter}"
                facts.imports[local] = Import(local, spec, _name_text(name))
                facts.exports[_name_text(alias)] = Value(ref=(local,))
    elif namespace is not None and spec is not None:
        ident = next((c for c in namespace.named_children if c.type in ("identifier", "string")), None)
        if ident is not None:
            counter += 1
            local = f"\0reexport{counter}"
            facts.imports[local] = Import(local, spec, "*")
            facts.exports[_name_text(ident)] = Value(ref=(local,))
    elif spec is not None:
        facts.star.append(spec)
    return counter


_FUNCTION_DECLARATIONS = frozenset({"function_declaration", "generator_function_declaration"})
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})


def _function(declaration: Node, facts: ModuleFacts, *, exported: str | None) -> None:
    """`function f() {}`: a module function; `exported` is its export name ("" for its own name)."""
    name = declaration.child_by_field_name("name")
    if name is None:
        if exported == "default":
            facts.exports["default"] = Value(function="default")
        return
    held = Value(function=n.text(name))
    facts.locals[n.text(name)] = held
    if exported is not None:
        facts.exports[exported or n.text(name)] = held


def _declaration(statement: Node, facts: ModuleFacts, *, exported: bool) -> None:
    constant = statement.type == "lexical_declaration" and statement.child(0) is not None and statement.child(0).type == "const"  # type: ignore[union-attr]
    for decl in statement.named_children:
        if decl.type != "variable_declarator":
            continue
        if _require(decl, facts):
            continue
        target = decl.child_by_field_name("name")
        value = decl.child_by_field_name("value")
        if target is None or target.type != "identifier" or value is None:
            continue
        name = n.text(target)
        # a `let` may be reassigned: it is exported as a name, never as a value
        if n.unwrap(value).type in _FUNCTION_VALUES:
            held = Value(function=name)
        else:
            held = _value(value) if constant else Value()
        facts.locals[name] = held
        if exported:
            facts.exports[name] = held


def _require(decl: Node, facts: ModuleFacts) -> bool:
    """`const t = require('./t')`, `const { A, B: C } = require('./t')`."""
    value = decl.child_by_field_name("value")
    target = decl.child_by_field_name("name")
    spec = required(value) if value is not None else None
    if spec is None or target is None:
        return False
    if target.type == "identifier":
        facts.imports[n.text(target)] = Import(n.text(target), spec, "*")
    elif target.type == "object_pattern":
        for part in target.named_children:
            if part.type == "shorthand_property_identifier_pattern":
                facts.imports[n.text(part)] = Import(n.text(part), spec, n.text(part))
            elif part.type == "pair_pattern":
                key, local = part.child_by_field_name("key"), part.child_by_field_name("value")
                if key is not None and local is not None and local.type == "identifier":
                    facts.imports[n.text(local)] = Import(n.text(local), spec, n.property_name(key) or n.text(key))
    return True


def required(node: Node) -> str | None:
    node = n.unwrap(node)
    if node.type == "await_expression" and node.named_children:
        node = n.unwrap(node.named_children[0])
    if node.type != "call_expression":
        return None
    func = node.child_by_field_name("function")
    args = n.arguments(node.child_by_field_name("arguments"))
    if func is None or n.text(func) != "require" or len(args) != 1:
        return None
    lit = n.string_literal(args[0])
    return lit.value if lit is not None else None


def _enum(statement: Node, facts: ModuleFacts, *, exported: bool) -> None:
    name = statement.child_by_field_name("name")
    body = statement.child_by_field_name("body")
    if name is None or body is None:
        return
    members: list[tuple[str, Value]] = []
    for item in body.named_children:
        if item.type == "enum_assignment":
            key = item.child_by_field_name("name")
            value = item.child_by_field_name("value")
            if key is not None and value is not None:
                members.append((n.property_name(key) or n.text(key), _value(value)))
        elif item.type == "property_identifier":
            members.append((n.text(item), Value()))  # a numeric member: never a table name
    held = Value(members=tuple(members))
    facts.locals[n.text(name)] = held
    if exported:
        facts.exports[n.text(name)] = held


def _commonjs_export(statement: Node, facts: ModuleFacts) -> None:
    """`module.exports = {...}`, `module.exports.X = ...`, `exports.X = ...`."""
    expr = statement.named_children[0] if statement.named_children else None
    if expr is None or expr.type != "assignment_expression":
        return
    left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
    path = n.member_path(left) if left is not None else None
    if path is None or right is None:
        return
    if path == ["module", "exports"]:
        facts.commonjs = True
        whole = _value(right)
        for key, value in whole.members:
            facts.exports[key] = value
        facts.exports["default"] = whole
    elif len(path) == 3 and path[:2] == ["module", "exports"] or len(path) == 2 and path[0] == "exports":
        facts.commonjs = True
        facts.exports[path[-1]] = _value(right)


def _value(node: Node, depth: int = 0) -> Value:
    node = n.unwrap(node)
    lit = n.string_literal(node)
    if lit is not None:
        return Value(text=lit.value, span=lit.content_span)
    if node.type == "call_expression":  # Object.freeze({...})
        func = node.child_by_field_name("function")
        args = n.arguments(node.child_by_field_name("arguments"))
        if func is not None and n.text(func) == "Object.freeze" and len(args) == 1:
            return _value(args[0], depth)
        return Value()
    if node.type == "object" and depth < _MAX_DEPTH:
        # what JavaScript reads: the last pair of a name wins, and whatever comes after a pair and
        # may set it again (a spread, a computed key, a method or accessor) leaves it unknown
        members: dict[str, Value] = {}
        for child in node.named_children:
            if child.type == "pair":
                key, value = child.child_by_field_name("key"), child.child_by_field_name("value")
                name = n.property_name(key) if key is not None else None
                if name is None:
                    members = dict.fromkeys(members, Value())
                elif value is not None:
                    members.pop(name, None)
                    members[name] = _value(value, depth + 1)
            elif child.type == "shorthand_property_identifier":
                members.pop(n.text(child), None)
                members[n.text(child)] = Value(ref=(n.text(child),))
            elif child.type == "spread_element":
                members = dict.fromkeys(members, Value())
            elif child.type == "method_definition":
                name_node = child.child_by_field_name("name")
                name = n.property_name(name_node) if name_node is not None else None
                if name is None:
                    members = dict.fromkeys(members, Value())
                elif name in members:
                    members[name] = Value()
        return Value(members=tuple(members.items()))
    if node.type == "identifier":
        return Value(ref=(n.text(node),))
    if node.type in _FUNCTION_VALUES:
        name = node.child_by_field_name("name")
        return Value(function=n.text(name) if name is not None else "\0anonymous")
    if node.type == "member_expression":
        path = n.member_path(node)
        if path is not None and path[0] != "this":
            return Value(ref=tuple(path))
    return Value()
