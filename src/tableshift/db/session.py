"""The database the database side works against: the embedded server, set up and loaded with the
schemas a command needs, in the order they build on each other."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tableshift.db import load, server
from tableshift.rules import RuleSet

if TYPE_CHECKING:
    import psycopg


@contextlib.contextmanager
def schemas(
    rules: RuleSet | None, legacy_schema: Path | None, database_url: str | None, *, root: Path | None = None, tables: set[str] | None = None
) -> Iterator[psycopg.Connection]:
    """A connection (as the loading role, never a superuser) to a fresh embedded server holding
    Supabase's basics, the schema of `database_url` (read with pg_dump: nothing runs there), the
    legacy schema when given, and the rules' target DDL unless the targets are there already
    (as past `expand`)."""
    with server.embedded() as srv:
        admin = server.connect(srv.admin_url, autocommit=True)
        conn = server.connect(srv.url, autocommit=True)
        try:
            loader = load.Loader(conn, admin)
            if rules is not None:
                loader.tables = {r.legacy for r in rules.tables} | {r.target.rpartition(".")[2] for r in rules.tables}
            else:  # the tables the code uses: a failed statement naming one stops the load
                loader.tables = {t.rpartition(".")[2] for t in tables or ()}
            loader.prelude()
            if database_url:
                wanted = {"public"}
                if rules is not None:
                    wanted |= {r.schema for r in rules.tables if r.schema} | {r.target.rpartition(".")[0] for r in rules.tables if "." in r.target}
                wanted |= {t.rpartition(".")[0] for t in tables or () if "." in t}
                loader.database(database_url, sorted(wanted))
            if legacy_schema is not None:
                loader.load(legacy_schema, what="legacy schema", root=root)
            if rules is not None and rules.schema_path and not all(exists(conn, r.target) for r in rules.tables):
                loader.load(Path(rules.schema_path), what="target schema", root=root)
            loader.finish()
            if loader.failed:
                print(
                    f"tableshift: warning: {len(loader.failed)} statements that name no table of the plan did not load and were"
                    f" left out: {'; '.join(loader.failed[:5])}" + (f"; and {len(loader.failed) - 5} more" if len(loader.failed) > 5 else ""),
                    file=sys.stderr,
                )
            if loader.not_run:
                print(
                    f"tableshift: warning: {len(loader.not_run)} top-level SELECT calls into functions the embedded server lacks"
                    f" were not run (the first: {loader.not_run[0]})",
                    file=sys.stderr,
                )
        finally:
            admin.close()
        import psycopg

        try:
            # what verify sends is planned, never run; a hostile schema's functions still meet a limit
            conn.execute(f"SET statement_timeout = '{server.STATEMENT_TIMEOUT}'")
            conn.execute("SET lock_timeout = '10s'")
            conn.autocommit = False
            yield conn
        except psycopg.Error as exc:  # a time-out, a server that went away: one line, not a traceback
            raise server.ServerError(f"the embedded PostgreSQL failed: {server.message(exc)}") from None
        finally:
            conn.close()


def exists(conn: psycopg.Connection, table: str) -> bool:
    schema, _, name = table.rpartition(".")
    # quoted: `Tweets` is not `tweets`
    row = conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL", (schema or "public", name)).fetchone()
    return bool(row and row[0])
