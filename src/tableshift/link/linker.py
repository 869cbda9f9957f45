"""The project-wide link pass: a table name imported from another module, followed to its string.

Per-file scans leave a `link` on each table argument bound to an import: the module specifier,
the imported name and a member path. The linker follows it through re-exports, namespaces and
CommonJS, reading each module it reaches once per run (never from the cache: an edit to a
constants module alone changes every verdict that depends on it). Every failure is a reason.
"""

from __future__ import annotations

import os

from dataclasses import dataclass
from pathlib import Path

from tableshift.link.facts import Import, ModuleFacts, Value, module_facts
from tableshift.link.modules import Modules, Unresolved
from tableshift.link.pyfacts import PREFIX
from tableshift.memo import saw
from tableshift.model import Span

_MAX_STEPS = 64


@dataclass(frozen=True, slots=True)
class Resolved:
    """A string constant: its value, and where its literal stands."""

    text: str
    file: Path
    span: Span | None
    via: str  # `TABLES.ISSUES` in src/constants.ts: for reasons and reports
    name: str = ""  # TABLES.ISSUES


class Linker:
    def __init__(self, root: Path, max_size: int = 2_000_000) -> None:
        self.max_size = max_size  # --max-file-size: no module is read past it
        self.root = root.resolve()
        self.cwd = Path.cwd().resolve()
        self.modules = Modules(self.root)
        self._facts: dict[Path, ModuleFacts | str] = {}

    def resolve(self, importer: Path, link: tuple[str, ...]) -> Resolved | str:
        """The string that `link` (specifier, imported name, member path...) names, or why not."""
        try:
            module, value, shown = self._follow(importer, link)
        except Unresolved as exc:
            return str(exc)
        if value.text is None:
            what = "an object" if value.members else "a function" if value.function else "not a string constant"
            return f"{shown} in '{self.show(module)}' is {what}"
        return Resolved(value.text, module, value.span, f"{shown} in {self.show(module)}", shown.strip("`"))

    def target(self, importer: Path, link: tuple[str, ...]) -> tuple[Path, Value] | None:
        """What `link` names, whatever it is (a string, an object, a function), and its module."""
        try:
            module, value, _ = self._follow(importer, link)
        except Unresolved:
            return None
        return module, value

    def export_target(self, module: Path, name: str) -> tuple[Path, Value] | None:
        """What `module` exports as `name`."""
        try:
            found, value, _ = self._export(module, name, (), steps=[0], seen=set())
        except Unresolved:
            return None
        return found, value

    def read(self) -> list[tuple[Path, ModuleFacts]]:
        """The modules this run has read facts of (each once)."""
        return [(path, facts) for path, facts in list(self._facts.items()) if isinstance(facts, ModuleFacts)]

    def local_target(self, module: Path, name: str, path: tuple[str, ...]) -> tuple[Path, Value] | None:
        """What a name used inside `module` (its own constant, or one it imports) names."""
        try:
            facts = self.facts(module)
            found, value, _ = self._local(module, facts, name, path, steps=[0], seen=set())
        except Unresolved:
            return None
        return found, value

    def locate(self, importer: Path, link: tuple[str, ...]) -> tuple[Path, str] | None:
        """The module and local name of the function `link` names (a helper called from another file)."""
        try:
            module, value, _ = self._follow(importer, link)
        except Unresolved:
            return None
        return (module, value.function) if value.function else None

    # -- following names ----------------------------------------------------

    def _follow(self, importer: Path, link: tuple[str, ...]) -> tuple[Path, Value, str]:
        specifier, imported, *path = link
        return self._import(importer.resolve(), Import("", specifier, imported), tuple(path), steps=[0], seen=set())

    def _import(self, importer: Path, imp: Import, path: tuple[str, ...], *, steps: list[int], seen: set) -> tuple[Path, Value, str]:  # type: ignore[type-arg]
        if imp.specifier.startswith(PREFIX):
            module = self.modules.resolve_python(importer, imp.specifier[len(PREFIX) :])
            if imp.imported != "*" and module.name == "__init__.py":
                # `from app.db import tables`: a submodule of the package, unless the package defines it
                if imp.imported not in self.facts(module).exports and imp.imported not in self.facts(module).imports:
                    sub = Import("", f"{imp.specifier}.{imp.imported}", "*")
                    return self._import(importer, sub, path, steps=steps, seen=seen)
        else:
            module = self.modules.resolve(importer, imp.specifier)
        if imp.imported == "*":
            if not path:
                raise Unresolved(f"'{imp.specifier}' is a whole module, not a string")
            return self._export(module, path[0], path[1:], steps=steps, seen=seen)
        return self._export(module, imp.imported, path, steps=steps, seen=seen)

    def _export(self, module: Path, name: str, path: tuple[str, ...], *, steps: list[int], seen: set) -> tuple[Path, Value, str]:  # type: ignore[type-arg]
        key = (module, name, path)
        if key in seen:
            raise Unresolved(f"import cycle through '{self.show(module)}'")
        seen.add(key)
        steps[0] += 1
        if steps[0] > _MAX_STEPS:
            raise Unresolved("too many re-exports to follow")
        facts = self.facts(module)
        if name == "default" and "default" not in facts.exports and facts.commonjs:
            return self._member(module, facts, Value(members=tuple(facts.exports.items())), path, name, steps=steps, seen=seen)
        if name in facts.exports:
            return self._member(module, facts, facts.exports[name], path, name, steps=steps, seen=seen)
        if module.suffix == ".py" and name in facts.imports:  # every name a Python module binds is importable
            return self._import(module, facts.imports[name], path, steps=steps, seen=seen)
        blocked: Unresolved | None = None
        for spec in facts.star:
            if name == "default":
                break  # `export *` never re-exports a default
            try:
                # each branch with what was seen on the way here: a cycle in one branch does not
                # hide the name a sibling exports
                return self._import(module, Import("", spec, name), path, steps=steps, seen=set(seen))
            except Unresolved as exc:
                if "too many re-exports" in str(exc) or "outside" in str(exc):
                    raise
                if "cycle" in str(exc):
                    blocked = blocked or exc
                continue
        if blocked is not None:
            raise blocked
        raise Unresolved(f"'{self.show(module)}' exports no `{name}`")

    def _member(self, module: Path, facts: ModuleFacts, value: Value, path: tuple[str, ...], shown: str, *, steps: list[int], seen: set) -> tuple[Path, Value, str]:  # type: ignore[type-arg]
        if value.ref:
            return self._local(module, facts, value.ref[0], (*value.ref[1:], *path), steps=steps, seen=seen)
        for index, key in enumerate(path):
            if key == "value" and value.text is not None and index == len(path) - 1:
                break  # `Tables.QUEUE.value`: a StrEnum member's value is its string
            inner = value.member(key)
            if inner is None:
                raise Unresolved(f"`{'.'.join((shown, *path[: index + 1]))}` is not defined in '{self.show(module)}'")
            if inner.ref:
                return self._local(module, facts, inner.ref[0], (*inner.ref[1:], *path[index + 1 :]), steps=steps, seen=seen)
            value = inner
        return module, value, f"`{'.'.join((shown, *path))}`"

    def _local(self, module: Path, facts: ModuleFacts, name: str, path: tuple[str, ...], *, steps: list[int], seen: set) -> tuple[Path, Value, str]:  # type: ignore[type-arg]
        """A name used inside `module`: its own constant, or one it imports."""
        if name in facts.locals:
            key = (module, f"\0local:{name}", path)
            if key in seen:
                raise Unresolved(f"`{name}` refers to itself in '{self.show(module)}'")
            seen.add(key)
            return self._member(module, facts, facts.locals[name], path, name, steps=steps, seen=seen)
        if name in facts.imports:
            return self._import(module, facts.imports[name], path, steps=steps, seen=seen)
        raise Unresolved(f"`{name}` is not a constant of '{self.show(module)}'")

    # -- modules --------------------------------------------------------------

    def facts(self, module: Path) -> ModuleFacts:
        """A module's facts, read once per run."""
        cached = self._facts.get(module)
        if isinstance(cached, str):
            raise Unresolved(cached)
        if cached is not None:
            return cached
        try:
            found = _read_facts(module, self.max_size)
        except Unresolved as exc:
            self._facts[module] = str(exc)
            raise
        self._facts[module] = found
        return found

    def show(self, path: Path) -> str:
        """A path as reports show files: relative to the current directory (else to the repository)."""
        for base in (self.cwd, self.root):
            try:
                return path.relative_to(base).as_posix()
            except ValueError:
                continue
        return str(path)


