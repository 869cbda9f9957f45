"""`tableshift sql`: each phase run against a real PostgreSQL with real rows.

One embedded server for the whole session; each test gets a database of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_script as run
from conftest import users_database
from helpers import run_cli

DB = Path(__file__).resolve().parent.parent / "fixtures" / "database"
RULES = DB / "rules.toml"


@pytest.fixture
def server_url(pg_admin_url):
    return pg_admin_url


@pytest.fixture
def legacy_db(pg_admin_url):
    """A database with the Supabase basics, the legacy schema and the legacy rows."""
    return users_database(pg_admin_url, DB / "legacy.sql", (DB / "rows.sql").read_text())


def sql(url: str, phase: str | None = None, *extra: str) -> str:
    args = ["sql", "--rules", str(RULES), "--database-url", url, *(["--phase", phase] if phase else []), *extra]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def query(url: str, text: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(text, params).fetchall()


def test_the_generated_sql_matches_its_golden_file(legacy_db, update_golden):
    text = sql(legacy_db)
    golden = DB / "expected" / "migration.sql"
    if update_golden:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text(), "fixtures/database/expected/migration.sql differs: run pytest --update-golden"


def test_an_embedded_server_by_default_gives_the_same_sql(legacy_db):
    proc = run_cli("sql", "--rules", str(RULES), "--legacy-schema", str(DB / "legacy.sql"), "--phase", "expand")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == sql(legacy_db, "expand")


def test_expand_creates_targets_and_dual_writes_inserts_updates_and_deletes(legacy_db):
    expand = sql(legacy_db, "expand")
    run(legacy_db, expand)
    run(legacy_db, expand)  # safe to run twice
    run(
        legacy_db,
        "INSERT INTO content_metadata (decision_id, content, topic_cluster) VALUES ('00000000-0000-0000-0000-0000000000aa', 'new', 'sleep');"
        "INSERT INTO outcomes (tweet_id, likes_count, impressions_count, collected_at) VALUES ('2002', 3, '90', '2026-02-01 00:00+00');",
    )
    assert query(legacy_db, "SELECT content, raw_topic, status FROM content_queue") == [("new", "sleep", "queued")]
    assert query(legacy_db, "SELECT tweet_id, likes, impressions, data_source FROM engagement_metrics") == [("2002", 3, 90, "outcomes")]
    run(legacy_db, "UPDATE content_metadata SET topic_cluster = 'rest' WHERE content = 'new'")
    assert query(legacy_db, "SELECT raw_topic FROM content_queue") == [("rest",)]
    run(legacy_db, "DELETE FROM content_metadata WHERE content = 'new'")
    assert query(legacy_db, "SELECT count(*) FROM content_queue") == [(0,)]
    # a table with no key shared with its target: inserts only, and the script says so
    assert "tweet_metrics and engagement_metrics share no unique column set" in expand
    assert "inserts are propagated, updates and deletes are not" in expand
    run(legacy_db, "INSERT INTO tweet_metrics (tweet_id, likes_count) VALUES ('2002', 4)")
    assert query(legacy_db, "SELECT likes, data_source FROM engagement_metrics WHERE data_source = 'tweet_metrics'") == [(4, "tweet_metrics")]


def test_backfill_copies_once_with_casts_and_reports_what_does_not_cast(legacy_db):
    run(legacy_db, sql(legacy_db, "expand"))
    backfill = sql(legacy_db, "backfill")
    not_copied = run(legacy_db, backfill)
    assert not_copied == [("outcomes", "1001, 2026-01-09 12:00:00+00", "impressions_count", "n/a")]
    counts = "SELECT (SELECT count(*) FROM content_queue), (SELECT count(*) FROM posted_content), (SELECT count(*) FROM engagement_metrics)"
    assert query(legacy_db, counts) == [(2, 1, 2)]
    assert run(legacy_db, backfill) == not_copied  # idempotent: nothing copied twice
    assert query(legacy_db, counts) == [(2, 1, 2)]
    assert query(legacy_db, "SELECT raw_topic FROM content_queue ORDER BY created_at") == [("sleep",), ("nutrition",)]
    assert query(legacy_db, "SELECT impressions FROM engagement_metrics WHERE data_source = 'outcomes'") == [(1200,)]


def test_parity_finds_missing_rows_and_a_tampered_value(legacy_db):
    run(legacy_db, sql(legacy_db, "expand"))
    run(legacy_db, sql(legacy_db, "backfill"))
    parity = sql(legacy_db, "parity")
    # the row whose impressions do not cast has no twin: parity says so
    assert run(legacy_db, parity) == [("outcomes", "1001, 2026-01-09 12:00:00+00", "(row)", "1001, 2026-01-09 12:00:00+00", None)]
    run(legacy_db, "UPDATE outcomes SET impressions_count = '0' WHERE impressions_count = 'n/a'")  # fixed at the source
    assert run(legacy_db, parity) == []
    run(legacy_db, "ALTER TABLE content_queue DISABLE TRIGGER ALL; UPDATE content_queue SET raw_topic = 'tampered' WHERE raw_topic = 'sleep'")
    assert run(legacy_db, parity) == [("content_metadata", "00000000-0000-0000-0000-000000000001", "topic_cluster", "sleep", "tampered")]


def test_contract_archives_and_leaves_views_old_code_can_read_and_write(legacy_db):
    run(legacy_db, sql(legacy_db, "expand"))
    run(legacy_db, sql(legacy_db, "backfill"))
    contract = sql(legacy_db, "contract", "--archive-schema", "legacy_archive")
    run(legacy_db, contract)
    run(legacy_db, contract)  # safe to run twice
    assert query(legacy_db, "SELECT to_regclass('legacy_archive.outcomes') IS NOT NULL, (SELECT relkind FROM pg_class WHERE oid = 'public.outcomes'::regclass)") == [(True, "v")]
    # the old names, the old column names, only the merged table's own rows
    assert query(legacy_db, "SELECT topic_cluster FROM content_metadata ORDER BY created_at") == [("sleep",), ("nutrition",)]
    assert query(legacy_db, "SELECT tweet_id, likes_count FROM tweet_metrics") == [("1001", 40)]
    assert query(legacy_db, "SELECT likes_count, impressions_count FROM outcomes") == [(41, 1200)]
    # exactly the legacy columns: select('*') shows no discriminator the table never had
    legacy_columns = query(legacy_db, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'legacy_archive' AND table_name = 'outcomes' ORDER BY ordinal_position")
    view_columns = query(legacy_db, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'outcomes' ORDER BY ordinal_position")
    assert "data_source" not in [c for (c,) in view_columns]
    assert set(view_columns) <= set(legacy_columns)
    # old code still writes through the views; the discriminator is kept
    run(legacy_db, "INSERT INTO outcomes (tweet_id, likes_count, impressions_count) VALUES ('3003', 1, 5)")
    assert query(legacy_db, "SELECT data_source FROM engagement_metrics WHERE tweet_id = '3003'") == [("outcomes",)]
    # an upsert that names no conflict target works through the view, and stays in its view
    run(legacy_db, "INSERT INTO outcomes (tweet_id, collected_at, likes_count) VALUES ('3003', '2026-01-01', 1)")
    run(legacy_db, "INSERT INTO outcomes (tweet_id, collected_at, likes_count) VALUES ('3003', '2026-01-01', 2) ON CONFLICT DO NOTHING")
    assert query(legacy_db, "SELECT likes, data_source FROM engagement_metrics WHERE tweet_id = '3003' AND collected_at = '2026-01-01'") == [(1, "outcomes")]
    assert query(legacy_db, "SELECT check_option FROM information_schema.views WHERE table_schema = 'public' AND table_name = 'outcomes'") == [("CASCADED",)]
    run(legacy_db, "UPDATE content_metadata SET topic_cluster = 'naps' WHERE topic_cluster = 'sleep'")
    assert query(legacy_db, "SELECT count(*) FROM content_queue WHERE raw_topic = 'naps'") == [(1,)]
    # dropped columns are not faked; views keep row-level security of the caller
    assert "actual_likes" not in [r[0] for r in query(legacy_db, "SELECT column_name FROM information_schema.columns WHERE table_name = 'content_metadata' AND table_schema = 'public'")]
    assert query(legacy_db, "SELECT reloptions FROM pg_class WHERE oid = 'public.content_metadata'::regclass") == [(["security_invoker=true"],)]
    # who could use the table can use its view
    assert query(legacy_db, "SELECT has_table_privilege('anon', 'public.tweets', 'SELECT'), has_table_privilege('anon', 'public.outcomes', 'SELECT')") == [(True, False)]


def test_a_migrations_folder_is_applied_in_name_order(tmp_path, server_url):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20240101_tables.sql").write_text("CREATE TABLE tweets (tweet_id text PRIMARY KEY, decision_id uuid NOT NULL, content text NOT NULL);\n")
    (folder / "20240202_more.sql").write_text("ALTER TABLE tweets ADD COLUMN posted_at timestamptz;\n")
    rules = tmp_path / "rules.toml"
    rules.write_text('version = 1\nname = "m"\nschema = "target.sql"\n[[table]]\nlegacy = "tweets"\ntarget = "posted_content"\n')
    (tmp_path / "target.sql").write_text((DB / "target.sql").read_text())
    proc = run_cli("sql", "--rules", str(rules), "--legacy-schema", str(folder), "--phase", "expand")
    assert proc.returncode == 0, proc.stderr
    assert "--   copied: tweet_id, decision_id, content, posted_at" in proc.stdout


def test_bad_inputs_are_one_line_errors(tmp_path):
    broken = tmp_path / "legacy.sql"
    broken.write_text("CREATE TABLE ok (id int);\n\nCREATE TABLE content_metadata (id int REFERENCES nowhere (id));\n")
    proc = run_cli("sql", "--rules", str(RULES), "--legacy-schema", str(broken))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f'tableshift: error: {broken}:3: legacy schema does not load: relation "nowhere" does not exist'
    proc = run_cli("sql", "--rules", str(RULES))
    assert proc.returncode == 2 and "--legacy-schema" in proc.stderr
    proc = run_cli("sql", "--rules", str(RULES), "--legacy-schema", str(tmp_path / "missing.sql"))
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr
    proc = run_cli("sql", "--rules", str(RULES), "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert proc.returncode == 2 and proc.stderr.startswith("tableshift: error: cannot connect to the database:")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_dual_write_never_fails_a_legacy_write_and_enums_cast_through_text(legacy_db, tmp_path):
    run(legacy_db, sql(legacy_db, "expand"))
    # a value the target cannot take: the legacy insert still succeeds, parity shows the missing twin
    run(legacy_db, "INSERT INTO outcomes (tweet_id, impressions_count, collected_at) VALUES ('4004', 'unknown', '2026-03-01 00:00+00')")
    assert query(legacy_db, "SELECT count(*) FROM outcomes WHERE tweet_id = '4004'") == [(1,)]
    assert query(legacy_db, "SELECT count(*) FROM engagement_metrics WHERE tweet_id = '4004'") == [(0,)]
    assert ("outcomes", "4004, 2026-03-01 00:00:00+00", "(row)", "4004, 2026-03-01 00:00:00+00", None) in run(legacy_db, sql(legacy_db, "parity"))
    # enum to enum: no direct cast in PostgreSQL, so the script goes through text
    run(legacy_db, "CREATE TYPE app_status AS ENUM ('queued', 'posted'); CREATE TYPE queue_status AS ENUM ('queued', 'posted');"
        "CREATE TABLE drafts (decision_id uuid PRIMARY KEY, content text NOT NULL, status app_status);"
        "CREATE TABLE draft_queue (decision_id uuid PRIMARY KEY, content text NOT NULL, status queue_status);")
    rules = tmp_path / "rules.toml"
    (tmp_path / "target.sql").write_text("CREATE TABLE draft_queue (decision_id uuid PRIMARY KEY, content text NOT NULL, status queue_status);\n")
    rules.write_text('version = 1\nname = "enums"\nschema = "target.sql"\n[[table]]\nlegacy = "drafts"\ntarget = "draft_queue"\n')
    proc = run_cli("sql", "--rules", str(rules), "--database-url", legacy_db, "--phase", "expand")
    assert proc.returncode == 0, proc.stderr
    assert '(NEW."status")::text::queue_status' in proc.stdout
    run(legacy_db, proc.stdout)
    run(legacy_db, "INSERT INTO drafts VALUES ('00000000-0000-0000-0000-0000000000d1', 'hi', 'posted')")
    assert query(legacy_db, "SELECT status::text FROM draft_queue") == [("posted",)]


def test_a_table_with_no_key_keeps_every_copy_of_a_row(legacy_db, tmp_path):
    run(legacy_db, 'CREATE TABLE notes ("Body" text, "select" text); INSERT INTO notes VALUES (\'dup\', \'s\'), (\'dup\', \'s\');')
    (tmp_path / "target.sql").write_text('CREATE TABLE note_items ("Body" text, "select" text);\n')
    rules = tmp_path / "rules.toml"
    rules.write_text('version = 1\nname = "copies"\nschema = "target.sql"\n[[table]]\nlegacy = "notes"\ntarget = "note_items"\n')

    def phase(name: str) -> str:
        proc = run_cli("sql", "--rules", str(rules), "--database-url", legacy_db, "--phase", name)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    run(legacy_db, phase("expand"))
    run(legacy_db, "INSERT INTO notes VALUES ('dup', 's')")  # a third copy, through the trigger
    parity = phase("parity")
    assert run(legacy_db, parity) == [("notes", "dup, s", "(rows)", "3", "1")]
    backfill = phase("backfill")
    run(legacy_db, backfill)
    run(legacy_db, backfill)  # idempotent: no copy twice
    assert query(legacy_db, "SELECT count(*) FROM note_items") == [(3,)]
    assert run(legacy_db, parity) == []


def test_a_real_shaped_supabase_migrations_folder_loads(tmp_path):
    """The shapes real `supabase/migrations` folders hold: transactions, extensions in `extensions`,
    uuid-ossp defaults, storage policies, realtime, moddatetime triggers, cron and queue calls the
    embedded server lacks, text beyond ASCII before a statement."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20240101000000_init.sql").write_text(
        "BEGIN;\n"
        "create extension if not exists vector with schema extensions;\n"
        "create extension if not exists moddatetime schema extensions;\n"
        "create extension if not exists http with schema extensions;\n"
        "create table public.files (\n"
        "  id uuid primary key default uuid_generate_v4(),\n"
        "  user_id uuid not null references auth.users (id) on delete cascade,\n"
        "  name text not null, embedding extensions.vector(3),\n"
        "  updated_at timestamptz default now()\n"
        ");\n"
        "create trigger touch before update on public.files for each row execute procedure extensions.moddatetime (updated_at);\n"
        "COMMIT;\n",
        encoding="utf-8",
    )
    (folder / "20240102000000_storage.sql").write_text(
        "-- Les fichiers — chacun à son propriétaire\n"
        "insert into storage.buckets (id, name, public) values ('files', 'files', false);\n"
        "create policy \"own files\" on storage.objects for select to authenticated using (auth.uid()::text = (storage.foldername(name))[1]);\n"
        "alter publication supabase_realtime add table public.files;\n"
        "select cron.schedule('nightly', '0 3 * * *', $$delete from public.files where name = ''tmp''$$);\n"
        "select pgmq.create('jobs');\n"
        "comment on table public.files is 'Fichiers — utilisateur';\n"
        "create function public.file_count(u uuid) returns bigint language sql\n"
        "begin atomic select count(*) from public.files where user_id = u; end;\n",
        encoding="utf-8",
    )
    (tmp_path / "target.sql").write_text(
        "CREATE TABLE documents (id uuid PRIMARY KEY, user_id uuid NOT NULL, name text NOT NULL,"
        " embedding extensions.vector(3), updated_at timestamptz);\n"
    )
    rules = tmp_path / "rules.toml"
    rules.write_text('version = 1\nname = "real"\nschema = "target.sql"\n[[table]]\nlegacy = "files"\ntarget = "documents"\n')
    proc = run_cli("sql", "--rules", str(rules), "--legacy-schema", str(folder), "--phase", "expand")
    assert proc.returncode == 0, proc.stderr
    assert "2 top-level SELECT calls into functions the embedded server lacks were not run" in proc.stderr
    assert '"public"."tableshift_sync_files"' in proc.stdout
    # the business trigger, the grants Supabase's default privileges gave, and realtime come along
    assert 'CREATE TRIGGER "files: touch" BEFORE UPDATE ON public.documents FOR EACH ROW WHEN (current_setting(\'tableshift.syncing\', TRUE) IS DISTINCT FROM \'on\')' in proc.stdout
    assert 'ALTER PUBLICATION "supabase_realtime" ADD TABLE "public"."documents"' in proc.stdout
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."documents" TO "authenticated";' in proc.stdout
    # a table made in the dashboard, never in a migration: its migration is left out, and said
    dashboard = folder / "20240103000000_dashboard.sql"
    dashboard.write_text("alter table public.made_in_dashboard add column note text;\n", encoding="utf-8")
    proc = run_cli("sql", "--rules", str(rules), "--legacy-schema", str(folder), "--phase", "expand")
    assert proc.returncode == 0, proc.stderr
    assert f'did not load and were left out: {dashboard}:1: relation "public.made_in_dashboard" does not exist' in proc.stderr
    # one that names a table of the plan stops the load, with its file and line
    broken = folder / "20240104000000_broken.sql"
    broken.write_text("-- a comment — first\n\ncreate table x (id int references files (nowhere));\n", encoding="utf-8")
    proc = run_cli("sql", "--rules", str(rules), "--legacy-schema", str(folder), "--phase", "expand")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"tableshift: error: {broken}:3: legacy schema does not load: column \"nowhere\" referenced in foreign key constraint does not exist")


