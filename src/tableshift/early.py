"""A scan's file list and first reading, begun in a process forked at the start of the command.

Before a scan's workers can start, this process imports the command line (typer and click alone
are a third of that), then lists the files and reads each one to prefilter it: on capgo 0.10 s
with one core busy, then 85 ms of CPU beside the workers. The command's entry point forks a
process first, for the commands that list files (`audit`, `patch`, `check`, `baseline`) on a
machine with a core to spare, once the modules it runs are imported (the run needs them too): it
lists `.` as `discover` does and reads every file as the first pass does (its stat stamp, and what
is in it: skipped, no candidate, generated types, or its digest), sending each result down a pipe
as it goes, while this process loads the command line.

What it found is used only where the run would have found the same: the run lists `.` with no
include or exclude pattern (then `discover` gives that list), its size limits are the defaults,
and, with a cache, a file's stamp is still the one the early process read it under. A run that
lists otherwise stops it at once; so does one whose cache already knows the files (it reads
few of them, and none should wait for the early reading) or whose report is remembered whole.
A run that meets an error in it (it died, it could not list) reads the files itself. It writes
nothing but the pipe, and dies with this process.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # every command imports this module first: it imports no more than it must
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from tableshift.discover import SourceFile
    from tableshift.options import Options

COMMANDS = frozenset({"audit", "patch", "check", "baseline"})  # the commands that list `.` by default
_HEADER = 4  # each message: its length (little-endian), then a pickle
_PIPE_SIZE = 1 << 20  # the list and the verdicts fit: the early process never waits for this one
_BATCH = 64  # verdicts per message


class _Early:
    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self.buffer = bytearray()
        self.sources: list[SourceFile] | None = None
        self.verdicts: dict[str, tuple[str | None, str]] = {}
        self.ended = False  # the pipe is closed: everything sent has been read

    def message(self) -> object | None:
        """The next message, waiting for it; None once the pipe ends (a message cut short too)."""
        import pickle

        while not self.ended:
            if len(self.buffer) >= _HEADER:
                size = int.from_bytes(self.buffer[:_HEADER], "little")
                if len(self.buffer) >= _HEADER + size:
                    payload = bytes(self.buffer[_HEADER : _HEADER + size])
                    del self.buffer[: _HEADER + size]
                    try:
                        return pickle.loads(payload)
                    except Exception:  # noqa: BLE001  (never so: the run reads the files itself)
                        self.ended = True
                        return None
            try:
                chunk = os.read(self.fd, 1 << 16)
            except InterruptedError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.ended = True
            self.buffer += chunk
        return None

    def verdict(self, display: str) -> tuple[str | None, str] | None:
        """(stat stamp, verdict) of a file of the list, waiting for it; None if none came."""
        while display not in self.verdicts and not self.ended:
            batch = self.message()
            if isinstance(batch, list):
                self.verdicts.update((name, (stamp, found)) for name, stamp, found in batch)
        return self.verdicts.pop(display, None)


_STATE: _Early | None = None


def start(argv: Sequence[str]) -> None:
    """Fork the early process, if `argv` runs a command that lists files and a core is spare."""
    global _STATE
    if _STATE is not None or not sys.platform.startswith("linux") or _command(argv) not in COMMANDS:
        return
    from tableshift import cores

    if cores.usable(cores.cgroup_quota()) < 2:
        return
    # what the early process runs, imported before the fork: the run imports it too, and each
    # process importing its own copy cost 35-40 ms of CPU more (their common imports too:
    # dataclasses, pathlib, typing), with both cores busy
    import tableshift.discover  # noqa: F401
    import tableshift.options  # noqa: F401
    import tableshift.reading  # noqa: F401

    try:
        read, write = os.pipe()
    except OSError:
        return
    try:
        import fcntl

        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass  # a smaller pipe: the early process waits for this one to read, no more
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return
    if pid == 0:
        os.close(read)
        _child(write, parent, argv)
    os.close(write)
    _STATE = _Early(pid, read)


def _command(argv: Sequence[str]) -> str | None:
    """The command named (after the global flags), or None for a run that reads code from stdin,
    only shows help, or is asked to run in one process (`--jobs 1`)."""
    args = list(argv[1:])
    if any(a in ("-", "-h", "--help", "--version") or a == "--stdin-filename" or a.startswith("--stdin-filename=") for a in args):
        return None  # code on stdin, or help: nothing to list
    if any(a in ("--jobs=1", "-j1") or (a in ("--jobs", "-j") and b == "1") for a, b in zip(args, [*args[1:], ""])):
        return None  # one process asked for: no second one reads meanwhile
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] == "--color" else 1  # the one global flag whose value is separate
    return args[i] if i < len(args) else None


def _child(write: int, parent: int, argv: Sequence[str]) -> None:
    """List `.` and read each file, sending each result as it comes; never returns."""
    status = 0
    try:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the whole group: just end
        from tableshift.cores import die_with
        from tableshift.discover import discover
        from tableshift.options import Options
        from tableshift.reading import stamped_verdict  # loaded first: the first verdicts follow the list at once

        die_with(parent)
        sources = discover(["."])
        _send(write, [(os.fspath(s.path), s.display, s.language) for s in sources])  # strings pickle fast

        options = Options()
        digested = "--no-cache" not in argv  # a run without a cache never reads a digest
        batch: list[tuple[str, str | None, str]] = []
        for source in sources:
            batch.append((source.display, *stamped_verdict(source, options, digested=digested)))
            if len(batch) >= _BATCH:
                _send(write, batch)
                batch = []
        _send(write, batch)
    except BaseException:  # noqa: BLE001  (the run reads the files itself)
        status = 1
    finally:
        os._exit(status)


def _send(fd: int, value: object) -> None:
    import pickle

    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(_HEADER, "little") + data)
    while view:
        view = view[os.write(fd, view) :]


def sources(paths: Sequence[str | Path], include: Sequence[str], exclude: Sequence[str]) -> list[SourceFile] | None:
    """The early process's list of `.`, when the run lists that; else None (and it is stopped)."""
    state = _STATE
    if state is None:
        return None
    if [os.fspath(p) for p in paths] != ["."] or include or exclude:
        stop()
        return None
    if state.sources is None:
        found = state.message()
        if not isinstance(found, list):
            stop()
            return None
        from pathlib import Path

        from tableshift.discover import SourceFile

        state.sources = [SourceFile(Path(path), display, language) for path, display, language in found]
    return list(state.sources)


def reader(options: Options) -> Callable[[str], tuple[str | None, str] | None] | None:
    """The lookup of what the early process read (a file's stat stamp and verdict, by its display
    path, waiting for it), for a first pass under `options`; None, and the early process stopped,
    when that pass can use none of it (its list was not taken, or the size limits are not the
    defaults it read under)."""
    state = _STATE
    if state is None:
        return None
    from tableshift.options import Options

    defaults = Options()
    if state.sources is None or (options.max_file_size, options.skip_minified) != (defaults.max_file_size, defaults.skip_minified):
        stop()
        return None
    return state.verdict


def stop() -> None:
    """End the early process (if it has not) and forget it."""
    global _STATE
    state, _STATE = _STATE, None
    if state is None:
        return
    import signal

    try:
        os.kill(state.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(state.pid, 0)
    except ChildProcessError:
        pass
    os.close(state.fd)
