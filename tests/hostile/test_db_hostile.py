"""The database side against hostile inputs: rules, schemas, migrations folders, code literals and a
user's database. Each test is a probe of the trust review (issue 18) that failed before its fix;
the inputs are generated here.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import users_database
from helpers import run_cli

VICTIM = "CREATE TABLE victim (id int); INSERT INTO victim VALUES (1);"


@pytest.fixture
def user_db(pg_admin_url):
    """A fresh database standing for a user's own (its superuser's URL), with a victim table."""
    return users_database(pg_admin_url, VICTIM)


def query(url: str, text: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(text).fetchall()


def run_script(url: str, script: str) -> None:
    """As psql would: the whole script, in the simple protocol."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(script)


def victim_alive(url: str) -> bool:
    return query(url, "SELECT to_regclass('public.victim') IS NOT NULL")[0][0]


def project(tmp: Path, *, rules: str, target: str, legacy: str) -> tuple[Path, Path]:
    (tmp / "target.sql").write_text(target)
    (tmp / "legacy.sql").write_text(legacy)
    (tmp / "rules.toml").write_text(rules)
    return tmp / "rules.toml", tmp / "legacy.sql"


def toml(text: str) -> str:
    return json.dumps(text)  # a TOML basic string: JSON's escapes are TOML's


# -- 1 and 2: nothing smuggled into the generated SQL ----------------------------------------

HOSTILE = "x\nDROP TABLE victim; --"


def _statement_kinds(script: str) -> list[str]:
    from pglast import parser

    return [type(s.stmt).__name__ for s in parser.parse_sql(script)]


def test_names_and_values_with_line_breaks_stay_in_their_comments(tmp_path, user_db):
    legacy = f'CREATE TABLE "legacy" ("id" int PRIMARY KEY, "{HOSTILE}" text, "d" text);\n'
    target = f'CREATE TABLE "target" ("id" int PRIMARY KEY, "{HOSTILE}" text, "d" text, "kind" text);\n'
    value = toml("a'\n; DROP TABLE victim; --")
    rules = (
        f'version = 1\nname = {toml(HOSTILE)}\nschema = "target.sql"\n'
        f'[[table]]\nlegacy = "legacy"\ntarget = "target"\n[table.where]\nkind = {value}\n'
    )
    rules_path, legacy_path = project(tmp_path, rules=rules, target=target, legacy=legacy)
    run_script(user_db, legacy)
    proc = run_cli("sql", "--rules", str(rules_path), "--legacy-schema", str(legacy_path))
    assert proc.returncode == 0, proc.stderr
    # the name stands inside quoted identifiers and literals (where a line break is data); in
    # comments it is escaped on one line
    assert "-- legacy -> target" in proc.stdout and "--   copied: id, x\\nDROP TABLE victim; --, d" in proc.stdout
    assert "rules: x\\nDROP TABLE victim; --" in proc.stdout
    assert set(_statement_kinds(proc.stdout)) <= {"TransactionStmt", "DoStmt", "CreateFunctionStmt", "DropStmt", "CreateTrigStmt", "CreateStmt", "InsertStmt", "SelectStmt", "CreateSchemaStmt", "ViewStmt", "AlterTableStmt", "GrantStmt", "CreatePolicyStmt", "VariableSetStmt"}
    for phase in ("expand", "backfill", "contract"):
        one = run_cli("sql", "--rules", str(rules_path), "--legacy-schema", str(legacy_path), "--phase", phase)
        assert one.returncode == 0, one.stderr
        run_script(user_db, one.stdout)
        assert victim_alive(user_db), phase


@pytest.mark.parametrize("column", ["c$tableshift$", "binary", "full", "left", "right", "join", "Mixed Case", 'q"uote'])
def test_identifiers_that_are_keywords_or_hold_dollars_or_quotes(tmp_path, user_db, column):
    quoted = '"' + column.replace('"', '""') + '"'
    legacy = f'CREATE TABLE "legacy" ("id" int PRIMARY KEY, {quoted} text);\n'
    target = f"-- $tableshift$ in the DDL must not end the block\nCREATE TABLE \"target\" (\"id\" int PRIMARY KEY, {quoted} text);\n"
    rules = 'version = 1\nname = "t"\nschema = "target.sql"\n[[table]]\nlegacy = "legacy"\ntarget = "target"\n'
    rules_path, legacy_path = project(tmp_path, rules=rules, target=target, legacy=legacy)
    run_script(user_db, legacy + f"INSERT INTO legacy VALUES (1, 'one');")
    for phase in ("expand", "backfill"):
        proc = run_cli("sql", "--rules", str(rules_path), "--legacy-schema", str(legacy_path), "--phase", phase)
        assert proc.returncode == 0, proc.stderr
        run_script(user_db, proc.stdout)
    run_script(user_db, f"INSERT INTO legacy VALUES (2, 'two')")
    assert query(user_db, f"SELECT id, {quoted} FROM target ORDER BY id") == [(1, "one"), (2, "two")]


