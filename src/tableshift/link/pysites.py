"""Helpers across Python modules: calls of a project function, imported from its module, and the
table each passes. Read with tree-sitter-python (error-tolerant, no recursion per nesting level)."""

from __future__ import annotations

from pathlib import Path

from tree_sitter import Node

from tableshift.link.callsites import CallSite, Helper
from tableshift.link.linker import Linker, Resolved
from tableshift.link.pyfacts import PREFIX, dotted, module_facts, node_text, value_of


def sites(source, data: bytes, names: set[str], linker: Linker, helpers: set[Helper], own: Path) -> list[CallSite]:  # type: ignore[no-untyped-def]
    import tree_sitter_python
    from tree_sitter import Language, Parser, Query, QueryCursor

    language = Language(tree_sitter_python.language())
    root = Parser(language).parse(data).root_node
    facts = module_facts(root)
    renamed = {imp.local for imp in facts.imports.values() if imp.imported in names or imp.imported == "*"}
    out: list[CallSite] = []
    query = Query(language, "(call function: [(identifier) (attribute)] @callee arguments: (argument_list) @args) @call")
    for _, match in QueryCursor(query).matches(root):
        call, callee, args = match["call"][0], match["callee"][0], match["args"][0]
        path = dotted(callee)
        if path is None or path[0] not in facts.imports or (path[-1] not in names and path[0] not in renamed):
            continue
        imp = facts.imports[path[0]]
        located = linker.locate(own, (imp.specifier, imp.imported, *path[1:]))
        if located is None:
            continue
        positional = [a for a in args.named_children if a.type not in ("keyword_argument", "comment", "list_splat", "dictionary_splat")]
        for helper in helpers:
            if (helper.module, helper.name) != located or helper.module == own or helper.index >= len(positional):
                continue
            arg = positional[helper.index]
            names_found, certain, broken = _argument(arg, facts, linker, own)
            out.append(
                CallSite(
                    helper, source.display, own, call.start_byte, call.end_byte, call.start_point[0] + 1,
                    " ".join(node_text(arg).split()), names_found, certain, linker.show(helper.module), broken,
                )  # fmt: skip
            )
    return out


def _argument(arg: Node, facts, linker: Linker, own: Path) -> tuple[tuple[str, ...], bool, str | None]:  # type: ignore[no-untyped-def]
    """The table a call site passes: a literal, a constant of its module, or one it imports."""
    value = value_of(arg)
    if value.text is not None:
        return (value.text,), True, None
    if not value.ref:
        return (), False, None
    root, *rest = value.ref
    if root in facts.imports:
        imp = facts.imports[root]
        found = linker.resolve(own, (imp.specifier, imp.imported, *rest))
    elif root in facts.locals:
        found = linker.resolve(own, (PREFIX + "." + own.stem if own.name != "__init__.py" else PREFIX + ".", root, *rest))
    else:
        return (), False, f"`{'.'.join(value.ref)}` is not a constant of this module"
    if isinstance(found, Resolved):
        return (found.text,), True, None
    return (), False, found
