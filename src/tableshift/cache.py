"""Per-file result cache: keyed by content hash, tool version and rules; never trusted blindly.

Entries are pickles signed with HMAC-SHA256 under a key that lives in the user's own cache
directory, never in the repository: an entry that does not verify (corrupt, foreign, or planted
in a checkout) is ignored and rewritten, and is never unpickled.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import pickle
import secrets
import sqlite3
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

from tableshift import __version__
from tableshift.errors import UsageError

CACHE_DIR = ".tableshift-cache"
FORMAT = 2
_MAC = 32
_T = TypeVar("_T")


def _user_cache(home: Path | None = None) -> Path:
    return (home or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")) / "tableshift"


def user_key(home: Path | None = None) -> bytes | None:
    """The signing key, made on first use with mode 0600; None when it cannot be had."""
    path = _user_cache(home) / "cache-key"
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        tmp = path.with_name(f".cache-key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        os.replace(tmp, path)
        return path.read_bytes()
    except OSError:
        return None


@functools.cache
def code_fingerprint() -> str:
    """Of tableshift's own source: a build of another commit with the same version never shares entries."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def remembered(kind: str, material: bytes, compute: Callable[[], _T]) -> _T:
    """`compute()`, a pure function of `material`, kept signed in the user's own cache folder
    (`~/.cache/tableshift/<kind>/`) under the digest of `material` and of tableshift's code. A
    value that does not verify, or any failure to read or write, just means computing it again;
    what `compute` raises is raised."""
    secret = user_key()
    if secret is None:
        return compute()
    name = hashlib.sha256(f"{__version__}\0{code_fingerprint()}\0{kind}\0".encode() + material).hexdigest()
    path = _user_cache() / kind / name

    def sign(payload: bytes) -> bytes:
        return hmac.new(secret, name.encode() + b"\0" + payload, hashlib.sha256).digest()

    try:
        blob = path.read_bytes()
        mac, payload = blob[:_MAC], blob[_MAC:]
        if hmac.compare_digest(mac, sign(payload)):
            return pickle.loads(payload)  # type: ignore[no-any-return]
    except Exception:  # missing, unreadable or of an older layout: compute it again
        pass
    value = compute()
    try:
        payload = dumps(value)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}")
        tmp.write_bytes(sign(payload) + payload)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError):
        pass
    return value


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


_FILE = "cache.sqlite"  # in the cache folder, beside SQLite's rollback journal
_JOURNAL = _FILE + "-journal"


def refuse_links(directory: Path) -> None:
    """A cache folder, or a file in it, that is a symbolic link could make a run write outside the
    repository (a link committed to `.tableshift-cache/`): refuse, never follow."""
    for path in (directory, directory / _FILE, directory / ".gitignore", directory / _JOURNAL):
        if path.is_symlink():
            raise UsageError(f"{path}: the cache is a symbolic link: refusing to follow it (remove it, or pass --no-cache)")


