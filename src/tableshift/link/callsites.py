"""Helpers across files: a function whose parameter reaches `.from(param)`, and the tables its
callers in other files pass it.

After every file is scanned, the helpers are known by their defining module and name. Files that
mention a helper's name followed by `(` are parsed, each call's callee is followed through its
import to the defining module (a same-named function elsewhere is another function), and its
argument is resolved as a table argument is. Each call site becomes a candidate of the helper's
query and, for the gate, a use of its own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tableshift.link.linker import Linker, Resolved
from tableshift.model import TableArg

_LANGUAGES = frozenset({"typescript", "tsx", "javascript"})
_COMPONENTS = frozenset({"vue", "svelte", "astro"})


@dataclass(frozen=True, slots=True)
class Helper:
    """A helper's parameter: the module defining it, its local name, the parameter's index (and
    the property it destructures, for `useRealtime({ table })`)."""

    module: Path
    name: str
    index: int
    key: str | None = None


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


def find(sources, helpers: dict[Helper, tuple[str, ...]], linker: Linker) -> list[CallSite]:  # type: ignore[no-untyped-def]
    """Every call of these helpers (with the names they are exported under) from other files."""
    names = sorted(({h.name for h in helpers} | {alias for aliases in helpers.values() for alias in aliases}) - {"default"})
    # a default export may be imported under any name, but its importers name its module
    modules = sorted({_module_word(h.module) for h, aliases in helpers.items() if "default" in aliases} - set(names))
    words = [*names, *modules]
    if not words:
        return []
    own: dict[Path, set[str]] = defaultdict(set)
    for helper, aliases in helpers.items():
        own[helper.module].update((helper.name, *aliases))
        if "default" in aliases:
            own[helper.module].add(_module_word(helper.module))
    found: list[CallSite] = []
    for source, data, mentioned in mentions(sources, words, linker.max_size):
        if not mentioned or not mentioned - own.get(source.path.resolve(), set()):
            continue  # no helper, or only this module's own, called at home: the scan saw those
        found.extend(_in_file(source, data, set(names), linker, set(helpers)))
    return found


def mentions(sources, words: list[str], limit: int = 2_000_000):  # type: ignore[no-untyped-def]
    """Each scannable file with its bytes and the words of `words` it holds as whole identifiers:
    one pass over every file's bytes for all the words at once (Aho-Corasick, in Rust). A file
    past `limit` bytes (--max-file-size) is not read: the scan reports it."""
    from ahocorasick_rs import BytesAhoCorasick

    from tableshift.link.linker import read_bounded

    automaton = BytesAhoCorasick([word.encode() for word in words])
    for source in sources:
        if source.language not in _LANGUAGES and source.language not in _COMPONENTS and source.language != "python":
            continue
        data = read_bounded(source.path, limit)
        if isinstance(data, str):
            continue
        found = {
            words[index]
            for index, start, end in automaton.find_matches_as_indexes(data, overlapping=True)
            if not _word_byte(data, start - 1) and not _word_byte(data, end)
        }
        yield source, data, found


def _module_word(module: Path) -> str:
    """The word an import of `module` contains: its file name, or its folder's for an index file."""
    return module.parent.name if module.stem == "index" else module.stem


def _word_byte(data: bytes, index: int) -> bool:
    """Whether the byte at `index` continues an identifier (so a name found there is part of another)."""
    if index < 0 or index >= len(data):
        return False
    byte = data[index]
    return byte in _IDENTIFIER or byte >= 0x80


_IDENTIFIER = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")


def _in_file(source, data: bytes, names: set[str], linker: Linker, helpers: set[Helper]) -> list[CallSite]:  # type: ignore[no-untyped-def]
    from tree_sitter import Parser

    from tableshift.scan.typescript import grammar

    out: list[CallSite] = []
    own = source.path.resolve()
    if source.language == "python":
        from tableshift.link import pysites

        return pysites.sites(source, data, names, linker, helpers, own)
    for code, grammar_name in _modules(data, source.language):
        language = grammar(grammar_name)
        root = Parser(language.language).parse(code).root_node
        out.extend(_in_module(source, root, language, names, linker, helpers, own))
    return out


def _modules(data: bytes, language: str) -> list[tuple[bytes, str]]:
    """The code of a file, one module at a time: a component's scripts in place, others whole."""
    if language in _LANGUAGES:
        return [(data, language)]
    from tableshift.scan import components

    return [(components.masked(data, unit.blocks), unit.grammar) for unit in components.units(data, language)]


def _in_module(source, root, language, names: set[str], linker: Linker, helpers: set[Helper], own: Path) -> list[CallSite]:  # type: ignore[no-untyped-def]
    from tableshift.scan import ts_nodes as n
    from tableshift.scan.ts_resolve import Resolver

    resolver = Resolver(root, language.queries, n.Parents(root))
    out: list[CallSite] = []
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
                if helper.key is not None:  # the property the helper destructures, from an object literal
                    value = n.object_value(n.unwrap(arg), helper.key) if n.unwrap(arg).type == "object" else None
                    if value is None:
                        continue
                    arg = value
                out.append(_site(helper, source, call, arg, resolver.table(arg, arg), linker, own))
    return out


def _site(helper: Helper, source, call, arg, table: TableArg, linker: Linker, own: Path) -> CallSite:  # type: ignore[no-untyped-def]
    from tableshift.scan import ts_nodes as n

    code = " ".join(n.text(arg).split())
    broken = None
    if table.link and table.link[0]:  # a name imported from another module (not one of this module's own)
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
