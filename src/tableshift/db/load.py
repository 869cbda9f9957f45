"""Schemas into the embedded server: a `pg_dump --schema-only` / `supabase db dump` file, a folder
of migrations applied in name order, or the schema of a user's database (read by `pg_dump`, never
written). One statement at a time, so an error names its file and line.

Every input is taken as possibly hostile. Each statement is parsed by pglast first, then:
- transaction control (`BEGIN`, `COMMIT`, ...) and what no schema needs (`VACUUM`, event triggers,
  subscriptions, foreign servers, `ALTER SYSTEM`, `LOAD`, `SET ROLE`, ...) is skipped;
- a dump's `COPY ... FROM stdin` blocks are skipped with their rows (schemas, not data); any
  other `COPY` is refused, as is turning standard_conforming_strings off;
- `CREATE EXTENSION` is carried out by tableshift itself, from the parsed name, for the
  extensions it has vetted (stand-ins for a few the server lacks), never from the input's text;
- everything else runs as the server's loading role, which is not a superuser, one statement
  per message (the extended protocol refuses a second), under a statement time-out.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tableshift.db import server
from tableshift.errors import UsageError
from tableshift.fsutil import read_input

if TYPE_CHECKING:
    import psycopg

# What a Supabase project provides before its own migrations run, so a dump of one loads (the
# roles too: for a database that stands in for a user's, in the tests).
SUPABASE_ROLES = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_admin') THEN CREATE ROLE supabase_admin NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN CREATE ROLE authenticator NOLOGIN; END IF;
END $$;
"""
SUPABASE_OBJECTS = """
CREATE SCHEMA IF NOT EXISTS auth;
CREATE SCHEMA IF NOT EXISTS storage;
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE SCHEMA IF NOT EXISTS graphql_public;
GRANT USAGE ON SCHEMA graphql_public TO anon, authenticated, service_role;
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
CREATE OR REPLACE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE AS
  $f$ SELECT nullif(coalesce(current_setting('request.jwt.claim.email', true), (current_setting('request.jwt.claims', true)::jsonb ->> 'email')), '')::text $f$;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS
  $f$ SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''), nullif(current_setting('request.jwt.claims', true), ''))::jsonb $f$;
CREATE TABLE IF NOT EXISTS storage.buckets (
  id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  owner uuid,
  owner_id text,
  public boolean DEFAULT false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now()
);
CREATE TABLE IF NOT EXISTS storage.objects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  bucket_id text REFERENCES storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  metadata jsonb,
  user_metadata jsonb,
  path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
  version text,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  last_accessed_at timestamptz DEFAULT now()
);
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
CREATE OR REPLACE FUNCTION storage.foldername(name text) RETURNS text[] LANGUAGE sql IMMUTABLE AS
  $f$ SELECT (string_to_array(name, '/'))[1:greatest(array_length(string_to_array(name, '/'), 1) - 1, 0)] $f$;
CREATE OR REPLACE FUNCTION storage.filename(name text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $f$ SELECT (string_to_array(name, '/'))[array_length(string_to_array(name, '/'), 1)] $f$;
CREATE OR REPLACE FUNCTION storage.extension(name text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $f$ SELECT reverse(split_part(reverse(storage.filename(name)), '.', 1)) $f$;
GRANT USAGE ON SCHEMA auth, storage, extensions TO anon, authenticated, service_role;
-- uuid-ossp and pgcrypto, which every Supabase project has in `extensions` (and this server
-- lacks): stand-ins for what column defaults and triggers call
CREATE OR REPLACE FUNCTION extensions.uuid_generate_v4() RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT pg_catalog.gen_random_uuid()';
CREATE OR REPLACE FUNCTION extensions.gen_random_uuid() RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT pg_catalog.gen_random_uuid()';
CREATE OR REPLACE FUNCTION extensions.uuid_generate_v1() RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT pg_catalog.gen_random_uuid()';
CREATE OR REPLACE FUNCTION extensions.gen_random_bytes(integer) RETURNS bytea LANGUAGE sql VOLATILE AS
  $f$ SELECT substring(decode(md5(random()::text) || md5(random()::text), 'hex') FROM 1 FOR $1) $f$;
CREATE OR REPLACE FUNCTION extensions.digest(text, text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $f$ SELECT sha256(convert_to($1, 'UTF8')) $f$;
CREATE OR REPLACE FUNCTION extensions.digest(bytea, text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $f$ SELECT sha256($1) $f$;
CREATE OR REPLACE FUNCTION extensions.gen_salt(text) RETURNS text LANGUAGE sql VOLATILE AS $f$ SELECT md5(random()::text) $f$;
CREATE OR REPLACE FUNCTION extensions.crypt(text, text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$ SELECT md5($1 || $2) $f$;
SET search_path TO "$user", public, extensions;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
    SET LOCAL client_min_messages = error;  -- the throwaway server does not keep a logical WAL
    CREATE PUBLICATION supabase_realtime;
  END IF;
END $$;
"""
SUPABASE = SUPABASE_ROLES + SUPABASE_OBJECTS

