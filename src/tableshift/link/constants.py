"""Constants shared across modules: every use of one, so that its literal is edited only when safe.

A table name kept in a constants module (`TABLES.content.queue`, `Metrics.Outcomes`,
`DECISIONS_TABLE`) serves every module that imports it. `patch` may change the constant's value
only when every reference to it anywhere in the scanned project is the table argument of a
call that moves to the same table in the same run; any other reference (a realtime option, a
log message, a comparison, the whole object passed somewhere, a component's markup) keeps it
as it is, and its calls go to a person.

References are found the way the link pass resolves names: a file that mentions one of the
names the constant is reachable by is parsed; each identifier bound by an import (or, in the
defining module, by its own declaration) is followed with its member path through the linker,
so a same-named constant of another module is another constant. A reference that reaches an
object holding the constant (`Object.values(TABLES)`, `{ ...TABLES }`, `const t = TABLES`)
counts as a use that is not a call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tree_sitter import Node

from tableshift.link.callsites import _COMPONENTS, _module_word, _modules, _word_byte, mentions
from tableshift.link.facts import Import, Value
from tableshift.link.linker import Linker
from tableshift.model import Origin, Span

Key = tuple[str, int]  # (defining module, resolved; its literal's first byte)
_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Use:
    """One reference to a constant, or to an object that holds it (`whole`)."""

    file: str  # as discovery shows it
    start: int
    end: int
    line: int
    code: str  # the reference as written: `TABLES.content.queue`
    whole: bool = False

    def shown(self) -> str:
        what = "the object holding it, " if self.whole else ""
        return f"{what}`{self.code}` at {self.file}:{self.line}"


@dataclass(slots=True)
class Found:
    uses: dict[Key, list[Use]] = field(default_factory=lambda: defaultdict(list))
    digests: dict[str, str] = field(default_factory=dict)  # defining module -> digest of the bytes searched


def find(sources: Sequence, origins: Iterable[Origin], linker: Linker) -> Found:  # type: ignore[type-arg]
    """Every use of these constants in the scanned files."""
    from tableshift.engine import digest

    wanted: dict[Key, Origin] = {o.key: o for o in origins}
    found = Found()
    if not wanted:
        return found
    words = sorted(_words(wanted.values(), linker))
    modules = {o.path for o in wanted.values()}
    for source, data, mentioned in mentions(sources, words, linker.max_size):
        own = source.path.resolve()
        if str(own) in modules:
            found.digests[str(own)] = digest(data)
        if not mentioned:
            continue
        for use_key, use in _in_file(source, data, own, wanted, linker):
            found.uses[use_key].append(use)
    return found


def _words(origins: Iterable[Origin], linker: Linker) -> set[str]:
    """Names a reference to one of these constants must contain: its own path's names, its
    module's word (default and namespace imports name the module), and every name a module
    read by the link pass exports it (or an object holding it) under."""
    words: set[str] = set()
    keys = set()
    for origin in origins:
        parts = origin.name.split(".")
        words.update((parts[0], parts[-1], _module_word(Path(origin.path))))
        keys.add(origin.key)
        if origin.path.endswith(".py"):
            # `import app` then `app.tables.X`, and loads by name: the packages above it, the loaders
            words.update(p.name for p in list(Path(origin.path).parents)[:4] if p.name)
            words.update(("import_module", "__import__"))
    for module, facts in linker.read():
        for name in facts.exports:
            if name in words or name == "default":
                continue
            target = linker.export_target(module, name)
            if target is not None and _reaches(linker, *target, keys):
                words.add(name)
    return {w for w in words if w and w != "default"}


def _reaches(linker: Linker, module: Path, value: Value, keys: set[Key], depth: int = 0) -> set[Key]:
    """The wanted constants `value` (of `module`) is or holds."""
    if depth > _DEPTH:
        return set()
    if value.text is not None:
        key = (str(module), value.span.start) if value.span is not None else None
        return {key} if key in keys else set()
    out: set[Key] = set()
    if value.ref:
        target = linker.local_target(module, value.ref[0], value.ref[1:])
        if target is not None:
            out |= _reaches(linker, *target, keys, depth + 1)
    for _, member in value.members:
        out |= _reaches(linker, module, member, keys, depth + 1)
    return out


# -- one file -----------------------------------------------------------------


@dataclass(slots=True)
class _Names:
    """The names of one module that may reach a wanted constant: imports, and its own constants."""

    imports: dict[str, Import]
    own: dict[str, Value]  # the defining module's own constants (empty elsewhere)


def _in_file(source, data: bytes, own: Path, wanted: dict[Key, Origin], linker: Linker) -> Iterator[tuple[Key, Use]]:  # type: ignore[no-untyped-def]
    keys = set(wanted)
    defines = str(own) in {path for path, _ in keys}
    if source.language == "python":
        import tree_sitter_python
        from tree_sitter import Language, Parser

        from tableshift.link import pyfacts

        root = Parser(Language(tree_sitter_python.language())).parse(data).root_node
        facts = pyfacts.module_facts(root)
        names = _Names(facts.imports, dict(facts.locals) if defines else {})
        yield from _references(source, root, data, own, names, keys, linker, python=True)
        yield from _python_imports_not_followed(source, root, own, keys, linker)
        yield from _python_loads_not_followed(source, root, own, keys, linker)
        return
    from tree_sitter import Parser

    from tableshift.link.facts import imports_of, module_facts
    from tableshift.scan.typescript import grammar

    imported: dict[str, Import] = {}  # every script's imports: a component's markup may use them
    for code, grammar_name in _modules(data, source.language):
        root = Parser(grammar(grammar_name).language).parse(code).root_node
        own_names = module_facts(root).locals if defines else {}
        names = _Names(imports_of(root), dict(own_names))
        imported.update(names.imports)
        yield from _references(source, root, code, own, names, keys, linker, python=False)
        yield from _loads_not_followed(source, root, own, keys, linker)
    if source.language in _COMPONENTS:
        yield from _in_markup(source, data, imported, own, keys, linker)


def _in_markup(source, data: bytes, imported: dict[str, Import], own: Path, keys: set[Key], linker: Linker) -> Iterator[tuple[Key, Use]]:  # type: ignore[no-untyped-def]
    """A component's markup may use what its scripts import: any name bound to a wanted constant
    that appears outside the scripts is a use tableshift cannot see into."""
    from tableshift.scan import components

    blanked = bytearray(data)
    for block in components.blocks(data, source.language):
        blanked[block.start : block.end] = b" " * (block.end - block.start)
    markup = bytes(blanked)
    for local, imp in imported.items():
        start = markup.find(local.encode())
        while start != -1 and (_word_byte(markup, start - 1) or _word_byte(markup, start + len(local))):
            start = markup.find(local.encode(), start + 1)
        if start == -1:
            continue
        target = linker.target(own, (imp.specifier, imp.imported))
        reached = _reaches(linker, *target, keys) if target is not None else _namespace_reaches(linker, own, imp, keys)
        line = data.count(b"\n", 0, start) + 1
        for key in reached:
            yield key, Use(source.display, start, start + len(local), line, f"{local} (in the component's markup)", whole=True)


def _loads_not_followed(source, root: Node, own: Path, keys: set[Key], linker: Linker) -> Iterator[tuple[Key, Use]]:  # type: ignore[no-untyped-def]
    """`require()` and `import()` of a module holding a wanted constant, in any shape the reference
    search does not follow (`require('./t').TABLES.X`, nested destructuring, a dynamic import):
    a use of the module as a whole, so its constants are never edited under it."""
    from tableshift.scan import ts_nodes as n

    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type == "import_require_clause":  # `import t = require('./t')`: TypeScript's CommonJS import
            source_node = node.child_by_field_name("source")
            lit = n.string_literal(source_node) if source_node is not None else None
            if lit is not None:
                reached = _namespace_reaches(linker, own, Import("", lit.value, "*"), keys)
                code = " ".join((node.text or b"").decode("utf-8", "replace").split())
                for key in reached:
                    yield key, Use(source.display, node.start_byte, node.end_byte, node.start_point[0] + 1, f"{code} (a load tableshift does not follow)", whole=True)
            continue
        if node.type != "call_expression":
            continue
        func = node.child_by_field_name("function")
        kind = func.type if func is not None else ""
        name = (func.text or b"").decode() if func is not None else ""
        if not (kind == "import" or (kind == "identifier" and name == "require")):
            continue
        args = n.arguments(node.child_by_field_name("arguments"))
        lit = n.string_literal(args[0]) if args else None
        if lit is None or (kind != "import" and _plain_require(node)):
            continue
        reached = _namespace_reaches(linker, own, Import("", lit.value, "*"), keys)
        code = " ".join((node.text or b"").decode("utf-8", "replace").split())
        for key in reached:
            yield key, Use(source.display, node.start_byte, node.end_byte, node.start_point[0] + 1, f"{code} (a load tableshift does not follow)", whole=True)


def _plain_require(call: Node) -> bool:
    """`const t = require('./t')` or `const { A, B } = require('./t')` at module level: followed."""
    decl = call.parent
    if decl is None or decl.type != "variable_declarator" or decl.child_by_field_name("value") != call:
        return False
    statement = decl.parent
    if statement is None or statement.parent is None or statement.parent.type != "program":
        return False
    target = decl.child_by_field_name("name")
    if target is None:
        return False
    if target.type == "identifier":
        return True
    return target.type == "object_pattern" and all(c.type == "shorthand_property_identifier_pattern" for c in target.named_children)


def _python_imports_not_followed(source, root: Node, own: Path, keys: set[Key], linker: Linker) -> Iterator[tuple[Key, Use]]:  # type: ignore[no-untyped-def]
    """Imports the reference search does not follow: `from m import *`, `import a.b` without an
    alias, and any import inside a function or class. Each that reaches a wanted constant's module
    is a use of it as a whole."""
    from tableshift.link.pyfacts import PREFIX, node_text

    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type not in ("import_statement", "import_from_statement"):
            continue
        nested = node.parent is not None and node.parent.type != "module"
        specs: list[str] = []
        if node.type == "import_from_statement":
            module = node.child_by_field_name("module_name")
            if module is None:
                continue
            spec = PREFIX + node_text(module).replace(" ", "")
            star = any(c.type == "wildcard_import" for c in node.children)
            if star or nested:
                specs.append(spec)
                if nested:  # `from app import tables` inside a function: the submodule too
                    specs += [f"{spec}.{node_text(c)}" for c in node.children_by_field_name("name") if c.type == "dotted_name"]
        else:
            for name in node.children_by_field_name("name"):
                # `import app` / `import app as a`: every submodule of the package is then an
                # attribute away (`app.tables.X`), and its __init__'s names too (`app.T`)
                original = name.child_by_field_name("name") if name.type == "aliased_import" else name
                if original is not None:
                    specs.append(PREFIX + node_text(original))
        reached: set[Key] = set()
        for spec in specs:
            reached |= _namespace_reaches(linker, own, Import("", spec, "*"), keys)
            reached |= _package_reaches(linker, own, spec[len(PREFIX):], keys)
        code = " ".join(node_text(node).split())
        for key in reached:
            yield key, Use(source.display, node.start_byte, node.end_byte, node.start_point[0] + 1, f"{code} (an import tableshift does not follow)", whole=True)


def _package_reaches(linker: Linker, own: Path, dotted: str, keys: set[Key]) -> set[Key]:
    """The wanted constants of modules inside the package (or the module) `dotted` names."""
    try:
        module = linker.modules.resolve_python(own, dotted)
    except Exception:  # noqa: BLE001 - a module outside the project reaches nothing of ours
        return set()
    if module.name != "__init__.py":
        return {k for k in keys if Path(k[0]) == module}
    package = module.parent
    return {k for k in keys if package in Path(k[0]).parents}


_PY_LOADERS = {"importlib.import_module", "import_module", "__import__"}


def _python_loads_not_followed(source, root: Node, own: Path, keys: set[Key], linker: Linker) -> Iterator[tuple[Key, Use]]:  # type: ignore[no-untyped-def]
    """`importlib.import_module('app.tables')` and `__import__(...)`: a module loaded by name is
    used whole; a name computed at run time could be any module, so it holds every constant."""
    from tableshift.link.pyfacts import node_text

    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "call":
            continue
        func = node.child_by_field_name("function")
        if func is None or node_text(func).replace(" ", "") not in _PY_LOADERS:
            continue
        arguments = node.child_by_field_name("arguments")
        first = next((c for c in (arguments.named_children if arguments is not None else []) if c.type != "comment"), None)
        literal = _python_string(first)
        reached = keys if literal is None else _package_reaches(linker, own, literal, keys)
        code = " ".join(node_text(node).split())
        for key in reached:
            yield key, Use(source.display, node.start_byte, node.end_byte, node.start_point[0] + 1, f"{code} (a load tableshift does not follow)", whole=True)


def _python_string(node: Node | None) -> str | None:
    """A plain string literal's text (no f-string, no concatenation), else None."""
    if node is None or node.type != "string":
        return None
    parts = [c for c in node.named_children if c.type not in ("string_start", "string_end")]
    if any(c.type != "string_content" for c in parts):
        return None
    return "".join((c.text or b"").decode("utf-8", "replace") for c in parts)