def test_a_full_dump_with_rows_loads_its_schema(tmp_path):
    """`supabase db dump` / pg_dump with data: `COPY ... FROM stdin` blocks are rows, not SQL;
    the schema around them loads, and all four phases come out (with every phase run first)."""
    dump = tmp_path / "dump.sql"
    dump.write_text(
        "SET standard_conforming_strings = on;\n"
        "GRANT USAGE ON SCHEMA graphql_public TO anon;\n"
        "CREATE TABLE public.files (id uuid PRIMARY KEY, name text NOT NULL);\n"
        "COPY public.files (id, name) FROM stdin;\n"
        "00000000-0000-0000-0000-000000000001\tone; DROP TABLE x;\n"
        "00000000-0000-0000-0000-000000000002\t$$ two\n"
        "\\.\n"
        "\n"
        "CREATE VIEW public.file_names AS SELECT name FROM public.files;\n",
        encoding="utf-8",
    )
    (tmp_path / "target.sql").write_text("CREATE TABLE documents (id uuid PRIMARY KEY, name text NOT NULL);\n")
    rules = tmp_path / "rules.toml"
    rules.write_text('version = 1\nname = "dump"\nschema = "target.sql"\n[[table]]\nlegacy = "files"\ntarget = "documents"\n')
    proc = run_cli("sql", "--rules", str(rules), "--legacy-schema", str(dump))
    assert proc.returncode == 0, proc.stderr
    assert "CREATE OR REPLACE VIEW public.file_names AS" in proc.stdout
    # a COPY from anywhere but the dump's own rows is still refused
    dump.write_text("CREATE TABLE public.files (id uuid PRIMARY KEY, name text NOT NULL);\nCOPY public.files FROM '/etc/passwd';\n")
    proc = run_cli("sql", "--rules", str(rules), "--legacy-schema", str(dump))
    assert proc.returncode == 2
    assert "COPY is not run" in proc.stderr


def test_the_prelude_is_printed_and_runs_on_a_plain_postgresql(pg_admin_url):
    import psycopg

    proc = run_cli("sql", "--prelude")
    assert proc.returncode == 0, proc.stderr
    assert "CREATE PUBLICATION supabase_realtime" in proc.stdout and "storage.objects" in proc.stdout
    url = pg_admin_url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE prelude_check")
    with psycopg.connect(url.replace("/postgres?", "/prelude_check?"), autocommit=True) as conn:
        conn.execute(proc.stdout)
        assert conn.execute("SELECT to_regclass('storage.buckets') IS NOT NULL, to_regprocedure('auth.uid()') IS NOT NULL").fetchone() == (True, True)