def prelude_text() -> str:
    """The stand-ins as one script, to run the phases on a PostgreSQL of one's own (`sql --prelude`)."""
    return (
        "-- What a Supabase project provides, as tableshift stands it in before loading schemas\n"
        "-- (tableshift sql --prelude). Run it on a PostgreSQL of your own before your migrations.\n"
        + SUPABASE_ROLES.strip() + "\n" + SUPABASE_OBJECTS.strip() + "\n"
        + DEFAULT_PRIVILEGES.strip().format(verb="GRANT", to="TO") + "\n"
    )


# Supabase's default privileges: what its owner creates in public, the API roles may use. In
# force while a migrations folder loads (as on a live project); a dump carries its own grants.
DEFAULT_PRIVILEGES = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public {verb} ALL ON TABLES {to} anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public {verb} ALL ON SEQUENCES {to} anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public {verb} ALL ON FUNCTIONS {to} anon, authenticated, service_role;
"""

_META = re.compile(rb"^\\[^\n]*$", re.M)  # psql meta-commands (`\restrict`, `\connect`): not SQL
_COPY_FROM_STDIN = re.compile(rb"^\s*COPY\s.*\bFROM\s+stdin\b.*;\s*$", re.I)


def _without_copy_data(data: bytes) -> bytes:
    """A dump's `COPY ... FROM stdin;` blocks with their rows (up to the `\\.` line) made blank
    lines: rows are data, not SQL (the COPY statement itself is then skipped); line numbers stay."""
    if b"stdin" not in data and b"STDIN" not in data:
        return data
    lines = data.split(b"\n")
    inside = False
    for i, line in enumerate(lines):
        if inside:
            inside = line.rstrip(b"\r") != b"\\."
            lines[i] = b""
        elif _COPY_FROM_STDIN.match(line):
            inside = True
    return b"\n".join(lines)

# Statements a schema never needs: not run.
_SKIPPED = frozenset(
    """TransactionStmt VacuumStmt CheckPointStmt ClusterStmt ReindexStmt ListenStmt UnlistenStmt NotifyStmt
    DiscardStmt LoadStmt CreateEventTrigStmt AlterEventTrigStmt AlterSystemStmt CreateSubscriptionStmt
    AlterSubscriptionStmt DropSubscriptionStmt CreateTableSpaceStmt DropTableSpaceStmt AlterTableSpaceOptionsStmt
    AlterTableMoveAllStmt CreatedbStmt DropdbStmt AlterDatabaseStmt AlterDatabaseSetStmt AlterDatabaseRefreshCollStmt
    CreateFdwStmt AlterFdwStmt CreateForeignServerStmt AlterForeignServerStmt CreateUserMappingStmt
    AlterUserMappingStmt DropUserMappingStmt ImportForeignSchemaStmt CreateForeignTableStmt SecLabelStmt
    VariableShowStmt PrepareStmt ExecuteStmt DeallocateStmt LockStmt DeclareCursorStmt FetchStmt ClosePortalStmt
    AlterExtensionStmt AlterExtensionContentsStmt ExplainStmt""".split()
)
# Settings a load never takes from its input: who it runs as, and how text is quoted.
_SETTINGS_SKIPPED = {"role", "session_authorization", "session_replication_role"}
_SETTINGS_REFUSED = {"standard_conforming_strings", "backslash_quote", "escape_string_warning"}

# Extensions tableshift creates (as the superuser, in a schema only it owns, then moved where the
# input asked): the trusted ones of PostgreSQL's contrib, and a few more that only add types,
# operators or trigger functions. Never dblink, file_fdw, postgres_fdw or the inspection tools.
_VETTED = frozenset(
    """btree_gin btree_gist citext cube dict_int fuzzystrmatch hstore intarray isn lo ltree pg_trgm seg tablefunc tcn
    tsm_system_rows tsm_system_time unaccent vector moddatetime earthdistance pg_stat_statements bloom intagg dict_xsyn
    autoinc insert_username refint""".split()
)
_MISSING = {"42883", "3F000", "42P01"}  # undefined function, schema, table
_STAND_INS = {
    "pgcrypto": "CREATE OR REPLACE FUNCTION {schema}.gen_random_uuid() RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT pg_catalog.gen_random_uuid()'",
    "uuid-ossp": "CREATE OR REPLACE FUNCTION {schema}.uuid_generate_v4() RETURNS uuid LANGUAGE sql VOLATILE AS 'SELECT pg_catalog.gen_random_uuid()'",
}


@dataclass(slots=True)
class Loader:
    """Loads statements into the embedded server: `conn` is the loading role's (autocommit),
    `admin` the superuser's (only for vetted extensions)."""

    conn: psycopg.Connection
    admin: psycopg.Connection
    available: set[str] = field(default_factory=set)
    skipped: int = 0
    not_run: list[str] = field(default_factory=list)  # calls into what the server lacks
    # the plan's legacy and target tables: a statement that fails without naming one of them is
    # left out with a warning (None: every failure stops the load)
    tables: set[str] | None = None
    failed: list[str] = field(default_factory=list)

    def prelude(self) -> None:
        self.available = {row[0] for row in self.admin.execute("SELECT name FROM pg_available_extensions")}
        self.conn.execute(SUPABASE_OBJECTS)

    def finish(self) -> None:
        # a dump empties the search path for its own statements: later ones expect the usual one
        self.conn.execute("RESET ALL")
        self.conn.execute('SET search_path TO "$user", public, extensions')

    def load(self, path: Path, *, what: str, root: Path | None = None) -> None:
        """Every statement of a schema file (or folder of migrations)."""
        folder = path.is_dir()
        if folder:
            self.conn.execute(DEFAULT_PRIVILEGES.format(verb="GRANT", to="TO"))
        for file in files_of(path, root=root):
            data = read_input(file, what=what)
            self.text(data, str(file), what=what)
        self.finish()
        if folder:
            self.conn.execute(DEFAULT_PRIVILEGES.format(verb="REVOKE", to="FROM"))

    def text(self, data: bytes, place: str, *, what: str) -> None:
        data = _META.sub(lambda m: b" " * len(m.group(0)), _without_copy_data(data))
        for line, statement in _statements(data, place):
            try:
                self._one(statement)
            except UsageError as exc:
                raise UsageError(f"{place}:{line}: {what}: {exc}") from None
            except server.psycopg_errors() as exc:
                message = server.message(exc, redact=True)
                if self.tables is not None and not _touches(statement, self.tables):
                    # a migration on a table made in the dashboard, a function of a missing
                    # extension: nothing the plan reads, so the load goes on, and says so
                    self.failed.append(f"{place}:{line}: {message}")
                    continue
                raise UsageError(f"{place}:{line}: {what} does not load: {message}") from None

    def _one(self, text: str) -> None:
        from pglast import parser

        try:
            nodes = parser.parse_sql(text)
        except Exception as exc:  # noqa: BLE001 - pglast's own error types
            raise UsageError(f"not run: PostgreSQL 17's parser (pglast) cannot read it ({_first(exc)})") from None
        if len(nodes) != 1:
            raise UsageError("not run: not exactly one statement")
        node = nodes[0].stmt
        kind = type(node).__name__
        if kind in _SKIPPED:
            self.skipped += 1
            return
        if kind == "CopyStmt" and node.is_from and node.filename is None and not node.is_program:
            self.skipped += 1  # a dump's rows, from stdin: its data lines were left out with it
            return
        if kind == "CopyStmt":
            raise UsageError("COPY is not run: tableshift loads schemas, not data (use a --schema-only dump)")
        if kind == "VariableSetStmt" and (node.name or "").lower() in _SETTINGS_SKIPPED:
            self.skipped += 1
            return
        if kind == "VariableSetStmt" and (node.name or "").lower() in _SETTINGS_REFUSED:
            values = [_option_text(getattr(a, "val", None)) for a in node.args or ()]
            if (node.name or "").lower() == "standard_conforming_strings" and values not in (["on"], ["true"]):
                raise UsageError("not run: tableshift keeps standard_conforming_strings on")
            self.skipped += 1  # the session keeps PostgreSQL's defaults
            return
        if kind == "CreateExtensionStmt":
            self._extension(node)
            return
        if kind == "CreateSchemaStmt" and not node.schemaElts and self._schema_exists(node.schemaname):
            return  # `CREATE SCHEMA public` of a dump: the server has it
        if kind == "CreatePublicationStmt" and getattr(node, "for_all_tables", False):
            self.skipped += 1  # only a superuser may; no table of a schema depends on it
            return
        if kind == "CreatePublicationStmt" and self.conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (node.pubname,)).fetchone():
            # Supabase's own `supabase_realtime`, made empty by the prelude: the input's replaces it
            self.conn.execute(f"DROP PUBLICATION {_ident(node.pubname)}")
        self.conn.execute(f"SET statement_timeout = '{server.STATEMENT_TIMEOUT}'")
        try:
            server.execute(self.conn, text)
        except server.psycopg_errors() as exc:
            state = getattr(getattr(exc, "diag", None), "sqlstate", None)
            if kind == "AlterDefaultPrivilegesStmt" and state == "42501":
                self.skipped += 1  # for a role the loader may not act for: no existing table changes
                return
            if kind == "SelectStmt" and state in _MISSING:
                # `SELECT cron.schedule(...)`, `SELECT pgmq.create(...)`: a call into an
                # extension this server lacks, which no table depends on
                self.not_run.append(server.message(exc))
                return
            raise
        self._still_safe()

    def _still_safe(self) -> None:
        from psycopg import pq

        if self.conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            raise UsageError("not run: the statement left a transaction open")
        if self.conn.pgconn.parameter_status(b"standard_conforming_strings") != b"on":
            raise UsageError("not run: it turns standard_conforming_strings off")

    def _schema_exists(self, name: str | None) -> bool:
        return name is not None and self.conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone() is not None

    def _extension(self, node) -> None:  # type: ignore[no-untyped-def]
        name = str(node.extname)
        schema = "public"
        for option in node.options or ():
            if option.defname == "schema":
                schema = _option_text(option.arg) or schema
        self.extension(name, schema)

    def extension(self, name: str, schema: str) -> None:
        """Create extension `name` in `schema` as the input asked, when it is vetted; stand-ins
        for the functions column defaults use from a few the server lacks; else nothing (its
        objects are missing, not the load)."""
        from psycopg import sql

        if self.admin.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (name,)).fetchone() is not None:
            return
        if name in _VETTED and name in self.available:
            if not self._schema_exists(schema):
                raise UsageError(f"CREATE EXTENSION {name}: schema {schema!r} does not exist")
            # created where the input cannot have planted anything, then moved
            staging = "tableshift_extension_staging"
            self.admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(staging)))
            self.admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(staging)))
            self.admin.execute(sql.SQL("CREATE EXTENSION {} SCHEMA {} CASCADE").format(sql.Identifier(name), sql.Identifier(staging)))
            for (ext,) in self.admin.execute(
                "SELECT e.extname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname = %s", (staging,)
            ).fetchall():
                self.admin.execute(sql.SQL("ALTER EXTENSION {} SET SCHEMA {}").format(sql.Identifier(ext), sql.Identifier(schema)))
            self.admin.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(staging)))
            return
        stand_in = _STAND_INS.get(name)
        if stand_in is not None and self._schema_exists(schema):
            server.execute(self.conn, stand_in.replace("{schema}", _ident(schema)))
        else:
            self.skipped += 1

    def database(self, url: str, schemas: list[str]) -> None:
        """`schemas`: those the rules name, taken even where Supabase manages them."""
        """The schema of a user's database: its roles and extensions read (in a read-only
        transaction), its tables, views, functions, policies and grants dumped by pg_dump (a
        read-only snapshot), then loaded here. Nothing runs in the user's database."""
        conninfo, password = _conninfo(url)
        roles, extensions = _read_only_facts(url)
        for role in roles:
            server.create_role(self.admin, role)
        for name, schema in extensions:
            if self._schema_exists(schema) or schema == "public":
                self.extension(name, schema)
        dump = _pg_dump(conninfo, password, schemas)
        self.text(dump, "--database-url (pg_dump)", what="the database's schema")
        self.finish()