def _namespace_reaches(linker: Linker, own: Path, imp: Import, keys: set[Key]) -> set[Key]:
    """A whole module (`import * as db`) used bare: the wanted constants it exports, at any depth."""
    if imp.imported != "*" and imp.specifier.startswith("py:"):
        # `from app import tables`: `tables` may be the submodule app.tables
        return _namespace_reaches(linker, own, Import("", f"{imp.specifier}.{imp.imported}", "*"), keys)
    if imp.imported != "*":
        return set()
    out: set[Key] = set()
    try:
        module = linker.modules.resolve_python(own, imp.specifier[3:]) if imp.specifier.startswith("py:") else linker.modules.resolve(own, imp.specifier)
        facts = linker.facts(module)
    except Exception:  # noqa: BLE001 - an unresolvable module reaches nothing we can name
        return out
    for name in facts.exports:
        target = linker.target(own, (imp.specifier, "*", name))
        if target is not None:
            out |= _reaches(linker, *target, keys)
    return out


def _references(source, root: Node, data: bytes, own: Path, names: _Names, keys: set[Key], linker: Linker, *, python: bool) -> Iterator[tuple[Key, Use]]:  # type: ignore[no-untyped-def]
    bound = set(names.imports) | set(names.own)
    if not bound:
        return
    for node in _identifiers(root, bound, python=python):
        if _not_a_use(node, python=python):
            continue
        name = node.text.decode("utf-8", "surrogateescape") if node.text else ""
        path, top = _member_chain(node, python=python)
        reached, direct = _resolve(linker, own, names, name, path, keys)
        if not reached:
            continue
        code = " ".join((top.text or b"").decode("utf-8", "replace").split())
        line = top.start_point[0] + 1
        for key in reached:
            yield key, Use(source.display, top.start_byte, top.end_byte, line, code, whole=key not in direct)