def test_a_generated_script_holding_a_statement_it_never_writes_is_refused():
    from tableshift.db import migration
    from tableshift.errors import UsageError

    with pytest.raises(UsageError, match="DropStmt|never writes"):
        migration._guard("BEGIN;\nDROP TABLE victim;\nCOMMIT;\n", "expand")
    migration._guard("BEGIN;\nDROP TRIGGER IF EXISTS t ON x;\nCOMMIT;\n", "expand")


def test_comments_and_literals_hold_any_text_on_one_line():
    from tableshift.db.catalog import comment, literal, quote

    for text in ["a\nb", "a\rb", "a\u2028b", "x\x0bDROP", "--\n;"]:
        assert "\n" not in comment(text) and "\r" not in comment(text)
    assert literal(float("nan")) == "'NaN'::float8" and literal(float("-inf")) == "'-Infinity'::float8"
    assert quote("select") == '"select"' and quote('a"b') == '"a""b"'
    with pytest.raises(ValueError):
        literal("a\0b")


# -- 6: names PostgreSQL would cut ------------------------------------------------------------


def test_trigger_functions_of_long_names_sharing_a_prefix_stay_apart(tmp_path, user_db):
    a, b = "t" * 47 + "_first_table", "t" * 47 + "_second_table"
    legacy = f"CREATE TABLE {a} (id int PRIMARY KEY, v text);\nCREATE TABLE {b} (id int PRIMARY KEY, v text);\n"
    target = "CREATE TABLE ta (id int PRIMARY KEY, v text);\nCREATE TABLE tb (id int PRIMARY KEY, v text);\n"
    rules = f'version = 1\nname = "long"\nschema = "target.sql"\n[[table]]\nlegacy = "{a}"\ntarget = "ta"\n[[table]]\nlegacy = "{b}"\ntarget = "tb"\n'
    rules_path, legacy_path = project(tmp_path, rules=rules, target=target, legacy=legacy)
    run_script(user_db, legacy)
    proc = run_cli("sql", "--rules", str(rules_path), "--legacy-schema", str(legacy_path), "--phase", "expand")
    assert proc.returncode == 0, proc.stderr
    run_script(user_db, proc.stdout)
    run_script(user_db, f"INSERT INTO {a} VALUES (1, 'a'); INSERT INTO {b} VALUES (2, 'b');")
    assert query(user_db, "SELECT id, v FROM ta") == [(1, "a")]
    assert query(user_db, "SELECT id, v FROM tb") == [(2, "b")]
    functions = query(user_db, "SELECT proname FROM pg_proc WHERE proname LIKE 'tableshift_sync_%' ORDER BY 1")
    assert len(functions) == 2 and all(len(name.encode()) <= 63 for (name,) in functions)


# -- 3: a hostile schema never reaches the host -----------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 1) TO PROGRAM 'touch {marker}'",
        "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {marker}'''; END $$",
        "CREATE TABLE leak AS SELECT pg_read_file('/etc/passwd')::int AS x",
        "DO $$ BEGIN PERFORM pg_read_file('/etc/passwd')::int; END $$",
        "SELECT lo_import('/etc/passwd')",
        "ALTER ROLE postgres SUPERUSER",
        "CREATE EXTENSION dblink",
        "CREATE FUNCTION sh() RETURNS int LANGUAGE c AS '/bin/sh', 'main'",
    ],
)
def test_a_hostile_schema_cannot_run_programs_or_read_files(tmp_path, statement):
    marker = tmp_path / "pwned"
    legacy = tmp_path / "legacy.sql"
    legacy.write_text(f"CREATE TABLE content_metadata (id int);\n{statement.format(marker=marker)};\n")
    rules = tmp_path / "rules.toml"
    (tmp_path / "target.sql").write_text("CREATE TABLE content_queue (id int);\n")
    rules.write_text('version = 1\nname = "h"\nschema = "target.sql"\n[[table]]\nlegacy = "content_metadata"\ntarget = "content_queue"\n')
    proc = run_cli("sql", "--rules", str(rules), "--legacy-schema", str(legacy), "--phase", "expand")
    assert not marker.exists()
    assert "root:" not in proc.stderr and "root:" not in proc.stdout
    if "dblink" not in statement:  # an extension tableshift does not create is left out, not an error
        # refused (COPY), or failed on PostgreSQL's own refusal and left out with a warning (it
        # names no table of the plan): either way one line naming its place
        lines = proc.stderr.strip().splitlines()
        assert all(line.startswith("tableshift: ") for line in lines) and "legacy.sql:2:" in lines[0], proc.stderr
        assert proc.returncode == (2 if statement.startswith("COPY") else 0), proc.stderr
        assert len(lines) == 1 or proc.returncode == 0


