"""Which files to read: git's own ignore rules inside a work tree, .gitignore files outside one."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tableshift.errors import UsageError

LANGUAGES: dict[str, str] = {
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".py": "python",
    # components: their script blocks are scanned, each with the grammar its `lang` names
    ".vue": "vue",
    ".svelte": "svelte",
    ".astro": "astro",
}
ALWAYS_SKIPPED_DIRS = frozenset({"node_modules", ".git"})


@dataclass(unsafe_hash=True, slots=True)
class SourceFile:
    path: Path  # absolute
    display: str  # relative to the current directory, with '/'
    language: str


def language_of(path: str | Path) -> str | None:
    name = os.fspath(path)
    dot = name.rfind(".")
    if dot == -1 or "/" in name[dot:] or os.sep in name[dot:]:
        return None
    if dot == 0 or name[dot - 1] in "/" + os.sep:
        return None  # `.ts` alone is a hidden file's name, not a suffix (as pathlib says)
    return LANGUAGES.get(name[dot:].lower())


def discover(
    paths: Sequence[str | Path],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    cwd: Path | None = None,
    pattern_base: Path | None = None,
    force_exclude: bool = False,
) -> list[SourceFile]:
    """Every supported source file under `paths`, sorted by display path, each once.

    Include / exclude globs match paths relative to each PATH, and also relative to
    `pattern_base` (the config file's folder), so `exclude = ["src/generated/"]` works either way.
    """
    cwd = (cwd or Path.cwd()).resolve()
    base = pattern_base.resolve() if pattern_base is not None else None
    include_spec = exclude_spec = None
    if include or exclude:
        import pathspec

        include_spec = pathspec.GitIgnoreSpec.from_lines(include) if include else None
        exclude_spec = pathspec.GitIgnoreSpec.from_lines(exclude) if exclude else None
    found: dict[Path, SourceFile] = {}
    for raw in paths or (".",):
        root = Path(os.path.abspath(cwd / raw))
        if not root.exists():
            raise UsageError(f"{raw}: no such file or directory")
        if root.is_file():
            if force_exclude and _excluded(root, cwd, base, include_spec, exclude_spec):
                continue  # a file named on the command line (by pre-commit) that the config excludes
            root = root.resolve()  # a named symlink stands for its target
            language = language_of(root)
            if language is None:
                raise UsageError(
                    f"{raw}: not a TypeScript, JavaScript or Python file, nor a Vue, Svelte or Astro component (expected one of {', '.join(LANGUAGES)})"
                )
            found.setdefault(root, SourceFile(root, _display(root, cwd), language))
            continue
        prefix = _prefix(root, cwd)
        top = os.fspath(root)
        for rel in _listed(root):
            language = language_of(rel)
            if language is None:
                continue
            if ALWAYS_SKIPPED_DIRS.intersection(rel.split("/")[:-1]):
                continue
            if include_spec is not None or exclude_spec is not None:
                also = _relative(root / rel, base)
                if include_spec is not None and not (include_spec.match_file(rel) or (also and include_spec.match_file(also))):
                    continue
                if exclude_spec is not None and (exclude_spec.match_file(rel) or (also and exclude_spec.match_file(also))):
                    continue
            name = os.path.join(top, rel)
            # a symlink is scanned as its target where the target is in the tree, never twice
            # and never rewritten through the link
            try:
                regular = stat.S_ISREG(os.lstat(name).st_mode)
            except OSError:
                continue
            if regular:
                full = Path(name)
                found.setdefault(full, SourceFile(full, prefix + rel if prefix is not None else _display(full, cwd), language))
    return sorted(found.values(), key=lambda f: f.display)


def _excluded(path: Path, cwd: Path, base: Path | None, include_spec, exclude_spec) -> bool:  # type: ignore[no-untyped-def]
    """Whether include / exclude patterns leave out a file named directly (`--force-exclude`)."""
    names = [n for n in (_relative(path, cwd), _relative(path, base)) if n]
    if include_spec is not None and not any(include_spec.match_file(n) for n in names):
        return True
    return exclude_spec is not None and any(exclude_spec.match_file(n) for n in names)


def _relative(path: Path, base: Path | None) -> str | None:
    if base is None:
        return None
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return None


def _prefix(root: Path, cwd: Path) -> str | None:
    """How paths under `root` start when shown relative to `cwd` (None when root is outside it)."""
    try:
        rel = root.relative_to(cwd).as_posix()
    except ValueError:
        return None
    return "" if rel == "." else rel + "/"


def _display(path: Path, cwd: Path) -> str:
    return Path(os.path.relpath(path, cwd)).as_posix()


def _listed(root: Path) -> Iterable[str]:
    """Paths under `root`, relative to it with '/', minus what git or .gitignore ignores."""
    listed = _git_listed(root)
    return listed if listed is not None else _walk(root)


def _git_listed(root: Path) -> list[str] | None:
    if shutil.which("git") is None:
        return None
    # outside a work tree (no repository, a bare one, inside `.git`) git refuses: then os.walk
    result = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
        capture_output=True,
    )
    if result.returncode != 0:
        return None
    names = result.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({n for n in names if n})


def _walk(root: Path) -> Iterator[str]:
    """os.walk honouring every .gitignore on the way down (outside a git work tree). Paths stay
    strings relative to `root`: `Path` objects and `in path.parents` cost more than the matching
    on a tree of a few thousand folders. Only files of a scanned language are matched at all."""
    import pathspec

    top = os.fspath(root)
    # the .gitignore files of the folder walked and of those above it: (its folder relative to
    # `root` with a trailing '/', or '' at the top; its patterns), outermost first
    specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []

    def ignored(rel: str) -> bool:
        verdict = False
        for prefix, spec in specs:
            result = spec.check_file(rel[len(prefix) :])
            if result.include is not None:
                verdict = result.include
        return verdict

    for dirpath, dirnames, filenames in os.walk(top):
        here = os.path.relpath(dirpath, top)
        here = "" if here == "." else here.replace(os.sep, "/") + "/"
        specs = [(prefix, spec) for prefix, spec in specs if here.startswith(prefix)]
        if ".gitignore" in filenames and os.path.isfile(gitignore := os.path.join(dirpath, ".gitignore")):
            try:
                with open(gitignore, encoding="utf-8", errors="replace") as handle:
                    lines = handle.read().splitlines()
            except OSError:
                lines = []
            specs.append((here, pathspec.GitIgnoreSpec.from_lines(lines)))
        dirnames[:] = sorted(d for d in dirnames if d not in ALWAYS_SKIPPED_DIRS and not ignored(f"{here}{d}/"))
        for name in sorted(filenames):
            if language_of(name) is not None and not ignored(here + name):
                yield here + name


def changed_since(ref: str, *, cwd: Path) -> set[Path]:
    """Files changed against a git ref in the work tree, plus untracked ones, as absolute paths."""
    def git(*args: str) -> str:
        try:
            proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True)
        except FileNotFoundError:
            raise UsageError("--changed-since needs git, which is not installed") from None
        if proc.returncode != 0:
            message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise UsageError(f"--changed-since {ref}: {message[0] if message else 'not a commit in this repository'}")
        return proc.stdout.decode("utf-8", "surrogateescape")

    top = Path(git("rev-parse", "--show-toplevel").strip())
    git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    changed = git("diff", "--name-only", "-z", "--no-renames", ref, "--").split("\0")
    untracked = git("ls-files", "--others", "--exclude-standard", "-z", "--full-name", ":/").split("\0")
    return {(top / name).resolve() for name in (*changed, *untracked) if name}


def project_root(sources: Sequence[SourceFile]) -> Path:
    """The repository the scanned files live in (else the current directory): imports resolve inside it."""
    start = sources[0].path.parent if sources else Path.cwd()
    return repository_root(start) or repository_root(Path.cwd()) or Path.cwd()


def repository_root(start: Path) -> Path | None:
    """The top of the git work tree holding `start`, if any."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None