def _resolve(linker: Linker, own: Path, names: _Names, name: str, path: list[str], keys: set[Key]) -> tuple[set[Key], set[Key]]:
    """The wanted constants a reference reaches, and those it names exactly (not an object holding them).

    The longest prefix of the member path that resolves counts: `TABLES.posts.length` is a use of
    `TABLES.posts`; `TABLES.hasOwnProperty(x)` one of the whole object."""
    for cut in range(len(path), -1, -1):
        prefix = tuple(path[:cut])
        if name in names.own:
            target = linker.local_target(own, name, prefix)
        else:
            imp = names.imports[name]
            target = linker.target(own, (imp.specifier, imp.imported, *prefix))
            if target is None and not prefix:
                return _namespace_reaches(linker, own, imp, keys), set()
        if target is None:
            continue
        module, value = target
        reached = _reaches(linker, module, value, keys)
        direct = {k for k in reached if value.text is not None}
        return reached, direct
    return set(), set()


def _identifiers(root: Node, bound: set[str], *, python: bool) -> Iterator[Node]:
    """Identifier nodes spelling one of `bound`, in source order, without recursion."""
    kinds = {"identifier"} if python else {"identifier", "shorthand_property_identifier"}
    encoded = {b.encode() for b in bound}
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in kinds:
            if node.text in encoded:
                yield node
            continue
        stack.extend(reversed(node.children))