def test_the_server_runs_confined(tmp_path, monkeypatch):
    monkeypatch.setenv("TABLESHIFT_TEST_SECRET", "s3cret-token")
    from tableshift.db import server

    with server.embedded() as srv:
        pid = srv.process.pid
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        status = Path(f"/proc/{pid}/status").read_text()
        assert b"s3cret-token" not in environ and b"TABLESHIFT_TEST_SECRET" not in environ
        groups = next(line for line in status.splitlines() if line.startswith("Groups:")).split()[1:]
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if os.geteuid() == 0:
            assert uid != 0 and "0" not in groups
        assert stat.S_IMODE(srv.folder.stat().st_mode) == 0o700
        import psycopg

        with psycopg.connect(srv.url) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)


def test_as_root_no_parent_folder_is_changed_and_no_user_is_made(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root's run changes users and modes")

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    tmp = private / "tmp"
    tmp.mkdir(mode=0o700)
    before = {p: stat.S_IMODE(p.stat().st_mode) for p in (private, tmp)}
    users = Path("/etc/passwd").read_bytes()
    env = {**os.environ, "TMPDIR": str(tmp)}
    code = "from tableshift.db import server\nwith server.embedded() as s: print(s.folder)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert {p: stat.S_IMODE(p.stat().st_mode) for p in (private, tmp)} == before
    assert Path("/etc/passwd").read_bytes() == users  # no user made


def test_a_killed_run_leaves_no_server_and_the_next_run_sweeps_its_folder(tmp_path):
    code = textwrap.dedent(
        """\
        import os, signal, sys
        from tableshift.db import server
        srv = server.start()
        print(srv.folder, srv.process.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="sweep-", dir="/tmp"))  # its own, so no other run sweeps it first
    base.chmod(0o755)
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "TMPDIR": str(base)})
        _killed_run_is_swept(proc)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _killed_run_is_swept(proc: subprocess.CompletedProcess[str]) -> None:
    folder_text, pid_text = proc.stdout.split()
    folder, pid = Path(folder_text), int(pid_text)
    for _ in range(100):  # the server dies with its parent
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the embedded server outlived the run that started it")
    assert folder.exists()
    from tableshift.db import server

    server.sweep(folder.parent)
    assert not folder.exists()


def test_a_link_out_of_a_migrations_folder_is_not_followed(tmp_path):
    secret = tmp_path / "outside" / "secret.sql"
    secret.parent.mkdir()
    secret.write_text("TOPSECRET content;\n")
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_init.sql").write_text("CREATE TABLE content_metadata (id int);\n")
    (migrations / "002_link.sql").symlink_to(secret)
    rules = tmp_path / "rules.toml"
    (tmp_path / "target.sql").write_text("CREATE TABLE content_queue (id int);\n")
    rules.write_text('version = 1\nname = "h"\nschema = "target.sql"\n[[table]]\nlegacy = "content_metadata"\ntarget = "content_queue"\n')
    proc = run_cli("sql", "--rules", str(rules), "--legacy-schema", str(migrations))
    assert proc.returncode == 2
    assert "TOPSECRET" not in proc.stderr and "a link out of" in proc.stderr


# -- 4 and 5: a user's database is only read ---------------------------------------------------


def test_a_users_database_is_never_written_even_by_a_schema_that_commits(tmp_path, user_db):
    run_script(user_db, "CREATE TABLE content_metadata (id int PRIMARY KEY); INSERT INTO content_metadata VALUES (1), (2);")
    legacy = tmp_path / "legacy.sql"
    legacy.write_text("BEGIN;\nCREATE TABLE tweets (id int);\nCOMMIT;\nDELETE FROM content_metadata;\nDROP TABLE victim;\nCOMMIT;\n")
    rules = tmp_path / "rules.toml"
    (tmp_path / "target.sql").write_text("CREATE TABLE content_queue (id int PRIMARY KEY);\n")
    rules.write_text('version = 1\nname = "h"\nschema = "target.sql"\n[[table]]\nlegacy = "content_metadata"\ntarget = "content_queue"\n')
    proc = run_cli("sql", "--rules", str(rules), "--legacy-schema", str(legacy), "--database-url", user_db, "--phase", "expand")
    assert proc.returncode == 0, proc.stderr
    assert query(user_db, "SELECT count(*) FROM content_metadata") == [(2,)]
    assert victim_alive(user_db)
    assert query(user_db, "SELECT to_regclass('public.tweets') IS NULL, to_regclass('public.content_queue') IS NULL") == [(True, True)]


def test_a_code_literal_never_becomes_sql_even_with_standard_strings_off(tmp_path, user_db):
    run_script(user_db, "CREATE TABLE content_metadata (id int PRIMARY KEY, x text);")
    name = user_db.split("?")[0].rsplit("/", 1)[-1]
    run_script(user_db, f"ALTER DATABASE {name} SET standard_conforming_strings = off")
    app = tmp_path / "app"
    app.mkdir()
    (app / "q.ts").write_text(
        "export const q = () => supabase.from('content_metadata').select('id').eq('x', \"\\\\'; COMMIT; DROP TABLE victim; --\");\n"
        "export const n = () => supabase.from('content_metadata').select('id').eq('x', 'a\\u0000b');\n"
        "export const z = () => supabase.from('content_metadata').select('id').eq('x', 'a\\0b');\n"
    )
    rules = tmp_path / "rules.toml"
    (tmp_path / "target.sql").write_text("CREATE TABLE content_queue (id int PRIMARY KEY, x text);\n")
    rules.write_text('version = 1\nname = "h"\nschema = "target.sql"\n[[table]]\nlegacy = "content_metadata"\ntarget = "content_queue"\n')
    proc = run_cli("verify", str(app), "--rules", str(rules), "--database-url", user_db, "--format", "json", "--no-cache")
    assert proc.returncode in (0, 1), proc.stderr
    assert victim_alive(user_db)
    data = json.loads(proc.stdout)
    assert data["calls"][0]["before"]["status"] == "ok"
    assert data["calls"][0]["before"]["params"] == ["\\'; COMMIT; DROP TABLE victim; --"]
    # a NUL in a value: PostgreSQL's own answer, not an internal error
    assert [c["before"]["error"] for c in data["calls"][1:]] == ['invalid byte sequence for encoding "UTF8": 0x00'] * 2


def test_a_locked_table_in_the_users_database_is_a_one_line_error(tmp_path, user_db):
    import psycopg

    run_script(user_db, "CREATE TABLE content_metadata (id int PRIMARY KEY);")
    rules = tmp_path / "rules.toml"
    (tmp_path / "target.sql").write_text("CREATE TABLE content_queue (id int PRIMARY KEY);\n")
    rules.write_text('version = 1\nname = "h"\nschema = "target.sql"\n[[table]]\nlegacy = "content_metadata"\ntarget = "content_queue"\n')
    with psycopg.connect(user_db) as holder:
        holder.execute("LOCK TABLE content_metadata IN ACCESS EXCLUSIVE MODE")
        proc = run_cli("sql", "--rules", str(rules), "--database-url", user_db, "--phase", "expand")
        holder.rollback()
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_a_malformed_database_url_never_echoes_its_password(tmp_path):
    rules = tmp_path / "rules.toml"
    (tmp_path / "target.sql").write_text("CREATE TABLE content_queue (id int PRIMARY KEY);\n")
    rules.write_text('version = 1\nname = "h"\nschema = "target.sql"\n[[table]]\nlegacy = "content_metadata"\ntarget = "content_queue"\n')
    for url in ["postgresql://user:s3cretpw@host:notaport/db", "postgresql://user:s3cretpw@/db?bogus=s3cretpw", "host=x password=s3cretpw port=abc"]:
        proc = run_cli("sql", "--rules", str(rules), "--database-url", url)
        assert proc.returncode == 2
        assert "s3cretpw" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# -- init: names from code into the rules skeleton ----------------------------------------------


def test_init_keeps_every_table_name_inside_its_comment_and_string(tmp_path):
    import tomllib

    app = tmp_path / "app"
    app.mkdir()
    (app / "q.ts").write_text('export const q = () => supabase.from("posts\\n[[table]]\\nlegacy = \\"x\\"\\ntarget = \\"y\\"").select("id");\n')
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    proc = run_cli("init", "app", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rules = tomllib.loads((tmp_path / "tableshift-rules.toml").read_text())
    assert "table" not in rules
    tomllib.loads((tmp_path / "tableshift.toml").read_text())


# -- one line, exit status 2, whatever the machine runs out of ---------------------------------


def test_disk_full_while_patch_spills_is_one_line(tmp_path):
    from conftest import FIXTURES, RULES

    code = textwrap.dedent(
        f"""\
        import errno, sys, tempfile

        class Full(tempfile.SpooledTemporaryFile):
            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")

        tempfile.SpooledTemporaryFile = Full  # render imports it where it spills
        sys.argv = ["tableshift", "patch", {str(FIXTURES / "demo-app")!r}, "--rules", {str(RULES)!r}, "--no-cache", "--report", {str(tmp_path / "r.json")!r}]
        from tableshift.cli import main
        main()
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == ["tableshift: error: No space left on device"]


def test_as_root_binaries_nobody_can_reach_are_copied_into_the_private_folder(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("only root's server runs as another user")
    from tableshift.db import server

    install = server._install()
    reachable = server._traversable
    monkeypatch.setattr(server, "_traversable", lambda path: False if install in path.parents else reachable(path))
    with server.embedded() as srv:
        exe = Path(f"/proc/{srv.process.pid}/exe").resolve()
        assert srv.folder in exe.parents
        import psycopg

        with psycopg.connect(srv.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_what_contract_recreates_carries_no_statement_of_its_own(tmp_path, user_db):
    """Definitions tableshift now copies into the scripts (a dependent view, a SQL-standard
    function, another table's policy, a trigger function translated through a rename, a foreign
    key) with names and bodies built to break out: every phase parses to the statements tableshift
    writes, runs in the user's database, and the victim survives."""
    evil = 'v"; DROP TABLE victim; --\n$$ $tableshift$'
    legacy = f"""
    CREATE TABLE public.notes (id int PRIMARY KEY, body text, size int);
    CREATE TABLE public."{evil.replace('"', '""')}" (note int REFERENCES public.notes (id), owner text);
    CREATE VIEW public."{evil.replace('"', '""')} view" AS SELECT id, body AS "{evil.replace('"', '""')}", '$$; DROP TABLE victim; --' AS t FROM public.notes;
    CREATE FUNCTION public."{evil.replace('"', '""')} fn"() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM public.notes WHERE body <> '$$ DROP TABLE victim'; END;
    ALTER TABLE public."{evil.replace('"', '""')}" ENABLE ROW LEVEL SECURITY;
    CREATE POLICY "{evil.replace('"', '""')}" ON public."{evil.replace('"', '""')}" USING (note IN (SELECT id FROM public.notes WHERE body <> '''; DROP TABLE victim; --'));
    CREATE FUNCTION public."{evil.replace('"', '""')} trg"() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
      NEW.size := length(NEW.body || '$$ $tableshift$ '' DROP TABLE victim; --');
      RETURN NEW;
    END $f$;
    CREATE TRIGGER "{evil.replace('"', '""')}" BEFORE INSERT ON public.notes FOR EACH ROW EXECUTE FUNCTION public."{evil.replace('"', '""')} trg"();
    """
    rules, schema = project(
        tmp_path,
        rules='version = 1\nname = "h"\nschema = "target.sql"\n[[table]]\nlegacy = "notes"\ntarget = "memos"\n[table.renames]\nbody = "text"\n',
        target="CREATE TABLE public.memos (id int PRIMARY KEY, text text, size int);\n",
        legacy=legacy,
    )
    run_script(user_db, legacy)
    for phase in ("expand", "backfill", "contract"):
        proc = run_cli("sql", "--rules", str(rules), "--database-url", user_db, "--phase", phase)
        assert proc.returncode == 0, proc.stderr
        kinds = set(_statement_kinds(proc.stdout))
        assert kinds <= {
            "TransactionStmt", "DoStmt", "CreateFunctionStmt", "CreateTrigStmt", "CreateSchemaStmt", "ViewStmt", "AlterTableStmt",
            "GrantStmt", "InsertStmt", "CreateStmt", "SelectStmt", "CreatePolicyStmt", "VariableSetStmt", "DropStmt", "AlterPolicyStmt",
        }  # fmt: skip
        run_script(user_db, proc.stdout)
        assert victim_alive(user_db)
    run_script(user_db, "INSERT INTO memos (id, text) VALUES (7, 'abc')")  # the translated trigger function
    assert query(user_db, "SELECT size > 3 FROM memos WHERE id = 7") == [(True,)]
    assert victim_alive(user_db)
