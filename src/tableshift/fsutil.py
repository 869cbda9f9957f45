"""Writing files so that nothing is ever half-written, replaced by mistake, or written outside its place.

Regular files are replaced atomically: a temporary file beside them, then a rename, with the old
file's mode, owner and group. A device, a FIFO or `/dev/stdout` is written directly, never
replaced. A symbolic link is written through to its target only when that target is a regular
file inside the allowed places (the repository, the current directory, the link's own folder).
Writers of one folder take a lock on it, so concurrent runs never lose each other's updates.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tableshift.errors import UsageError

_TMP_MARK = ".tableshift-"
# `.{name}.tableshift-{pid}-{random}.tmp`: the pid tells a later run whether the writer is gone
_TMP_NAME = re.compile(r"^\..*\.tableshift-(\d+)-[^.]+\.tmp$")
_swept: set[Path] = set()


INPUT_LIMIT = 64 << 20  # a rules file, config, schema or baseline larger than this is not one


def read_bytes(path: str | Path, size: int = -1) -> bytes:
    """`Path(path).read_bytes()` through `os.read`, sized by `size` (the file's `st_size` when the
    caller has it), without the buffered file object: a third of the time per file, and a scan
    reads every file of a tree."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return read_fd(fd, os.fstat(fd).st_size if size < 0 else size)
    finally:
        os.close(fd)


def read_fd(fd: int, size: int, cap: int | None = None) -> bytes:
    """An open file's bytes from where it stands: to its end, or its first `cap` bytes. `size`
    (what its stat said) sizes the first read; a file that grew since is read on."""
    parts: list[bytes] = []
    got = 0
    while cap is None or got < cap:
        want = max(size + 1 - got, 1 << 16)
        part = os.read(fd, want if cap is None else min(want, cap - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_input(path: Path, what: str, *, limit: int = INPUT_LIMIT) -> bytes:
    """An input file's bytes: a regular file of sane size, never a device or FIFO read forever.

    Raises FileNotFoundError when it is missing (callers word that themselves); every other
    problem is a UsageError naming the file.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path}: is a directory, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path}: is not a regular file: refusing to read it as a {what}")
    if info.st_size > limit:
        raise UsageError(f"{path}: {info.st_size:,} bytes is too large for a {what} (at most {limit:,})")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if len(data) > limit:
        raise UsageError(f"{path}: too large for a {what} (at most {limit:,} bytes)")
    return data


def write_atomic(path: str | Path, data: bytes) -> None:
    """Replace `path` with `data` in one rename; keep the old file's mode when there is one."""
    with atomic_writer(path) as handle:
        handle.write(data)


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """A handle whose content becomes `path` when the block ends without error.

    A regular (or new) file is replaced in one rename; a device or FIFO is written in place.
    """
    target = _resolve_output(Path(path))
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path}: is a directory")
    if info is not None and not stat.S_ISREG(info.st_mode):
        # /dev/null, /dev/stdout, a FIFO: replacing it would break the system or the pipe
        try:
            with open(target, "wb") as handle:
                yield handle
        except OSError as exc:
            raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
        return
    with _replacing(target, info, shown=Path(path)) as handle:
        yield handle


def check_target(path: Path) -> None:
    """Refuse a bad output target before any work is done, with the message writing would give."""
    target = _resolve_output(path)
    if target.is_dir():
        raise UsageError(f"{path}: is a directory")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():  # made, as ruff and eslint make an output's folder
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{path}: cannot create directory {directory}: {exc.strerror or exc}") from None
        _resolve_output(path)  # the folders made are checked as any other


def check_place(path: Path) -> None:
    """Refuse a folder to write into that a symbolic link takes out of the repository."""
    _resolve_output(path)


def _resolve_output(path: Path) -> Path:
    """Where writing `path` lands. A device, FIFO or pipe (`/dev/stdout`) is written in place; a
    symbolic link anywhere in the path (the file, or a folder on the way) is followed only into an
    allowed place; anything else is refused."""
    try:
        info = os.stat(path)  # follows links: what a write would reach
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    if info is not None and not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        return path  # /dev/null, a FIFO, /dev/stdout -> /proc/self/fd/1 -> a pipe or a terminal
    if path.is_symlink() and info is None:
        raise UsageError(f"{path}: is a symbolic link to a missing file: refusing to write through it")
    lexical = Path(os.path.abspath(path))
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise UsageError(f"{path}: cannot follow symbolic link: {getattr(exc, 'strerror', None) or exc}") from None
    if real == lexical:
        return path  # no link on the way: the user named this place
    if not any(real.is_relative_to(place) for place in allowed_places(path)):
        raise UsageError(f"{path}: leads through a symbolic link to {real}, outside the repository: refusing to write through it")
    return real


def allowed_places(link: Path) -> list[Path]:
    """Where a written-through link may point: the repository (or the current directory) and the link's folder."""
    from tableshift.discover import repository_root

    cwd = Path.cwd().resolve()
    places = [cwd, Path(os.path.abspath(link.parent))]  # the link's folder as named, not where a link takes it
    root = repository_root(cwd)
    if root is not None:
        places.append(root.resolve())
    return places


@contextmanager
def _replacing(target: Path, info: os.stat_result | None, *, shown: Path) -> Iterator[BinaryIO]:
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"{shown}: directory {directory} does not exist")
    sweep_stale(directory)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}{_TMP_MARK}{os.getpid()}-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"{shown}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _take_over(tmp, info, shown)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise UsageError(f"{shown}: cannot write: {exc.strerror}") from None
        raise


