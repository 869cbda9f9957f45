"""Helpers across files: a function whose parameter reaches `.from(param)`, and the tables its
callers in other files pass it.

After every file is scanned, the helpers are known by their defining module and name. Files that
mention a helper's name followed by `(` are parsed, each call's callee is followed through its
import to the defining module (a same-named function elsewhere is another function), and its
argument is resolved as a table argument is. Each call site becomes a candidate of the helper's
query and, for the gate, a use of its own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tableshift.link.linker import Linker, Resolved
from tableshift.model import TableArg

_LANGUAGES = frozenset({"typescript", "tsx", "javascript"})


@dataclass(frozen=True, slots=True)
class Helper:
    """A helper's parameter: the module defining it, its local name, the parameter's index."""

    module: Path
    name: str
    index: int


@dataclass(frozen=True, slots=True)
class CallSite:
    """One call of a helper in another file, and what it passes."""

    helper: Helper
    file: str  # as discovery shows it
    path: Path
    start: int  # byte span of the call
    end: int
    line: int
    argument: str  # the argument's code, for reasons
    names: tuple[str, ...]  # the tables it may name
    certain: bool  # the argument is one known table
    helper_file: str  # where the helper is defined, for reasons
    broken: str | None = None  # why the argument could not be resolved


def find(sources, helpers: set[Helper], linker: Linker) -> list[CallSite]:  # type: ignore[no-untyped-def]
    """Every call of these helpers from files other than their own."""
    by_name: dict[str, set[Helper]] = defaultdict(set)
    for helper in helpers:
        by_name[helper.name].add(helper)
    # a call may use another name (`import { rows as getRows }`): any exported alias is found
    # through the import, so the byte prefilter looks for every name a helper is exported under
    names = set(by_name) | _aliases(helpers, linker)
    # a file that calls a helper names it: in the call, or in the import that renames it
    pattern = re.compile(rb"(?<![\w$])(?:" + b"|".join(re.escape(n.encode()) for n in sorted(names)) + rb")(?![\w$])")
    found: list[CallSite] = []
    for source in sources:
        if source.language not in _LANGUAGES:
            continue
        try:
            data = source.path.read_bytes()
        except OSError:
            continue
        if pattern.search(data) is None:
            continue
        found.extend(_in_file(source, data, names, linker, helpers))
    return found


def _aliases(helpers: set[Helper], linker: Linker) -> set[str]:
    out: set[str] = set()
    for helper in helpers:
        try:
            facts = linker.facts(helper.module)
        except Exception:  # noqa: BLE001 - an unreadable module has no aliases to offer
            continue
        out.update(name for name, value in facts.exports.items() if value.function == helper.name or value.ref == (helper.name,))
    out.discard("default")
    return out


def _in_file(source, data: bytes, names: set[str], linker: Linker, helpers: set[Helper]) -> list[CallSite]:  # type: ignore[no-untyped-def]
    from tree_sitter import Parser

    from tableshift.scan import ts_nodes as n
    from tableshift.scan.ts_resolve import Resolver
    from tableshift.scan.typescript import grammar

    language = grammar(source.language)
    root = Parser(language.language).parse(data).root_node
    resolver = Resolver(root, language.queries, n.Parents(root))
    out: list[CallSite] = []
    own = source.path.resolve()
    renamed = {imp.local for imp in resolver.imports.values() if imp.imported in names or imp.imported == "default"}
    for called, args_list in resolver.calls.items():
        if called not in names and called not in renamed:
            continue
        for args in args_list:
            call = resolver.parents.parent(args)
            callee = call.child_by_field_name("function") if call is not None else None
            path = n.member_path(callee) if callee is not None else None
            if call is None or path is None or path[0] not in resolver.imports:
                continue
            imp = resolver.imports[path[0]]
            located = linker.locate(own, (imp.specifier, imp.imported, *path[1:]))
            if located is None:
                continue
            for helper in helpers:
                if (helper.module, helper.name) != located or helper.module == own:
                    continue
                passed = n.arguments(args)
                if helper.index >= len(passed):
                    continue
                arg = passed[helper.index]
                out.append(_site(helper, source, call, arg, resolver.table(arg, arg), linker, own))
    return out


def _site(helper: Helper, source, call, arg, table: TableArg, linker: Linker, own: Path) -> CallSite:  # type: ignore[no-untyped-def]
    from tableshift.scan import ts_nodes as n

    code = " ".join(n.text(arg).split())
    broken = None
    if table.link:
        found = linker.resolve(own, table.link)
        if isinstance(found, Resolved):
            names, certain = (found.text,), True
        else:
            names, certain, broken = (), False, found
    elif table.certain and table.name:
        names, certain = (table.name,), True
    else:
        names, certain = table.candidates, False
    return CallSite(
        helper,
        source.display,
        own,
        call.start_byte,
        call.end_byte,
        call.start_point[0] + 1,
        code,
        tuple(names),
        certain,
        linker.show(helper.module),
        broken,
    )