def _write_new(path: Path, data: bytes) -> None:
    """Create a file that does not exist yet, never through a link."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


# The stat index, as git's: a file whose size, mtime, ctime and inode are what they were when it
# was last read (and not so recent that a same-tick edit could hide) is not read again.
_ENTRIES_TABLE = "CREATE TABLE IF NOT EXISTS entries_v2 (key TEXT PRIMARY KEY, value BLOB NOT NULL, used INTEGER NOT NULL DEFAULT 0)"
_RUNS_TABLE = "CREATE TABLE IF NOT EXISTS runs_v2 (slot TEXT PRIMARY KEY, head BLOB NOT NULL, value BLOB NOT NULL, written INTEGER NOT NULL)"
_META_TABLE = "CREATE TABLE IF NOT EXISTS meta_v1 (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
_DAY = 86_400
_STATS_TABLE = "CREATE TABLE IF NOT EXISTS stats_v1 (path BLOB PRIMARY KEY, stat TEXT NOT NULL, verdict TEXT NOT NULL, written INTEGER NOT NULL)"


def _connected(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    # Large pages (set before a new file's first table): a run writes megabytes of entries and its
    # memo, a third of the time of 4 KB pages. No fsync (synchronous=OFF): every entry is signed
    # and recomputable, a process killed midway loses nothing the system has, and a file the
    # system's own crash left torn is found damaged and started over (`Cache._damaged`). With
    # fsync, writing capgo's first-run entries and memo took 45 ms, without 15.
    db.execute("PRAGMA page_size = 65536")
    db.execute("PRAGMA synchronous = OFF")
    _create_tables(db)
    return db


def _create_tables(db: sqlite3.Connection) -> None:
    """The tables every run reads (the run memo's and the sweep's are made when first used)."""
    db.execute(_ENTRIES_TABLE)
    db.execute(_STATS_TABLE)


class Cache:
    """An SQLite file of signed entries; any failure to open, read or write it just means no cache."""

    def __init__(self, directory: Path, *, rules_key: str, key: bytes | None = None) -> None:
        self.directory = directory
        self.salt = f"{__version__}\0{code_fingerprint()}\0{FORMAT}\0{rules_key}"
        self._key = key if key is not None else user_key()
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, bytes]] = []
        self._used: set[str] = set()  # keys read or written by this run
        self._written: set[str] = set()  # keys written by this run (marked used as they were)
        self._stats: list[tuple[bytes, str, str, int]] = []  # stat index rows to write
        if self._key is None:
            return
        refuse_links(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            refuse_links(directory)  # made by another run between the check and mkdir
            _write_new(directory / ".gitignore", b"# tableshift's cache: never commit it\n*\n")
            self._db = self._open(directory / _FILE)
        except (OSError, sqlite3.Error):
            self._db = None

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def _damaged(self, exc: sqlite3.Error) -> None:
        """A file SQLite calls damaged (not a lock or a full disk): no cache for the rest of this run,
        and the file removed, so that the next run starts over rather than fail on it every time."""
        if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError) or self._db is None:
            return
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._db = None
        for name in (_FILE, _JOURNAL):
            with contextlib.suppress(OSError):
                (self.directory / name).unlink()

    def _open(self, path: Path) -> sqlite3.Connection:
        try:
            db = _connected(path)
            db.execute("SELECT count(*) FROM entries_v2").fetchone()
        except sqlite3.OperationalError:
            raise  # locked by another run past the wait, or the disk: no cache this time, the file kept
        except sqlite3.DatabaseError:
            # a corrupt file: start over rather than trust it or fail
            path.unlink(missing_ok=True)
            db = _connected(path)
        self._adopt(db)
        return db

    def _adopt(self, db: sqlite3.Connection) -> None:
        """Empty a cache whose entries were signed with another key than ours (a `.tableshift-cache/`
        restored in CI without `~/.cache/tableshift/cache-key`, a checkout copied from another
        user): none of its entries would verify, and each file the stat index calls known would
        be scanned again one by one, in this process, when its entry failed. A cache not yet
        marked is new, or of an older build whose entries no key of this one can reach."""
        mark = int.from_bytes(self._mac("cache signed by", b"")[:8], "big", signed=True)

        def ours() -> bool:
            return db.execute("SELECT value FROM meta_v1 WHERE name = 'key'").fetchone() == (mark,)

        db.execute(_META_TABLE)
        if ours():
            return
        db.execute("BEGIN IMMEDIATE")  # another run marking it at the same time: looked at again, locked
        if not ours():
            for table in ("entries_v2", "stats_v1", "runs_v2"):
                db.execute(f"DROP TABLE IF EXISTS {table}")
            _create_tables(db)
            db.execute("INSERT OR REPLACE INTO meta_v1 (name, value) VALUES ('key', ?)", (mark,))
        db.execute("COMMIT")

    def key(self, display: str, data_digest: str) -> str:
        # a file name need not be UTF-8: its bytes, as the file system has them
        return hashlib.sha256(f"{self.salt}\0{display}\0{data_digest}".encode("utf-8", "surrogateescape")).hexdigest()

    def _mac(self, key: str, payload: bytes) -> bytes:
        assert self._key is not None
        return hmac.new(self._key, key.encode() + b"\0" + payload, hashlib.sha256).digest()

    def existing(self, keys: list[str]) -> set[str]:
        """Which of these keys have an entry (not yet verified)."""
        if self._db is None or not keys:
            return set()
        found: set[str] = set()
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(k for (k,) in self._db.execute(f"SELECT key FROM entries_v2 WHERE key IN ({marks})", chunk))
        except sqlite3.Error as exc:
            self._damaged(exc)
            return set()
        return found

    def touch(self, key: str) -> None:
        """Keep an entry this run relies on without reading it (see `prune`)."""
        if self._db is not None:
            self._used.add(key)

    def get(self, key: str) -> Any:
        """The verified, unpickled entry, or None."""
        return self.get_many([key]).get(key)

    def get_blob(self, key: str) -> bytes | None:
        """The verified entry, still pickled (it may be passed on as it is)."""
        return self.get_many([key], raw=True).get(key)

    def get_many(self, keys: list[str], *, raw: bool = False) -> dict[str, Any]:
        """Verified, unpickled entries by key; anything else is left out (and recomputed)."""
        if self._db is None or not keys:
            return {}
        found: dict[str, Any] = {}
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in self._db.execute(f"SELECT key, value FROM entries_v2 WHERE key IN ({marks})", chunk):
                    self._used.add(key)
                    blob = bytes(blob)
                    mac, payload = blob[:_MAC], blob[_MAC:]
                    if len(mac) != _MAC or not hmac.compare_digest(mac, self._mac(key, payload)):
                        continue
                    if raw:
                        found[key] = payload
                        continue
                    try:
                        found[key] = pickle.loads(payload)
                    except Exception:  # a verified entry of an older layout: recompute it
                        continue
        except sqlite3.Error as exc:
            self._damaged(exc)
            return found
        return found

    def put(self, key: str, payload: bytes) -> None:
        """Store an already pickled value (see `dumps`)."""
        if self._db is not None:
            self._used.add(key)
            self._written.add(key)
            self._pending.append((key, self._mac(key, payload) + payload))
            if len(self._pending) >= 256:  # bounded memory on large trees
                self.flush()

    # -- the run memo (`tableshift.memo`): one signed entry per command and configuration ----------
    # Its head (what the entry depends on) is read and checked before its value (the product, which
    # may be megabytes): a tree that changed costs no more than the head. The value's signature
    # covers the head's digest, so a head and a value of different runs never pass together.

    def get_run_head(self, slot: str) -> bytes | None:
        row = self._run_row(slot, "head")
        return self._verified_run(slot, "head", row[0], b"") if row is not None else None

    def get_run_value(self, slot: str, head: bytes) -> bytes | None:
        row = self._run_row(slot, "value")
        return self._verified_run(slot, "value", row[0], hashlib.sha256(head).digest()) if row is not None else None

    def _run_row(self, slot: str, column: str) -> tuple | None:  # type: ignore[type-arg]
        if self._db is None:
            return None
        try:
            self._db.execute(_RUNS_TABLE)
            return self._db.execute(f"SELECT {column} FROM runs_v2 WHERE slot = ?", (self.salt + "\0" + slot,)).fetchone()  # type: ignore[no-any-return]
        except sqlite3.Error as exc:
            self._damaged(exc)
            return None

    def _verified_run(self, slot: str, part: str, blob: bytes, bound: bytes) -> bytes | None:
        blob = bytes(blob)
        mac, payload = blob[:_MAC], blob[_MAC:]
        if len(mac) != _MAC or not hmac.compare_digest(mac, self._mac(f"run-{part}\0{slot}", bound + payload)):
            return None
        return payload

    def put_run(self, slot: str, head: bytes, value: bytes) -> None:
        """Replace a run memo slot's entry (a slot holds one: the last run of that configuration)."""
        if self._db is None:
            return
        signed_head = self._mac(f"run-head\0{slot}", head) + head
        signed_value = self._mac(f"run-value\0{slot}", hashlib.sha256(head).digest() + value) + value
        try:
            self._db.execute(_RUNS_TABLE)
            self._db.execute(
                "INSERT OR REPLACE INTO runs_v2 (slot, head, value, written) VALUES (?, ?, ?, ?)",
                (self.salt + "\0" + slot, signed_head, signed_value, int(time.time())),
            )
            # slots of other versions, rules or flags not run for a month go
            self._db.execute("DELETE FROM runs_v2 WHERE written < ?", (int(time.time()) - 30 * 86_400,))
        except sqlite3.Error as exc:
            self._damaged(exc)

    def stats(self) -> dict[bytes, tuple[str, str, int]]:
        """Every file of the stat index: path -> (stat, verdict, when it was written, ns)."""
        if self._db is None:
            return {}
        try:
            return {bytes(p): (st, v, w) for p, st, v, w in self._db.execute("SELECT path, stat, verdict, written FROM stats_v1")}
        except sqlite3.Error as exc:
            self._damaged(exc)
            return {}

    def put_stat(self, path: bytes, stat: str, verdict: str, written: int) -> None:
        if self._db is not None:
            self._stats.append((path, stat, verdict, written))

    def prune(self, *, max_age_days: int = 30) -> None:
        """Mark what this run used, and drop entries no run has used for a month: edits leave old
        entries behind, and the cache must not grow without bound (a partial run, such as
        --changed-since, keeps everything younger)."""
        if self._db is None:
            return
        self.flush()
        now = int(time.time())
        try:
            self._db.execute("BEGIN")
            # marked at most once a day: a run that changes nothing writes nothing
            self._db.executemany(
                "UPDATE entries_v2 SET used = ? WHERE key = ? AND used < ?", ((now, k, now - _DAY) for k in self._used - self._written)
            )
            self._db.execute(_META_TABLE)
            last = self._db.execute("SELECT value FROM meta_v1 WHERE name = 'pruned'").fetchone()
            if last is None or last[0] < now - _DAY:  # the sweep reads every row: once a day is enough
                self._db.execute("DELETE FROM entries_v2 WHERE used < ?", (now - max_age_days * _DAY,))
                self._db.execute("INSERT OR REPLACE INTO meta_v1 (name, value) VALUES ('pruned', ?)", (now,))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rolled_back(exc)

    def flush(self) -> None:
        if self._db is not None and self._stats:
            try:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO stats_v1 (path, stat, verdict, written) VALUES (?, ?, ?, ?)", self._stats)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rolled_back(exc)
            self._stats.clear()
        if self._db is None or not self._pending:
            return
        try:
            self._db.execute("BEGIN")
            now = int(time.time())
            self._db.executemany(
                "INSERT OR REPLACE INTO entries_v2 (key, value, used) VALUES (?, ?, ?)", ((k, v, now) for k, v in self._pending)
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rolled_back(exc)
        self._pending.clear()

    def _rolled_back(self, exc: sqlite3.Error) -> None:
        """A write that failed: its transaction ended, so that later ones can begin."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
        self._damaged(exc)
