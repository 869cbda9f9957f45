"""Schemas into a database: a `pg_dump --schema-only` / `supabase db dump` file, or a folder of
migrations applied in name order, one statement at a time so an error names its file and line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from tableshift.db import server
from tableshift.errors import UsageError
from tableshift.fsutil import read_input

if TYPE_CHECKING:
    import psycopg

# What a Supabase project provides before its own migrations run, so a dump of one loads.
SUPABASE = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_admin') THEN CREATE ROLE supabase_admin NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN CREATE ROLE authenticator NOLOGIN; END IF;
END $$;
CREATE SCHEMA IF NOT EXISTS auth;
CREATE SCHEMA IF NOT EXISTS storage;
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE TABLE IF NOT EXISTS auth.users (
  id uuid PRIMARY KEY,
  email text,
  role text,
  raw_user_meta_data jsonb,
  raw_app_meta_data jsonb,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now()
);
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
  $f$ SELECT nullif(coalesce(current_setting('request.jwt.claim.sub', true), (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')), '')::uuid $f$;
CREATE OR REPLACE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS
  $f$ SELECT nullif(coalesce(current_setting('request.jwt.claim.role', true), (current_setting('request.jwt.claims', true)::jsonb ->> 'role')), '')::text $f$;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS
  $f$ SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''), nullif(current_setting('request.jwt.claims', true), ''))::jsonb $f$;
"""

_META = re.compile(rb"^\\[^\n]*$", re.M)  # psql meta-commands (`\restrict`, `\connect`): not SQL


def files_of(path: Path) -> list[Path]:
    """A schema file, or a folder's `*.sql` migrations in name order."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix == ".sql" and p.is_file())
        if not found:
            raise UsageError(f"{path}: no .sql files in this folder")
        return found
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    return [path]


def load(conn: psycopg.Connection, path: Path, *, what: str) -> None:
    """Run every statement of a schema file (or folder of migrations) in the open transaction."""
    import psycopg

    available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions")}
    for file in files_of(path):
        data = _META.sub(lambda m: b" " * len(m.group(0)), read_input(file, what=what))
        for start, text in _statements(data, file):
            extension = _extension(text)
            if extension is not None and extension not in available:
                # an extension this server does not have: stand-ins for the functions column
                # defaults use, else its objects are missing (not the load)
                text = _STAND_INS.get(extension, "").replace("{schema}", _extension_schema(text))
                if not text:
                    continue
            try:
                with conn.transaction():
                    conn.execute(text.encode("utf-8", "surrogateescape"), prepare=False)  # type: ignore[call-overload]
            except psycopg.Error as exc:
                line = data.count(b"\n", 0, start) + 1
                raise UsageError(f"{file}:{line}: {what} does not load: {server.message(exc)}") from None
    # a dump empties the search path for its own statements: later ones expect the usual one
    conn.execute("SET search_path TO public, extensions")


def _statements(data: bytes, file: Path) -> list[tuple[int, str]]:
    """Each statement and the byte offset it starts at."""
    from pglast import parser

    text = data.decode("utf-8", "surrogateescape")
    try:
        slices = parser.split(text, with_parser=False, only_slices=True)
    except Exception as exc:  # noqa: BLE001 - pglast raises its own error types
        raise UsageError(f"{file}: does not split into SQL statements: {exc}") from None
    encoded = text.encode("utf-8", "surrogateescape")
    out = []
    for piece in slices:
        chunk = encoded[piece].decode("utf-8", "surrogateescape")
        if chunk.strip():
            out.append((piece.start, chunk))
    return out


_STAND_INS = {
    "pgcrypto": "CREATE SCHEMA IF NOT EXISTS {schema}; CREATE OR REPLACE FUNCTION {schema}.gen_random_uuid()"
    " RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT pg_catalog.gen_random_uuid()'",
    "uuid-ossp": "CREATE SCHEMA IF NOT EXISTS {schema}; CREATE OR REPLACE FUNCTION {schema}.uuid_generate_v4()"
    " RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT pg_catalog.gen_random_uuid()'",
}
_WITH_SCHEMA = re.compile(r'\bSCHEMA\s+"?(\w+)"?', re.I)


def _extension_schema(statement: str) -> str:
    match = _WITH_SCHEMA.search(statement)
    return '"' + (match.group(1) if match else "public") + '"'


_CREATE_EXTENSION = re.compile(r'^\s*CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?"?([\w-]+)"?', re.I)


def _extension(statement: str) -> str | None:
    match = _CREATE_EXTENSION.match(statement)
    return match.group(1).lower() if match else None