def _touches(statement: str, tables: set[str]) -> bool:
    """Whether a statement names one of `tables` (as a relation, or anywhere in its text when it
    cannot be parsed): only then may its failure stop the load."""
    from pglast import parser
    from pglast.visitors import Visitor

    try:
        nodes = parser.parse_sql(statement)
    except Exception:  # noqa: BLE001 - pglast's own error types
        return True
    names: set[str] = set()

    class Relations(Visitor):  # type: ignore[misc]
        def visit_RangeVar(self, ancestors, node):  # type: ignore[no-untyped-def]
            names.add(node.relname)

    for node in nodes:
        Relations()(node)
    if names & tables:
        return True
    lowered = statement.lower()
    return any(table.lower() in lowered for table in tables) and not names


def files_of(path: Path, *, root: Path | None = None) -> list[Path]:
    """A schema file, or a folder's `*.sql` migrations in name order. In a folder, a link is
    followed only to a file inside that folder (or inside `root`, the project, when given)."""
    if path.is_dir():
        inside = [path.resolve()] + ([root.resolve()] if root is not None else [])
        found = []
        for p in sorted(path.iterdir()):
            if p.suffix != ".sql":
                continue
            if p.is_symlink():
                real = p.resolve()
                if not any(real == base or base in real.parents for base in inside):
                    raise UsageError(f"{p}: a link out of {path}: not read")
            if p.is_file():
                found.append(p)
        if not found:
            raise UsageError(f"{path}: no .sql files in this folder")
        return found
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    return [path]