_TS_DECLARES = {"import_statement", "import_specifier", "namespace_import", "import_clause", "export_specifier", "enum_declaration"}
_TS_TYPES = {"type_query", "type_annotation", "type_alias_declaration", "type_arguments", "interface_declaration"}
_PY_DECLARES = {"import_statement", "import_from_statement", "aliased_import", "dotted_name"}


def _not_a_use(node: Node, *, python: bool) -> bool:
    """The identifier declares, imports or re-exports a name; it does not use it."""
    parent = node.parent
    if parent is None:
        return False
    if python:
        if parent.type in _PY_DECLARES:
            return True
        if parent.type == "class_definition" and parent.child_by_field_name("name") == node:
            return True
        if parent.type == "assignment" and parent.child_by_field_name("left") == node:
            return True  # module constants are assigned once (else they are no constants at all)
        return False
    if parent.type in _TS_DECLARES:
        return True
    ancestor: Node | None = parent
    for _ in range(6):  # `typeof TABLES` in a type: no value is used
        if ancestor is None:
            break
        if ancestor.type in _TS_TYPES:
            return True
        ancestor = ancestor.parent
    if parent.type == "variable_declarator" and parent.child_by_field_name("name") == node:
        return True
    if parent.type == "export_statement":
        # `export default TABLES`: another name for it, whose importers are found themselves; but
        # `export = TABLES` is imported with `import x = require()`, which is not followed: a use
        return not any(c.type == "=" for c in parent.children)
    return False


