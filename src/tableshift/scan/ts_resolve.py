"""What a table argument names: literals, same-file constants, or dynamic with candidates and reasons."""

from __future__ import annotations

import re
from collections import Counter
from functools import cached_property

from tree_sitter import Node, Query, QueryCursor

from tableshift.link.facts import Import, imports_of, module_facts, required
from tableshift.model import TableArg, TableSource
from tableshift.scan import ts_nodes as n
from tableshift.scan.shared import name_occurrences

_ENV_MARKERS = ("process.env", "import.meta.env", "Deno.env", "Bun.env")
_MAX_DEPTH = 4
# what stands between a bound name and its declarator: `{ a }`, `[a]`, `{ b: a }`, `{ a = 1 }`, `...a`
_PATTERNS = frozenset({"object_pattern", "array_pattern", "pair_pattern", "assignment_pattern", "object_assignment_pattern", "rest_pattern"})


# What follows a name that is used, not bound: a member access (even on the next line: `let x` then
# `.y` is no statement), or a call or index on the same line (`let x` then `(` on the next line is
# a declaration, the parenthesis another statement)
_USED_AFTER = re.compile(rb"\s*\.|[ \t]*[(\[]")


class Resolver:
    """Per-file lookups, built lazily: only files with a non-literal argument pay for them."""

    def __init__(self, root: Node, queries: dict[str, Query], parents: n.Parents) -> None:
        self.root = root
        self.queries = queries
        self.parents = parents
        self._parameters: dict[tuple[str, int, int], TableArg] = {}
        self._declarators: dict[str, list[Node]] = {}
        self._scopes: dict[int, Node] = {}  # declarator id -> the scope it binds in

    def _matches(self, name: str) -> list[dict[str, list[Node]]]:
        return [m for _, m in QueryCursor(self.queries[name]).matches(self.root)]

    @cached_property
    def _source(self) -> bytes:
        return self.root.text or b""

    def declarators(self, name: str) -> list[Node]:
        """The variable declarators (const/let/var, destructured included) that bind `name`, in
        source order. Found from the name's own occurrences in the bytes, each walked up through
        the binding patterns holding it, rather than by querying every declarator of the file:
        most files ask for one or two names."""
        found = self._declarators.get(name)
        if found is not None:
            return found
        out: list[Node] = []
        seen: set[int] = set()
        base = self.root.start_byte  # the root's text starts where its first token (or comment) does
        source = self._source
        for match in name_occurrences(source, name):
            if _USED_AFTER.match(source, match.end()) is not None:
                continue  # `name.x`, `name(`, `name[`: a use, never the name a declarator binds
            node: Node | None = self.root.descendant_for_byte_range(base + match.start(), base + match.end())
            if node is None or node.type not in ("identifier", "shorthand_property_identifier_pattern"):
                continue
            parent = self.parents.parent(node)
            while parent is not None and parent.type in _PATTERNS:
                node, parent = parent, self.parents.parent(parent)
            if parent is None or parent.type != "variable_declarator" or parent.start_byte in seen:
                continue
            target = parent.child_by_field_name("name")
            if target is not None and target == node and any(bound == name for bound, _ in n._pattern_names(target)):
                seen.add(parent.start_byte)
                out.append(parent)
        self._declarators[name] = out
        return out

    @cached_property
    def pairs(self) -> list[tuple[Node, Node, Node]]:
        return [(m["pair"][0], m["key"][0], m["value"][0]) for m in self._matches("pairs")]

    @cached_property
    def fields(self) -> dict[str, list[Node]]:
        """Class field name -> the values it is initialised with (`static TABLE = 'x'`)."""
        out: dict[str, list[Node]] = {}
        for match in self._matches("fields"):
            out.setdefault(n.text(match["name"][0]), []).append(match["value"][0])
        return out

    @cached_property
    def references(self) -> Counter[str]:
        """How often each name appears as an identifier (declarations included)."""
        return Counter(n.text(m["id"][0]) for m in self._matches("identifiers"))

    def _file_private(self, decl: Node) -> bool:
        """A module-level `const` that no `export` reaches: only this file can use it."""
        statement = self.parents.parent(decl)
        holder = self.parents.parent(statement) if statement is not None else None
        return holder is not None and holder.type == "program" and not self.exports_names

    def _module_level(self, decl: Node) -> bool:
        """A module-level `const`, exported or not."""
        statement = self.parents.parent(decl)
        holder = self.parents.parent(statement) if statement is not None else None
        if holder is not None and holder.type == "export_statement":
            holder = self.parents.parent(holder)
        return holder is not None and holder.type == "program"

    @cached_property
    def exports_names(self) -> bool:
        # `export { X }` or `export default X`: be conservative about every constant in the file
        return bool(self._matches("exports"))

    @cached_property
    def calls(self) -> dict[str, list[Node]]:
        """Callee name -> the arguments of each call to it in the file: `f(...)` and `x.f(...)`."""
        out: dict[str, list[Node]] = {}
        for match in self._matches("calls"):
            callee = match["call"][0].child_by_field_name("function")
            args = match["call"][0].child_by_field_name("arguments")
            if callee is None or args is None or args.type != "arguments":
                continue
            if callee.type == "member_expression":
                callee = callee.child_by_field_name("property")
            elif callee.type != "identifier":
                continue
            if callee is not None:
                out.setdefault(n.text(callee), []).append(args)
        return out

    # -- bindings ---------------------------------------------------------

    def binding(self, name: str, at: Node) -> Node | None:
        """The innermost declarator of `name` whose scope encloses `at`."""
        best: Node | None = None
        best_scope: Node | None = None
        for decl in self.declarators(name):
            scope = self._scopes.get(decl.id)
            if scope is None:  # found once per declarator: a file asks for its client at every call
                scope = self._scopes[decl.id] = self.parents.enclosing_scope(self.parents.parent(decl) or decl)
            if not n.contains(scope, at):
                continue
            if best_scope is None or n.contains(best_scope, scope):
                best, best_scope = decl, scope
        return best

    def is_const(self, decl: Node) -> bool:
        parent = self.parents.parent(decl)
        return parent is not None and parent.type == "lexical_declaration" and parent.child(0) is not None and (
            parent.child(0).type == "const"  # type: ignore[union-attr]
        )

    def param_owner(self, name: str, at: Node) -> Node | None:
        for anc in self.parents.ancestors(at):
            if anc.type in n.FUNCTIONS and n.parameter_index(anc, name) is not None:
                return anc
        return None

    # -- resolution -------------------------------------------------------

    def table(self, arg: Node, at: Node, depth: int = 0) -> TableArg:
        """How the table argument `arg` of the call at `at` is known."""
        lit = n.string_literal(arg)
        if lit is not None:
            return TableArg(lit.value, TableSource.LITERAL, span=lit.content_span)
        node = n.unwrap(arg)
        code = " ".join(n.text(node).split())
        if depth > _MAX_DEPTH:
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"expression `{code}`",))
        if node.type == "identifier":
            return self._identifier(n.text(node), at, depth)
        if node.type in ("member_expression", "subscript_expression"):
            return self._member(node, at, depth)
        if node.type in ("binary_expression", "ternary_expression"):
            return self._alternatives(node, at, depth)
        if node.type == "template_string":
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"template literal with substitutions `{code}`",))
        return TableArg(None, TableSource.DYNAMIC, reasons=(f"expression `{code}`",))

    def identifier(self, name: str, at: Node) -> TableArg:
        """How a variable named `name`, read at `at`, is known (a shorthand property's value)."""
        return self._identifier(name, at, 0)

    def rebound(self, name: str, at: Node, decl: Node | None) -> bool:
        """Whether a loop variable (`for (const x of ...)`, `for (x in ...)`) or a `catch (x)`
        between `at` and the declaration binds `name` again: the name is then not the constant."""
        stop = self.parents.enclosing_scope(self.parents.parent(decl) or decl) if decl is not None else None
        for anc in self.parents.ancestors(at):
            if stop is not None and anc == stop:
                return False
            if anc.type == "for_in_statement":
                left = anc.child_by_field_name("left")
                body = anc.child_by_field_name("body")
                if left is not None and body is not None and n.contains(body, at) and any(x == name for x, _ in n._pattern_names(left)):
                    return True
            elif anc.type == "catch_clause":
                parameter = anc.child_by_field_name("parameter")
                if parameter is not None and any(x == name for x, _ in n._pattern_names(parameter)):
                    return True
        return False

    def _identifier(self, name: str, at: Node, depth: int) -> TableArg:
        owner = self.param_owner(name, at)
        decl = self.binding(name, at)
        if self.rebound(name, at, decl):
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"`{name}` is bound again by a loop or a catch clause",))
        if owner is not None and (decl is None or not n.contains(owner, decl)):
            return self._parameter(name, owner, depth)
        if decl is None:
            if name in self.imports:
                return self._imported(name, [])
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"`{name}` is global: not defined or imported in this file",))
        value = decl.child_by_field_name("value")
        target = decl.child_by_field_name("name")
        if name in self.imports and value is not None and required(value) is not None:
            return self._imported(name, [])  # `const { POSTS } = require('./tables')`
        if value is None or target is None or target.type != "identifier":
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"`{name}` is destructured or has no value",))
        inner = self.table(value, decl, depth + 1)
        if self.is_const(decl):
            if inner.certain:
                lit = n.string_literal(value)
                if lit is not None and lit.content_span is not None and self._file_private(decl):
                    return TableArg(
                        inner.name,
                        TableSource.CONSTANT,
                        binding=lit.content_span,
                        binding_refs=self.references[name] - 1,
                    )
                if lit is not None and self._module_level(decl):
                    # other modules may import it: the link pass finds it, and settles it project-wide
                    return TableArg(inner.name, TableSource.CONSTANT, link=("", name))
                return TableArg(inner.name, TableSource.CONSTANT)
            return TableArg(None, TableSource.DYNAMIC, candidates=inner.candidates, reasons=inner.reasons)
        candidates = list(inner.candidates) if not inner.certain else [inner.name]
        return TableArg(
            None,
            TableSource.DYNAMIC,
            candidates=_unique(c for c in candidates if c),
            reasons=(f"`{name}` is a variable (let/var), not a constant", *inner.reasons),
        )

    @cached_property
    def exported_functions(self) -> dict[str, tuple[str, ...]]:
        """Module functions other modules can import, and the names they are exported under
        (`export function f`, `export { f as g }`, `module.exports = { f }`)."""
        facts = module_facts(self.root)
        out: dict[str, list[str]] = {}
        values = [*facts.exports.items()]
        values += [(key, member) for _, value in facts.exports.items() for key, member in value.members]
        for exported, value in values:
            local = value.function or (value.ref[0] if len(value.ref) == 1 else None)
            if local is not None and local in facts.locals and facts.locals[local].function:
                out.setdefault(local, []).append(exported)
        return {name: tuple(dict.fromkeys(names)) for name, names in out.items()}

    @cached_property
    def imports(self) -> dict[str, Import]:
        return imports_of(self.root)

    def _imported(self, name: str, path: list[str]) -> TableArg:
        """A name bound by an import: left for the link pass, which reads the other module."""
        imp = self.imports[name]
        shown = ".".join([name, *path])
        return TableArg(
            None,
            TableSource.DYNAMIC,
            reasons=(f"`{shown}` is imported from '{imp.specifier}'",),
            link=(imp.specifier, imp.imported, *path),
        )

    def _parameter(self, name: str, fn: Node, depth: int) -> TableArg:
        """A parameter's candidates: its default and what each call site passes, each resolved as
        a table argument is, so `count(INVOICE_TABLE)` lists the constant's table."""
        key = (name, fn.id, depth)
        if key not in self._parameters:  # helpers passing a parameter on would otherwise multiply call sites
            self._parameters[key] = self._parameter_uncached(name, fn, depth)
        return self._parameters[key]

    def _parameter_uncached(self, name: str, fn: Node, depth: int) -> TableArg:
        fname = n.function_name(fn, self.parents)
        given: list[Node] = [default for pname, default in n.parameter_names(fn) if pname == name and default is not None]
        index = n.parameter_index(fn, name)
        key = n.destructured_key(fn, index, name) if index is not None else None
        if fname is not None and index is not None:
            for args in self.calls.get(fname, ()):
                passed = n.arguments(args)
                if index < len(passed):
                    arg = n.unwrap(passed[index])
                    if key is not None:  # `useRealtime({ table })` called as `useRealtime({ table: 'x' })`
                        value = n.object_value(arg, key) if arg.type == "object" else None
                        if value is not None:
                            given.append(value)
                        continue
                    given.append(passed[index])
        resolved = [self.table(arg, arg, depth + 1) for arg in given]
        candidates = [c for arg in resolved for c in _names(arg)]
        links = [link for arg in resolved for link in ((arg.link,) if arg.link else ()) + arg.candidate_links]
        owner = f"`{fname}`" if fname else "an anonymous function"
        return TableArg(
            None,
            TableSource.DYNAMIC,
            candidates=_unique(candidates),
            reasons=(f"parameter `{name}` of {owner}",),
            candidate_links=tuple(dict.fromkeys(links)),
            # only a helper other modules can import has callers elsewhere for the link pass to find
            parameter=((fname, index, key) if key is not None else (fname, index))
            if fname is not None and index is not None and fname in self.exported_functions
            else None,
            exported_as=self.exported_functions.get(fname, ()) if fname is not None else (),
        )

    def _member(self, node: Node, at: Node, depth: int) -> TableArg:
        path = n.member_path(node)
        code = " ".join(n.text(node).split())
        if path is None:
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"expression `{code}`",))
        if any(code.startswith(marker) for marker in _ENV_MARKERS):
            return TableArg(None, TableSource.DYNAMIC, reasons=(f"environment variable `{code}`",))
        if path[0] != "this":
            decl = self.binding(path[0], at)
            value = decl.child_by_field_name("value") if decl is not None else None
            bound = decl is None or (value is not None and required(value) is not None)
            if bound and path[0] in self.imports and self.param_owner(path[0], at) is None:
                return self._imported(path[0], path[1:])
            if decl is not None and value is not None and self.is_const(decl):
                found = _follow(_unfreeze(n.unwrap(value)), path[1:])
                lit = n.string_literal(found) if found is not None else None
                if lit is not None:
                    link = ("", *path) if self._module_level(decl) else ()
                    return TableArg(lit.value, TableSource.CONSTANT, link=link)
        if len(path) == 2 and (path[0] == "this" or path[0][:1].isupper()) and path[1] in self.fields:
            literals = [n.string_literal(v) for v in self.fields[path[1]]]
            names = tuple(dict.fromkeys(lit.value for lit in literals if lit is not None))
            if len(literals) == 1 and literals[0] is not None:
                return TableArg(literals[0].value, TableSource.CONSTANT)
            return TableArg(
                None, TableSource.DYNAMIC, candidates=names, reasons=(f"class field `{code}` is initialised in several places",)
            )
        return TableArg(
            None,
            TableSource.DYNAMIC,
            candidates=self._config_candidates(path),
            reasons=(f"config property `{code}`",),
        )

    def _config_candidates(self, path: list[str]) -> tuple[str, ...]:
        """Literal defaults for `...tables.posts`: pairs `posts: '...'` inside a `tables: {...}` object."""
        last = path[-1]
        parent_key = path[-2] if len(path) >= 2 and path[-2] != "this" else None
        out: list[str] = []
        for pair, key, value in self.pairs:
            if n.property_name(key) != last:
                continue
            lit = n.string_literal(value)
            if lit is None:
                continue
            if parent_key is not None:
                obj = self.parents.parent(pair)
                holder = self.parents.parent(obj) if obj is not None else None
                hkey = holder.child_by_field_name("key") if holder is not None and holder.type == "pair" else None
                if hkey is None or n.property_name(hkey) != parent_key:
                    continue
            out.append(lit.value)
        return _unique(out)

    def _alternatives(self, node: Node, at: Node, depth: int) -> TableArg:
        """`process.env.X ?? 'name'`, `a || 'b'`, `cond ? 'a' : 'b'`."""
        code = " ".join(n.text(node).split())
        branches: list[Node] = []
        if node.type == "ternary_expression":
            branches = [c for c in (node.child_by_field_name("consequence"), node.child_by_field_name("alternative")) if c]
        else:
            op = node.child_by_field_name("operator")
            if op is None or n.text(op) not in ("??", "||"):
                return TableArg(None, TableSource.DYNAMIC, reasons=(f"expression `{code}`",))
            branches = [c for c in (node.child_by_field_name("left"), node.child_by_field_name("right")) if c]
        candidates: list[str] = []
        reasons: list[str] = []
        for branch in branches:
            inner = self.table(branch, at, depth + 1)
            if inner.certain and inner.name:
                candidates.append(inner.name)
            else:
                candidates.extend(inner.candidates)
                reasons.extend(inner.reasons)
        env = next((m for m in _ENV_MARKERS if m in code), None)
        lead = f"environment override `{code}`" if env else f"expression `{code}`"
        return TableArg(
            None,
            TableSource.DYNAMIC,
            candidates=_unique(candidates),
            reasons=_unique([lead, *(r for r in reasons if not r.startswith("environment variable"))]),
        )


def _unfreeze(node: Node) -> Node:
    """`Object.freeze({...})` is the object itself, for reading its keys."""
    if node.type == "call_expression":
        func = node.child_by_field_name("function")
        args = n.arguments(node.child_by_field_name("arguments"))
        if func is not None and n.text(func) == "Object.freeze" and len(args) == 1:
            return n.unwrap(args[0])
    return node


def _follow(obj: Node, keys: list[str]) -> Node | None:
    node: Node | None = obj
    for key in keys:
        if node is None or node.type != "object":
            return None
        node = n.object_value(node, key)
        node = _unfreeze(n.unwrap(node)) if node is not None else None
    return node


def _names(arg: TableArg) -> tuple[str, ...]:
    """The table an argument names, or the tables it may name."""
    return (arg.name,) if arg.certain and arg.name else arg.candidates


def _unique(items) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    return tuple(dict.fromkeys(items))