def _read_facts(module: Path, max_size: int = 2_000_000) -> ModuleFacts:
    from tree_sitter import Parser

    from tableshift.discover import language_of
    from tableshift.scan.typescript import grammar

    language = language_of(module)
    if language is None:
        raise Unresolved(f"'{module.name}' is not a module tableshift reads")
    data = read_bounded(module, max_size)
    if isinstance(data, str):
        raise Unresolved(f"cannot read '{module.name}': {data}")
    if language in ("vue", "svelte", "astro"):
        return _component_facts(data, language)
    if language == "python":
        import tree_sitter_python
        from tree_sitter import Language

        from tableshift.link import pyfacts

        return pyfacts.module_facts(Parser(Language(tree_sitter_python.language())).parse(data).root_node)
    tree = Parser(grammar(language).language).parse(data)
    return module_facts(tree.root_node)


def _component_facts(data: bytes, language: str) -> ModuleFacts:
    """A component's exports (Svelte `<script context="module">`, a Vue `<script>`): its scripts' facts, merged."""
    from tree_sitter import Parser

    from tableshift.scan import components
    from tableshift.scan.typescript import grammar

    merged = ModuleFacts()
    for unit in components.units(data, language):
        root = Parser(grammar(unit.grammar).language).parse(components.masked(data, unit.blocks)).root_node
        facts = module_facts(root)
        merged.imports.update(facts.imports)
        merged.exports.update(facts.exports)
        merged.locals.update(facts.locals)
        merged.star.extend(facts.star)
    return merged


def read_bounded(path: Path, limit: int) -> bytes | str:
    """A regular file's bytes, or why they are not read: never past `limit` bytes (a sparse
    gigabyte, a device or a FIFO committed as a module costs nothing)."""
    import errno
    import stat

    from tableshift.fsutil import read_fd

    saw(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # unbuffered: the link pass reads every file
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):  # refused as `open()` refuses it
                return os.strerror(errno.EISDIR)
            if not stat.S_ISREG(info.st_mode):
                return "not a regular file"
            if info.st_size > limit:
                return f"larger than {limit:,} bytes (--max-file-size)"
            data = read_fd(fd, info.st_size, limit + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        return exc.strerror or "cannot be read"
    if len(data) > limit:
        return f"larger than {limit:,} bytes (--max-file-size)"
    return data