def _member_chain(node: Node, *, python: bool) -> tuple[list[str], Node]:
    """The member path read off `node` (`TABLES.content.queue`), and the outermost node of it."""
    path: list[str] = []
    current = node
    while True:
        parent = current.parent
        if parent is None:
            break
        if parent.type == "non_null_expression" and not python:
            current = parent
            continue
        if python and parent.type == "attribute" and parent.child_by_field_name("object") == current:
            attr = parent.child_by_field_name("attribute")
            if attr is None:
                break
            path.append((attr.text or b"").decode("utf-8", "surrogateescape"))
        elif not python and parent.type == "member_expression" and parent.child_by_field_name("object") == current:
            prop = parent.child_by_field_name("property")
            if prop is None:
                break
            path.append((prop.text or b"").decode("utf-8", "surrogateescape"))
        elif not python and parent.type == "subscript_expression" and parent.child_by_field_name("object") == current:
            from tableshift.scan import ts_nodes as n

            index = parent.child_by_field_name("index")
            lit = n.string_literal(index) if index is not None else None
            if lit is None:
                break  # `TABLES[key]`: the object itself is used
            path.append(lit.value)
        else:
            break
        current = parent
    return path, current


# -- the verdict --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """A call whose table comes from a constant: where it stands, and whether it is ready to move."""

    file: str
    span: Span
    line: int
    ready: bool  # `auto` but for the constant
    target: str | None


def settle(origin: Origin, members: Sequence[Member], uses: Sequence[Use], *, scanned: bool) -> str | None:
    """None when the constant can be edited for these calls; else why not, naming one other use."""
    name = origin.shown()
    if not scanned:
        return f"table name comes from {name}, which is not among the scanned files: scan the whole project, or change it by hand"
    # each use finds the call it sits in by a binary search among its file's calls: linear in
    # uses and calls (a constant used from 200,000 places settles in a moment)
    from bisect import bisect_right

    spans: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for i, m in enumerate(members):
        spans[m.file].append((m.span.start, m.span.end, i))
    starts: dict[str, list[int]] = {}
    for file, found in spans.items():
        found.sort()
        starts[file] = [start for start, _, _ in found]
    others: list[Use] = []
    taken: set[int] = set()
    for use in uses:
        match = None
        in_file = spans.get(use.file) if not use.whole else None
        if in_file:
            k = bisect_right(starts[use.file], use.start) - 1
            for _ in range(64):  # enclosing spans of one file nest a few deep at most
                if k < 0:
                    break
                _, end, i = in_file[k]
                if i not in taken and use.end <= end:
                    match = i
                    break
                k -= 1
        if match is None:
            others.append(use)
        else:
            taken.add(match)
    if others:
        return f"table name comes from {name}, which is also used by {others[0].shown()}: change it by hand"
    if len(taken) != len(members):
        missing = next(m for i, m in enumerate(members) if i not in taken)
        return f"table name comes from {name}, but its use at {missing.file}:{missing.line} was not found: change it by hand"
    waiting = next((m for m in members if not m.ready), None)
    if waiting is not None:
        return f"table name comes from {name}, shared with a call that needs review ({waiting.file}:{waiting.line}): rewrite them together"
    targets = sorted({m.target or "" for m in members})
    if len(targets) != 1:
        return f"table name comes from {name}, shared by calls that move to different tables ({', '.join(targets)}): change it by hand"
    return None
