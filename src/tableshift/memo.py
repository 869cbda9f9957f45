"""The run memo: what a command made of a tree, kept until any file it depends on changes.

A warm run with nothing new to learn should cost a `stat` per file and writing the report. The
memo holds one entry per command and configuration (its flags, rules, working directory), with
the stamp (size, mtime, ctime, inode) of every scanned file and of every other path the run
looked at: modules the link pass read outside the scanned files, the tsconfig / package.json
files it consulted, every path where it looked for a module (stamped absent when none was
there, so a module created there is seen) and the folders it listed. The entry is used only
when every stamp is still what it was; a file changed within the racy window of the run (as
git's index judges one) keeps the entry from being written at all. Entries are signed like the
per-file cache's, in the same SQLite file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

RACY_NS = 2_000_000_000  # git's racy window, for the stat index and the memo: a change this close to a stamp could hide behind it

_WATCHES: list[set[str]] = []  # paths the running command looked at, beyond the scanned files


def saw(path: Path | str) -> None:
    """A path the run read, probed or listed: the entry depends on its stamp (a path probed and not
    found is stamped absent, so a module created there is seen; a folder listed changes its stamp
    when an entry is added or removed)."""
    if _WATCHES:
        _WATCHES[-1].add(os.fspath(path))


def stamp_of(info: os.stat_result) -> str:
    """What a file's stat says of its content, as git's index keeps it: size, mtime, ctime, inode."""
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}"


def _stamp(path: str | bytes) -> str:
    try:
        return stamp_of(os.stat(path))
    except OSError:
        return "-"


def _recent(stamp: str, since_ns: int) -> bool:
    if stamp == "-":
        return False
    _, mtime, ctime, _ = stamp.split(":")
    return max(int(mtime), int(ctime)) + RACY_NS >= since_ns


def _canonical(item: object) -> object:
    """A value whose repr is the same in every process: sets are sorted (their order follows string
    hashing, which differs from run to run), dataclasses become their fields."""
    import dataclasses

    if isinstance(item, (set, frozenset)):
        return tuple(sorted((_canonical(x) for x in item), key=repr))
    if isinstance(item, (list, tuple)):
        return tuple(_canonical(x) for x in item)
    if isinstance(item, dict):
        return tuple(sorted(((_canonical(k), _canonical(v)) for k, v in item.items()), key=repr))
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return (type(item).__name__, *(_canonical(getattr(item, f.name)) for f in dataclasses.fields(item)))
    return item


class RunMemo:
    """One command's memo entry in `cache`: looked up by the command and its configuration, valid
    for the stamps of `sources` and of the paths the run that wrote it saw."""

    def __init__(self, cache, kind: str, material: Iterable[object], sources: Sequence[Any]) -> None:  # type: ignore[no-untyped-def]
        self.cache = cache
        self.started = time.time_ns()
        digest = hashlib.sha256(kind.encode())
        for item in material:
            digest.update(b"\0" + repr(_canonical(item)).encode("utf-8", "surrogateescape"))
        self.slot = f"{kind}:{digest.hexdigest()}"
        files = hashlib.sha256()
        self.stamps: list[str] = []
        self.scanned = {os.fspath(source.path) for source in sources}  # stamped above: not seen again
        for source in sources:
            stamp = _stamp(source.path)
            self.stamps.append(stamp)
            files.update(f"{source.display}\0{source.language}\0{source.path}\0{stamp}\n".encode("utf-8", "surrogateescape"))
        self.files = files.hexdigest()
        self.watch: set[str] = set()

    def get(self) -> Any | None:
        """The command's product, if every stamp it depends on is unchanged."""
        head = self.cache.get_run_head(self.slot)
        if head is None:
            return None
        try:
            files, seen = pickle.loads(head)
        except Exception:  # an entry of an older layout
            return None
        if files != self.files or any(_stamp(path) != stamp for path, stamp in seen):
            return None
        value = self.cache.get_run_value(self.slot, head)
        try:
            return pickle.loads(value) if value is not None else None
        except Exception:
            return None

    def __enter__(self) -> RunMemo:
        _WATCHES.append(self.watch)
        return self

    def __exit__(self, *_: object) -> None:
        _WATCHES.remove(self.watch)

    def put(self, product: Any) -> None:
        """Keep `product`, unless a file it depends on changed during the run (or just before it)."""
        seen = sorted((path, _stamp(path)) for path in self.watch if path not in self.scanned)
        if any(_recent(stamp, self.started) for stamp in self.stamps) or any(_recent(stamp, self.started) for _, stamp in seen):
            return
        try:
            head = pickle.dumps((self.files, seen), protocol=pickle.HIGHEST_PROTOCOL)
            value = pickle.dumps(product, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            return
        self.cache.put_run(self.slot, head, value)


def answer(memo: RunMemo | None, compute: Callable[[], _T]) -> _T:
    """The memo's product when it holds one, else `compute()`, watched and kept (without a memo,
    just `compute()`)."""
    if memo is None:
        return compute()
    found = memo.get()
    if found is not None:
        return found  # type: ignore[no-any-return]
    with memo:
        value = compute()
    memo.put(value)
    return value


def open_memo(cache_dir: Path | None, rules_digest: str, kind: str, material: Iterable[object], sources: Sequence[Any]) -> RunMemo | None:
    """The memo of a command in this cache folder, or None without a cache (--no-cache)."""
    if cache_dir is None:
        return None
    from tableshift.cache import Cache

    cache = Cache(cache_dir, rules_key=rules_digest)
    if not cache.enabled:
        return None
    return RunMemo(cache, kind, (os.getcwd(), *material), sources)
