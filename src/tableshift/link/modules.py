"""Module resolution as TypeScript and bundlers do it: relative paths, tsconfig paths, workspaces.

Every answer is a file inside the repository, or the reason there is none; nothing here guesses.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tableshift.errors import UsageError
from tableshift.memo import saw

# The order TypeScript probes in, then plain JavaScript.
EXTENSIONS = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")
_JS_TO_TS = {".js": (".ts", ".tsx"), ".jsx": (".tsx",), ".mjs": (".mts",), ".cjs": (".cts",)}
_CONFIGS = ("tsconfig.json", "jsconfig.json")
_MAX_EXTENDS = 16


class Unresolved(Exception):
    """Why a specifier leads to no file of the repository."""


@dataclass(frozen=True, slots=True)
class PathsConfig:
    """What one tsconfig (with its `extends`) says about module names."""

    source: Path
    base_url: Path | None
    paths: tuple[tuple[str, tuple[str, ...], Path], ...]  # pattern, substitutions, the folder they are relative to
    error: str | None = None


@dataclass(slots=True)
class Modules:
    """Resolves specifiers for files of one repository; remembers configs and packages it read."""

    root: Path
    _configs: dict[Path, PathsConfig | None] = field(default_factory=dict)
    _packages: dict[Path, dict[str, Path]] = field(default_factory=dict)  # by workspace root
    _resolved: dict[tuple[Path, str], Path | Unresolved] = field(default_factory=dict)

    # -- the entry point ----------------------------------------------------

    def resolve(self, importer: Path, specifier: str) -> Path:
        """The file `specifier` names when `importer` imports it; raises Unresolved with the reason.
        Remembered per folder and specifier: a constant referenced from 100,000 places resolves once."""
        key = (importer.parent, specifier)
        known = self._resolved.get(key)
        if known is None:
            try:
                known = self._resolve(importer, specifier)
            except Unresolved as exc:
                known = exc
            self._resolved[key] = known
        if isinstance(known, Unresolved):
            raise Unresolved(str(known))
        return known

    def _resolve(self, importer: Path, specifier: str) -> Path:
        if specifier.startswith(("./", "../")) or specifier in (".", ".."):
            base = Path(os.path.normpath(importer.parent / specifier))
            if not base.is_relative_to(self.root):
                raise Unresolved(f"'{specifier}' points outside the repository")
            return self._inside(self._probe(base), specifier)
        if specifier.startswith("/"):
            raise Unresolved(f"'{specifier}' is an absolute path")
        config = self.config_of(importer.parent)
        if config is not None and config.error is not None:
            raise Unresolved(config.error)
        if config is not None:
            for pattern, substitutions, base in config.paths:
                star = _match(pattern, specifier)
                if star is None:
                    continue
                for sub in substitutions:
                    candidate = base / sub.replace("*", star)
                    try:
                        return self._inside(self._probe(candidate), specifier)
                    except Unresolved as exc:
                        if "outside the repository" in str(exc):
                            raise
                raise Unresolved(f"'{specifier}' matches paths '{pattern}' in {self._show(config.source)}, but no file does")
            if config.base_url is not None:
                try:
                    return self._inside(self._probe(config.base_url / specifier), specifier)
                except Unresolved as exc:
                    if "outside the repository" in str(exc):
                        raise
        package = self._package(importer, specifier)
        if package is not None:
            return package
        raise Unresolved(f"'{specifier}' is a package outside the repository")

    def resolve_python(self, importer: Path, dotted: str) -> Path:
        """A Python module name as the importer's package roots (or the repository, or src/) see it."""
        level = len(dotted) - len(dotted.lstrip("."))
        parts = [p for p in dotted[level:].split(".") if p]
        if level:
            base = importer.parent
            for _ in range(level - 1):
                base = base.parent
            roots = [base]
        else:
            roots = list(dict.fromkeys([_package_root(importer.parent), self.root, self.root / "src"]))
        for root in roots:
            target = root.joinpath(*parts)
            for candidate in (target.with_name(target.name + ".py") if parts else None, target / "__init__.py"):
                if candidate is not None and _is_file(candidate):
                    return self._inside(candidate, dotted)
        raise Unresolved(f"no module '{dotted}' in the project (looked in {', '.join(self._show(r) or '.' for r in roots)})")

    # -- files ------------------------------------------------------------

    def _probe(self, base: Path) -> Path:
        """`./x` as TypeScript finds it: the file, x.ts ... x.cjs, `.js` naming `.ts`, x/index.*."""
        suffix = base.suffix
        if suffix in EXTENSIONS or suffix in (".vue", ".svelte", ".astro"):
            if _is_file(base):
                return base
            for alternative in _JS_TO_TS.get(suffix, ()):
                if _is_file(base.with_suffix(alternative)):
                    return base.with_suffix(alternative)
        for ext in EXTENSIONS:
            candidate = base.with_name(base.name + ext)
            if _is_file(candidate):
                return candidate
        if _is_dir(base):
            for ext in EXTENSIONS:
                candidate = base / f"index{ext}"
                if _is_file(candidate):
                    return candidate
        raise Unresolved(f"no file '{self._show(base)}' (tried {', '.join(EXTENSIONS)} and index files)")

    def _inside(self, path: Path, specifier: str) -> Path:
        real = path.resolve()
        if not real.is_relative_to(self.root):
            raise Unresolved(f"'{specifier}' points outside the repository")
        return real

    def _show(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- tsconfig / jsconfig --------------------------------------------------

    def config_of(self, folder: Path) -> PathsConfig | None:
        """The nearest tsconfig.json or jsconfig.json at or above `folder`, inside the repository."""
        folder = folder.resolve()
        chain: list[Path] = []
        current: Path | None = folder
        found: PathsConfig | None = None
        while current is not None and current.is_relative_to(self.root):
            if current in self._configs:
                found = self._configs[current]
                break
            chain.append(current)
            own = next((current / name for name in _CONFIGS if _is_file(current / name)), None)
            if own is not None:
                found = self._load(own)
                break
            current = current.parent if current != self.root else None
        for visited in chain:
            self._configs[visited] = found
        return found

    def _load(self, path: Path) -> PathsConfig:
        try:
            base_url, paths = _options(path, self.root)
        except Unresolved as exc:
            return PathsConfig(path, None, (), error=f"{self._show(path)}: {exc}")
        return PathsConfig(path, base_url, paths)

    # -- workspace packages ------------------------------------------------------

    def _package(self, importer: Path, specifier: str) -> Path | None:
        packages = self._workspace_packages(self._workspace_root(importer.parent))
        parts = specifier.split("/")
        for size in (2, 1) if specifier.startswith("@") else (1,):
            name = "/".join(parts[:size])
            folder = packages.get(name)
            if folder is None:
                continue
            rest = "/".join(parts[size:])
            return self._package_entry(folder, rest, specifier)
        return None

    def _package_entry(self, folder: Path, rest: str, specifier: str) -> Path:
        if rest:
            for base in (folder / rest, folder / "src" / rest):
                try:
                    return self._inside(self._probe(base), specifier)
                except Unresolved:
                    continue
            raise Unresolved(f"'{specifier}': no file '{rest}' in workspace package {self._show(folder)}")
        manifest = _json(folder / "package.json")
        entries: list[str] = []
        exports = manifest.get("exports")
        if isinstance(exports, str):
            entries.append(exports)
        elif isinstance(exports, dict):
            dot = exports.get(".", exports)
            for key in ("types", "import", "default", "require"):
                if isinstance(dot, dict) and isinstance(dot.get(key), str):
                    entries.append(dot[key])
            if isinstance(dot, str):
                entries.append(dot)
        entries += [manifest[k] for k in ("types", "typings", "module", "main", "source") if isinstance(manifest.get(k), str)]
        for entry in [*entries, "src/index", "index"]:
            try:
                return self._inside(self._probe(folder / entry), specifier)
            except Unresolved:
                continue
        raise Unresolved(f"'{specifier}': workspace package {self._show(folder)} has no entry file")

    def _workspace_root(self, folder: Path) -> Path:
        """The nearest folder declaring workspaces (package.json `workspaces`, pnpm-workspace.yaml),
        else the repository: a monorepo nested in a larger repository still finds its packages."""
        current = folder.resolve()
        while current.is_relative_to(self.root):
            if _is_file(current / "pnpm-workspace.yaml") or "workspaces" in _json(current / "package.json"):
                return current
            if current == self.root:
                break
            current = current.parent
        return self.root

    def _workspace_packages(self, base: Path) -> dict[str, Path]:
        """Package name -> folder, for every package.json of the workspaces declared at `base`."""
        if base in self._packages:
            return self._packages[base]
        found: dict[str, Path] = {}
        root_manifest = _json(base / "package.json")
        patterns: list[str] = []
        workspaces = root_manifest.get("workspaces")
        if isinstance(workspaces, dict):
            workspaces = workspaces.get("packages")
        if isinstance(workspaces, list):
            patterns += [w for w in workspaces if isinstance(w, str)]
        patterns += _pnpm_workspaces(base / "pnpm-workspace.yaml")
        patterns += ["packages/*", "apps/*", "libs/*", "packages/*/*"]
        for pattern in dict.fromkeys(patterns):
            pattern = pattern.strip().rstrip("/")
            if not pattern or pattern.startswith(("!", "/")) or ".." in pattern or "**" in pattern:
                continue  # negations, absolute and recursive globs: not workspace folders this reads
            for manifest in _glob_manifests(base, pattern):
                name = _json(manifest).get("name")
                folder = manifest.parent.resolve()
                if isinstance(name, str) and folder.is_relative_to(self.root):
                    found.setdefault(name, folder)
        self._packages[base] = found
        return found


_GLOB_BUDGET = 20_000  # folders one workspace pattern may visit
_GLOB_LEVELS = 8


def _glob_manifests(base: Path, pattern: str) -> list[Path]:
    """`<pattern>/package.json` under `base`, one folder level per segment of the pattern, never
    through a symbolic link (committed link loops, links out of the repository) and within a
    budget of folders, so no pattern makes it hang."""
    import fnmatch

    segments = [s for s in pattern.split("/") if s not in ("", ".")]
    if not segments or len(segments) > _GLOB_LEVELS:
        return []
    level = [base]
    visited = 0
    for segment in segments:
        following: list[Path] = []
        for folder in level:
            if not any(ch in segment for ch in "*?["):
                candidate = folder / segment
                if _is_dir(candidate) and not candidate.is_symlink():
                    following.append(candidate)
                continue
            try:
                saw(folder)  # a folder added or removed here changes its stamp
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                visited += 1
                if visited > _GLOB_BUDGET:
                    return []
                if entry.is_dir(follow_symlinks=False) and fnmatch.fnmatchcase(entry.name, segment) and not entry.name.startswith("."):
                    following.append(Path(entry.path))
        level = following
    out = []
    for folder in level:
        manifest = folder / "package.json"
        if _is_file(manifest) and not manifest.is_symlink():
            out.append(manifest)
    return out


def _package_root(folder: Path) -> Path:
    """The folder above the outermost package (`__init__.py`) holding `folder`: where imports start."""
    while _is_file(folder / "__init__.py") and folder.parent != folder:
        folder = folder.parent
    return folder


def _match(pattern: str, specifier: str) -> str | None:
    """What `*` stands for when `specifier` matches a tsconfig `paths` pattern, else None."""
    if "*" not in pattern:
        return "" if pattern == specifier else None
    head, _, tail = pattern.partition("*")
    if specifier.startswith(head) and specifier.endswith(tail) and len(specifier) >= len(head) + len(tail):
        return specifier[len(head) : len(specifier) - len(tail)]
    return None


def _options(path: Path, root: Path, depth: int = 0) -> tuple[Path | None, tuple[tuple[str, tuple[str, ...], Path], ...]]:
    """baseUrl and paths of a tsconfig, its `extends` applied first. `paths` are relative to the
    effective baseUrl, or without one to the config that declares them."""
    base_url, raw, declared_in = _raw_options(path, root, depth)
    relative_to = base_url or declared_in
    return base_url, tuple((pattern, subs, relative_to) for pattern, subs in raw)


def _raw_options(path: Path, root: Path, depth: int) -> tuple[Path | None, tuple[tuple[str, tuple[str, ...]], ...], Path]:
    if depth > _MAX_EXTENDS:
        raise Unresolved("`extends` goes round in a cycle")
    data = _jsonc(path)
    base_url: Path | None = None
    paths: tuple[tuple[str, tuple[str, ...]], ...] = ()
    declared_in = path.parent.resolve()
    extends = data.get("extends")
    for parent in [extends] if isinstance(extends, str) else extends if isinstance(extends, list) else []:
        if not isinstance(parent, str) or not parent.startswith((".", "/")):
            continue  # a package's config (`@tsconfig/node18`): it sets no paths of this repository
        target = (path.parent / parent).resolve()
        if not target.suffix:
            target = target.with_suffix(".json")
        if not target.is_relative_to(root):
            # an absolute path or `../` out of the repository: never read (its keys would show)
            raise Unresolved("`extends` names a config outside the repository: not read")
        if not _is_file(target):
            raise Unresolved("`extends` names a config that does not exist")
        inherited_base, inherited_paths, inherited_dir = _raw_options(target, root, depth + 1)
        base_url = inherited_base or base_url
        if inherited_paths:
            paths, declared_in = inherited_paths, inherited_dir
    options = data.get("compilerOptions")
    if isinstance(options, dict):
        if isinstance(options.get("baseUrl"), str):
            base_url = (path.parent / options["baseUrl"]).resolve()
        if isinstance(options.get("paths"), dict):
            paths = tuple(
                (pattern, tuple(s for s in subs if isinstance(s, str)))
                for pattern, subs in options["paths"].items()
                if isinstance(subs, list)
            )
            declared_in = path.parent.resolve()
    return base_url, paths, declared_in


def _jsonc(path: Path) -> dict[str, Any]:
    """tsconfig.json is JSONC: comments and trailing commas are normal."""
    import json5

    try:
        data = json5.loads(_small_text(path))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, UsageError):
        # the parser's message quotes the text it stopped at: never shown
        raise Unresolved("does not parse as JSON with comments") from None
    if not isinstance(data, dict):
        raise Unresolved("is not an object")
    return data


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_small_text(path))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, UsageError):
        return {}
    return data if isinstance(data, dict) else {}


def _small_text(path: Path) -> str:
    """A config file's text: a regular file of sane size (a committed link to /dev/zero is not one)."""
    from tableshift.fsutil import read_input

    saw(path)
    return read_input(path, "config file", limit=4 << 20).decode("utf-8")


def _pnpm_workspaces(path: Path) -> list[str]:
    """The `packages:` globs of pnpm-workspace.yaml."""
    if not _is_file(path):
        return []
    import yaml

    try:
        data = yaml.safe_load(_small_text(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError, UsageError):
        return []
    packages = data.get("packages") if isinstance(data, dict) else None
    return [p for p in packages if isinstance(p, str)] if isinstance(packages, list) else []


def _is_file(path: Path) -> bool:
    """`path.is_file()`, seen by the run memo: a module created where none was found changes the result."""
    saw(path)
    return path.is_file()


def _is_dir(path: Path) -> bool:
    saw(path)
    return path.is_dir()