def _statements(data: bytes, place: str) -> list[tuple[int, str]]:
    """Each statement and the line it starts on."""
    from pglast import parser

    if b"\0" in data:
        raise UsageError(f"{place}: holds a NUL byte: not SQL")
    text = data.decode("utf-8", "surrogateescape")
    try:
        # PostgreSQL's grammar knows where a statement ends (`BEGIN ATOMIC ... END` holds `;`)
        slices = parser.split(text, with_parser=True, only_slices=True)
    except Exception:  # noqa: BLE001 - a statement the parser refuses: its scanner still splits
        try:
            slices = parser.split(text, with_parser=False, only_slices=True)
        except Exception as exc:  # noqa: BLE001 - pglast raises its own error types
            raise UsageError(f"{place}: does not split into SQL statements: {_first(exc)}") from None
    out = []
    line, seen = 1, 0
    for piece in slices:  # offsets in characters, not bytes
        chunk = text[piece]
        if chunk.strip():
            start = piece.start + _lead(chunk)  # the line of the statement, not of its comments
            line += text.count("\n", seen, start)
            seen = start
            out.append((line, chunk))
    return out


def _lead(chunk: str) -> int:
    """Where the statement begins in `chunk`: past the blank lines and comments before it."""
    i = 0
    while i < len(chunk):
        if chunk[i].isspace():
            i += 1
        elif chunk.startswith("--", i):
            end = chunk.find("\n", i)
            i = len(chunk) if end < 0 else end + 1
        elif chunk.startswith("/*", i):
            end = chunk.find("*/", i + 2)
            i = len(chunk) if end < 0 else end + 2
        else:
            break
    return i if i < len(chunk) else 0


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return server.printable(lines[0] if lines else type(exc).__name__)[:200]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _option_text(arg) -> str | None:  # type: ignore[no-untyped-def]
    value = getattr(arg, "sval", None) or getattr(arg, "str", None)
    if value is None and isinstance(arg, str):
        value = arg
    return str(value) if value is not None else None