def _take_over(tmp: str, info: os.stat_result | None, shown: Path) -> None:
    """Give the new file the old one's mode, owner and group (a new file: the usual permissions)."""
    if info is None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        return
    if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.chown(tmp, info.st_uid, info.st_gid)
        except PermissionError:
            raise UsageError(f"{shown}: belongs to another user, who would lose it: not replaced") from None
    os.chmod(tmp, stat.S_IMODE(info.st_mode))


def sweep_stale(directory: Path) -> None:
    """Remove temporary files that a killed run left in `directory` (once per folder per run)."""
    key = directory.absolute()
    if key in _swept:
        return
    _swept.add(key)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = _TMP_NAME.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            os.unlink(directory / name)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


@contextmanager
def folder_lock(directory: Path) -> Iterator[None]:
    """Serialise writers of one folder across processes (flock on the folder itself, no lock file)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _refusal(path: Path, *, access: bool) -> str | None:
    """Why a user's file may not be replaced in place (not regular, hard-linked, read-only), or
    None. `access`: also ask the system whether this user may write the file itself."""
    try:
        info = path.lstat()
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_nlink > 1:
        return f"has {info.st_nlink} hard links: replacing it would split them (apply the patch by hand)"
    if not info.st_mode & stat.S_IWUSR or not os.access(path.parent, os.W_OK) or (access and not os.access(path, os.W_OK)):
        return "file is read-only"
    return None


def writable_unchanged(path: Path, *, expected: Callable[[bytes], bool]) -> str | None:
    """Why `replace_if_unchanged` would refuse this file now, or None: checked before a group of
    files that must be written together is written at all."""
    why = _refusal(path, access=True)
    if why is not None:
        return why
    try:
        if not expected(path.read_bytes()):
            return "file changed since it was scanned"
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    return None


def replace_if_unchanged(path: Path, new: bytes, *, expected: Callable[[bytes], bool]) -> str | None:
    """Rewrite a user's file in place of the old one, under the folder's lock, if its content is
    still what was scanned. Returns why it was not written, or None when it was."""
    why = _refusal(path, access=False)
    if why is not None:
        return why
    try:
        with folder_lock(path.parent):
            try:
                current = path.read_bytes()
            except OSError as exc:
                return f"cannot read: {exc.strerror}"
            if not expected(current):
                return "file changed since it was scanned"
            write_atomic(path, new)
    except UsageError as exc:
        message = str(exc)
        return message[len(str(path)) + 2 :] if message.startswith(f"{path}: ") else message
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP):
            return "cannot lock its folder"
        return f"cannot write: {exc.strerror}"
    return None