# -- a user's database: read, never written ---------------------------------------------------

# Schemas Supabase manages itself: not the project's (its stand-ins are loaded instead).
_MANAGED = frozenset(
    """auth storage extensions realtime _realtime graphql graphql_public vault pgsodium pgsodium_masks supabase_functions
    supabase_migrations net cron pgbouncer _analytics pgtle topology""".split()
)


def _conninfo(url: str) -> tuple[str, str | None]:
    """The connection string without its password (which goes to pg_dump through its
    environment, not its command line). A string libpq cannot read is refused without echoing
    any of it: it may hold a password."""
    from psycopg import conninfo

    try:
        params = conninfo.conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - libpq's message quotes the string
        raise server.ServerError("--database-url: not a connection string libpq can read") from None
    password = params.pop("password", None)
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}), (str(password) if password is not None else None)


def _read_only_facts(url: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The roles and extensions of the user's database, in a read-only transaction that is
    rolled back, with lock and statement time-outs."""
    import psycopg

    conn = server.connect(url)
    try:
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SET LOCAL lock_timeout = '10s'")
        conn.execute("SET LOCAL statement_timeout = '60s'")
        roles = [r for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1")]
        extensions = [
            (name, schema)
            for name, schema in conn.execute(
                "SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
                " WHERE e.extname <> 'plpgsql' ORDER BY 1"
            )
        ]
    except psycopg.Error as exc:
        raise server.ServerError(f"cannot read the database: {server.message(exc)}") from None
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()
    return roles, extensions


def _pg_dump(conninfo: str, password: str | None, schemas: list[str]) -> bytes:
    import os

    binary = server.binary("pg_dump")
    env = dict(server.CLEAN_ENV)
    for key in ("HOME", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSERVICEFILE", "PGPASSFILE"):
        if key in os.environ:
            env[key] = os.environ[key]
    if password is not None:
        env["PGPASSWORD"] = password
    env["PGOPTIONS"] = "-c standard_conforming_strings=on"  # the dump's text quoted the standard way
    command = [
        str(binary), "--schema-only", "--no-owner", "--no-subscriptions", "--no-security-labels",
        "--no-tablespaces", "--lock-wait-timeout=10000", f"--dbname={conninfo}",
        *(f"--exclude-schema={s}" for s in sorted(_MANAGED - set(schemas))),
    ]  # fmt: skip
    try:
        proc = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=600)
    except subprocess.TimeoutExpired:
        raise server.ServerError("pg_dump of --database-url took more than 10 minutes") from None
    except OSError as exc:
        raise server.ServerError(f"pg_dump of --database-url did not run: {exc.strerror}") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        text = lines[-1] if lines else f"exit status {proc.returncode}"
        if password:
            text = text.replace(password, "***")
        raise server.ServerError(f"cannot read the database's schema: {server.printable(text.removeprefix('pg_dump: error: '))[:300]}")
    return proc.stdout
