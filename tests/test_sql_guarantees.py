"""What the legacy tables guaranteed still holds on their targets (issue 19): row-level security
and policies, grants, business triggers, realtime; what `contract` cannot carry yet is refused by
name. Each test applies the phases to a database with rows and checks behaviour, not text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_script, users_database
from helpers import run_cli

U1 = "11111111-1111-1111-1111-111111111111"
U2 = "22222222-2222-2222-2222-222222222222"

LEGACY = f"""
CREATE TABLE public.org_documents (id bigint PRIMARY KEY, owner uuid NOT NULL, title text NOT NULL, updated_at timestamptz);
CREATE TABLE public.review_copies (id bigint PRIMARY KEY, owner uuid NOT NULL, title text NOT NULL, updated_at timestamptz);
ALTER TABLE public.org_documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.review_copies ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own documents" ON public.org_documents FOR SELECT TO authenticated USING (auth.uid() = owner);
CREATE POLICY "every copy" ON public.review_copies FOR SELECT TO authenticated USING (true);
GRANT SELECT, INSERT ON public.org_documents TO authenticated;
GRANT SELECT ON public.review_copies TO authenticated;
INSERT INTO auth.users (id) VALUES ('{U1}'), ('{U2}');
"""
ROWS = f"""
INSERT INTO public.org_documents VALUES (1, '{U1}', 'mine', now()), (2, '{U2}', 'theirs', now());
INSERT INTO public.review_copies VALUES (10, '{U2}', 'a copy', now());
"""
TARGET = "CREATE TABLE public.org_files (id bigint PRIMARY KEY, user_id uuid NOT NULL, title text NOT NULL, updated_at timestamptz, kind text NOT NULL);\n"
RULES = """version = 1
name = "guarantees"
schema = "target.sql"
[[table]]
legacy = "org_documents"
target = "org_files"
[table.renames]
owner = "user_id"
[table.where]
kind = "document"
[[table]]
legacy = "review_copies"
target = "org_files"
[table.renames]
owner = "user_id"
[table.where]
kind = "copy"
"""


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    (tmp_path / "target.sql").write_text(TARGET)
    (tmp_path / "legacy.sql").write_text(LEGACY)
    (tmp_path / "rules.toml").write_text(RULES)
    return tmp_path


def phase(plan: Path, url: str, name: str) -> str:
    proc = run_cli("sql", "--rules", str(plan / "rules.toml"), "--database-url", url, "--phase", name)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


run = run_script  # a phase as psql runs it


def as_user(url: str, user: str, query: str) -> list[tuple]:
    """`query` as Supabase runs a signed-in user's request: role authenticated, the JWT's claims set."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL ROLE authenticated")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": user, "role": "authenticated"}),))
        rows = conn.execute(query).fetchall()
        conn.rollback()
    return rows


def test_row_level_security_and_policies_hold_on_the_merged_target(plan, pg_admin_url):
    url = users_database(pg_admin_url, LEGACY, ROWS)
    for name in ("expand", "backfill"):
        run(url, phase(plan, url, name))
    # before: U1 sees their document and every copy; the same through the target
    assert as_user(url, U1, "SELECT id FROM org_documents UNION ALL SELECT id FROM review_copies ORDER BY 1") == [(1,), (10,)]
    assert as_user(url, U1, "SELECT id FROM org_files ORDER BY 1") == [(1,), (10,)]
    assert as_user(url, U2, "SELECT id FROM org_files ORDER BY 1") == [(2,), (10,)]
    # the copies' open policy does not open the documents: each policy keeps to its own rows
    assert as_user(url, U1, "SELECT id FROM org_files WHERE kind = 'document'") == [(1,)]
    # grants: what authenticated could do on either legacy table, it can do on the target
    assert as_user(url, U1, "SELECT has_table_privilege('org_files', 'SELECT'), has_table_privilege('org_files', 'INSERT')") == [(True, True)]
    assert as_user(url, U1, "SELECT has_table_privilege('org_files', 'DELETE')") == [(False,)]


def test_a_policy_reading_a_dropped_column_is_refused_by_name(plan, pg_admin_url):
    rules = RULES.replace('target = "org_files"\n[table.renames]\nowner = "user_id"\n', 'target = "org_files"\ndrop = ["owner"]\n', 1)
    (plan / "rules.toml").write_text(rules)
    url = users_database(pg_admin_url, LEGACY)
    proc = run_cli("sql", "--rules", str(plan / "rules.toml"), "--database-url", url, "--phase", "expand")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "tableshift: error: expand: 1 object(s) cannot be carried: policy 'own documents' of org_documents cannot be carried to org_files:"
        " it reads column 'owner', which the rules drop"
    )


def test_a_business_trigger_holds_on_the_target_and_runs_once_for_a_dual_write(pg_admin_url, tmp_path):
    legacy = """
    CREATE TABLE public.notes (id int PRIMARY KEY, body text, touched int NOT NULL DEFAULT 0);
    CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := NEW.touched + 1; RETURN NEW; END $$;
    CREATE TRIGGER touch BEFORE INSERT OR UPDATE ON public.notes FOR EACH ROW EXECUTE FUNCTION public.touch();
    ALTER PUBLICATION supabase_realtime ADD TABLE public.notes;
    ALTER TABLE public.notes REPLICA IDENTITY FULL;
    """
    (tmp_path / "target.sql").write_text("CREATE TABLE public.memos (id int PRIMARY KEY, body text, touched int NOT NULL DEFAULT 0);\n")
    (tmp_path / "rules.toml").write_text('version = 1\nname = "t"\nschema = "target.sql"\n[[table]]\nlegacy = "notes"\ntarget = "memos"\n')
    url = users_database(pg_admin_url, legacy)
    run(url, phase(tmp_path, url, "expand"))
    run(url, "INSERT INTO notes (id, body) VALUES (1, 'old code')")  # legacy trigger, then the dual-write
    run(url, "INSERT INTO memos (id, body) VALUES (2, 'new code')")  # the carried trigger
    import psycopg

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, touched FROM memos ORDER BY id").fetchall() == [(1, 1), (2, 1)]
        published = conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime' ORDER BY 1").fetchall()
        assert published == [("memos",), ("notes",)]
        assert conn.execute("SELECT relreplident FROM pg_class WHERE relname = 'memos'").fetchone() == ("f",)
    run(url, phase(tmp_path, url, "contract"))
    with psycopg.connect(url) as conn:
        published = conn.execute("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'").fetchall()
        assert published == [("public", "memos")]


def test_a_trigger_the_target_cannot_run_is_refused_by_name(pg_admin_url, tmp_path):
    legacy = """
    CREATE TABLE public.notes (id int PRIMARY KEY, body text, touched int NOT NULL DEFAULT 0);
    CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := NEW.touched + 1; RETURN NEW; END $$;
    CREATE TRIGGER touch BEFORE UPDATE ON public.notes FOR EACH ROW EXECUTE FUNCTION public.touch();
    """
    (tmp_path / "target.sql").write_text("CREATE TABLE public.memos (id int PRIMARY KEY, text text);\n")
    (tmp_path / "rules.toml").write_text('version = 1\nname = "t"\nschema = "target.sql"\n[[table]]\nlegacy = "notes"\ntarget = "memos"\n[table.renames]\nbody = "text"\n')
    url = users_database(pg_admin_url, legacy)
    proc = run_cli("sql", "--rules", str(tmp_path / "rules.toml"), "--database-url", url, "--phase", "expand")
    assert proc.returncode == 2
    assert "trigger 'touch' of notes cannot be carried to memos" in proc.stderr


KEYS = """
CREATE TABLE public.content (id bigserial PRIMARY KEY, body text);
CREATE TABLE public.likes (id bigserial PRIMARY KEY, content_id bigint NOT NULL REFERENCES public.content (id) ON DELETE CASCADE);
CREATE VIEW public.content_count AS SELECT count(*) AS n FROM public.content;
CREATE FUNCTION public.bodies() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(body) FROM public.content; END;
GRANT SELECT ON public.content_count TO authenticated;
"""
KEY_ROWS = """
INSERT INTO public.content (body) VALUES ('one'), ('two'), ('three');
DELETE FROM public.content WHERE id = 3;  -- the legacy sequence has handed out 3
INSERT INTO public.likes (content_id) VALUES (1), (2), (2);
"""


def keys_plan(tmp_path: Path, target: str = "CREATE TABLE public.posts (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body text);\n") -> Path:
    (tmp_path / "target.sql").write_text(target)
    (tmp_path / "rules.toml").write_text('version = 1\nname = "t"\nschema = "target.sql"\n[[table]]\nlegacy = "content"\ntarget = "posts"\n')
    return tmp_path


def test_keys_other_tables_hold_keep_their_rows_and_point_at_the_target(pg_admin_url, tmp_path):
    plan = keys_plan(tmp_path)
    url = users_database(pg_admin_url, KEYS, KEY_ROWS)
    for name in ("expand", "backfill"):
        run(url, phase(plan, url, name))
    import psycopg

    # the target kept the legacy ids: every like finds the same content
    assert run(url, "SELECT l.id, p.body FROM likes l JOIN posts p ON p.id = l.content_id ORDER BY l.id") == [(1, "one"), (2, "two"), (3, "two")]
    # old code and new code both insert while both are deployed: one counter, past every id handed out
    run(url, "INSERT INTO content (body) VALUES ('old code')")
    run(url, "INSERT INTO posts (body) VALUES ('new code')")
    assert run(url, "SELECT id, body FROM posts ORDER BY id") == [(1, "one"), (2, "two"), (4, "old code"), (5, "new code")]
    assert run(url, "SELECT id, body FROM content ORDER BY id") == [(1, "one"), (2, "two"), (4, "old code"), (5, "new code")]
    run(url, phase(plan, url, "contract"))
    # after contract: likes join to the same rows, a like on new content is checked against the target
    assert run(url, "SELECT l.id, p.body FROM likes l JOIN posts p ON p.id = l.content_id ORDER BY l.id") == [(1, "one"), (2, "two"), (3, "two")]
    run(url, "INSERT INTO posts (body) VALUES ('after')")
    run(url, "INSERT INTO likes (content_id) SELECT id FROM posts WHERE body = 'after'")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        run(url, "INSERT INTO likes (content_id) VALUES (999)")
    run(url, "DELETE FROM posts WHERE id = 1")  # ON DELETE CASCADE came along
    assert run(url, "SELECT count(*) FROM likes WHERE content_id = 1") == [(0,)]
    # a view and a SQL-standard function that read the legacy table count a row inserted after contract
    assert run(url, "SELECT n FROM content_count") == [(4,)]
    assert run(url, "SELECT public.bodies()") == [(4,)]
    # the view still reads with its owner's rights (authenticated may not read posts, but may count them), and its grant stayed
    assert as_user(url, U1, "SELECT n FROM content_count") == [(4,)]
    assert as_user(url, U1, "SELECT has_table_privilege('public.posts', 'SELECT')") == [(False,)]
    # and old code's insert through the compatibility view takes the next id
    run(url, "INSERT INTO content (body) VALUES ('old again')")
    assert run(url, "SELECT id FROM posts WHERE body = 'old again'") == [(7,)]


def test_contract_refuses_what_it_cannot_recreate_naming_each(pg_admin_url, tmp_path):
    legacy = KEYS + """
    CREATE MATERIALIZED VIEW public.content_totals AS SELECT count(*) AS n FROM public.content;
    CREATE VIEW public.totals_shown AS SELECT n FROM public.content_totals;
    CREATE VIEW public.content_bodies AS SELECT body FROM public.content;
    """
    plan = keys_plan(tmp_path)
    (plan / "rules.toml").write_text((plan / "rules.toml").read_text() + 'drop = ["body"]\n')
    url = users_database(pg_admin_url, legacy)
    proc = run_cli("sql", "--rules", str(plan / "rules.toml"), "--database-url", url, "--phase", "contract")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "tableshift: error: contract: 3 database object(s) would keep pointing at the archived tables: function public.bodies() reads"
        " content.body, which its compatibility view does not have (and 2 more: view public.content_bodies reads content.body, which"
        " its compatibility view does not have; materialized view public.content_totals reads content (other objects depend on it, so"
        " it cannot be dropped and made again: recreate them by hand))"
    )


def test_numbered_keys_that_would_collide_in_a_merged_target_are_refused(pg_admin_url, tmp_path):
    legacy = """
    CREATE TABLE public.drafts (id bigserial PRIMARY KEY, body text);
    CREATE TABLE public.posts_old (id bigserial PRIMARY KEY, body text);
    CREATE TABLE public.likes (id bigserial PRIMARY KEY, draft_id bigint REFERENCES public.drafts (id), post_id bigint REFERENCES public.posts_old (id));
    """
    (tmp_path / "target.sql").write_text("CREATE TABLE public.content (id bigserial PRIMARY KEY, body text, kind text NOT NULL);\n")
    (tmp_path / "rules.toml").write_text(
        'version = 1\nname = "t"\nschema = "target.sql"\n'
        '[[table]]\nlegacy = "drafts"\ntarget = "content"\n[table.where]\nkind = "draft"\n'
        '[[table]]\nlegacy = "posts_old"\ntarget = "content"\n[table.where]\nkind = "post"\n'
    )
    url = users_database(pg_admin_url, legacy)
    proc = run_cli("sql", "--rules", str(tmp_path / "rules.toml"), "--database-url", url, "--phase", "expand")
    assert proc.returncode == 2
    assert "the numbered keys of drafts and posts_old would collide in \"public\".\"content\".\"id\"" in proc.stderr


def test_no_grants_is_said_aloud(pg_admin_url, tmp_path):
    (tmp_path / "target.sql").write_text("CREATE TABLE public.posts (id int PRIMARY KEY);\n")
    (tmp_path / "rules.toml").write_text('version = 1\nname = "t"\nschema = "target.sql"\n[[table]]\nlegacy = "content"\ntarget = "posts"\n')
    url = users_database(pg_admin_url, "CREATE TABLE public.content (id int PRIMARY KEY);")
    proc = run_cli("sql", "--rules", str(tmp_path / "rules.toml"), "--database-url", url, "--phase", "expand")
    assert proc.returncode == 0
    assert "tableshift: warning: no grants found on content: posts gets none (only its owner can use it)" in proc.stderr


def test_both_directions_stay_in_sync_until_contract(plan, pg_admin_url):
    """New code writes the target, old code still reads and writes the legacy tables: each sees the
    other's writes, renames reversed, a merged table's rows back in their own legacy table, no loop."""
    url = users_database(pg_admin_url, LEGACY, ROWS)
    for name in ("expand", "backfill"):
        run(url, phase(plan, url, name))
    # backfill copied without writing anything back
    assert run(url, "SELECT count(*) FROM org_documents") == [(2,)]
    # new code: an insert, an update and a delete on the target reach the legacy tables
    run(url, f"INSERT INTO org_files VALUES (3, '{U1}', 'new', now(), 'document'), (11, '{U1}', 'new copy', now(), 'copy')")
    run(url, "UPDATE org_files SET title = 'renamed' WHERE id = 1")
    run(url, "DELETE FROM org_files WHERE id = 2")
    assert run(url, "SELECT id, owner::text, title FROM org_documents ORDER BY id") == [(1, U1, "renamed"), (3, U1, "new")]
    assert run(url, "SELECT id, title FROM review_copies ORDER BY id") == [(10, "a copy"), (11, "new copy")]
    # old code: its writes reach the target once (no loop back)
    run(url, "UPDATE org_documents SET title = 'old code' WHERE id = 3")
    run(url, f"INSERT INTO review_copies VALUES (12, '{U2}', 'old copy', now())")
    assert run(url, "SELECT id, title, kind FROM org_files ORDER BY id") == [
        (1, "renamed", "document"), (3, "old code", "document"), (10, "a copy", "copy"), (11, "new copy", "copy"), (12, "old copy", "copy"),
    ]  # fmt: skip
    assert run_parity(plan, url) == []
    # after contract, the target stands alone: no trigger writes into the archive or the views
    run(url, phase(plan, url, "contract"))
    run(url, f"INSERT INTO org_files VALUES (4, '{U1}', 'after', now(), 'document')")
    assert run(url, "SELECT count(*) FROM archive.org_documents") == [(2,)]
    assert run(url, "SELECT count(*) FROM org_files WHERE id = 4") == [(1,)]


def run_parity(plan: Path, url: str) -> list[tuple]:
    return run_script(url, phase(plan, url, "parity"))


def test_a_script_postgresql_would_refuse_is_refused_before_it_is_printed(pg_admin_url, tmp_path):
    """Every phase runs on the loaded schemas first (then rolled back): a view whose column would
    change type under contract stops `sql` with PostgreSQL's own words, not a user's migration."""
    legacy = "CREATE TABLE public.content (id int PRIMARY KEY, score int);\nCREATE VIEW public.scores AS SELECT score FROM public.content;\n"
    plan = keys_plan(tmp_path, "CREATE TABLE public.posts (id int PRIMARY KEY, score bigint);\n")
    url = users_database(pg_admin_url, legacy)
    proc = run_cli("sql", "--rules", str(plan / "rules.toml"), "--database-url", url, "--phase", "contract")
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        'tableshift: error: sql --phase contract: PostgreSQL refuses the script on the loaded schemas: cannot change data type of view column "score" from integer to bigint'
    )
    assert proc.stdout == ""


def test_another_tables_policy_that_reads_a_legacy_table_reads_its_view_after_contract(pg_admin_url, tmp_path):
    legacy = KEYS + f"""
    ALTER TABLE public.likes ADD COLUMN owner uuid;
    ALTER TABLE public.likes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY "likes of live content" ON public.likes FOR SELECT TO authenticated
      USING (EXISTS (SELECT 1 FROM public.content c WHERE c.id = content_id AND c.body <> 'hidden'));
    GRANT SELECT ON public.likes TO authenticated;
    GRANT SELECT ON public.content TO authenticated;
    """
    plan = keys_plan(tmp_path)
    url = users_database(pg_admin_url, legacy, KEY_ROWS)
    for name in ("expand", "backfill", "contract"):
        run(url, phase(plan, url, name))
    assert as_user(url, U1, "SELECT count(*) FROM likes") == [(3,)]
    # the policy reads the rows of the target now, not the archived table frozen at contract
    run(url, "UPDATE posts SET body = 'hidden' WHERE id = 2")
    assert as_user(url, U1, "SELECT content_id FROM likes") == [(1,)]


def test_the_audit_lists_what_in_the_database_uses_each_table(tmp_path):
    legacy = tmp_path / "legacy.sql"
    legacy.write_text(
        KEYS
        + "CREATE FUNCTION public.purge() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'delete from public.likes'; END $$;\n"
        + "CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body := NEW.body; RETURN NEW; END $$;\n"
        + "CREATE TRIGGER touch BEFORE UPDATE ON public.content FOR EACH ROW EXECUTE FUNCTION public.touch();\n"
        + "ALTER PUBLICATION supabase_realtime ADD TABLE public.content;\n"
    )
    (tmp_path / "app.ts").write_text("await supabase.from('content').select('id')\nawait supabase.from('likes').delete().eq('id', 1)\n")
    proc = run_cli("audit", str(tmp_path), "--legacy-schema", str(legacy), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    database = json.loads(proc.stdout)["database"]
    assert database["source"] == str(legacy)
    uses = {t["table"]: [(u["kind"], u["name"]) for u in t["uses"]] for t in database["tables"]}
    assert uses == {
        "content": [
            ("view", "public.content_count"),
            ("function", "public.bodies()"),
            ("trigger", "touch"),
            ("foreign key", "likes_content_id_fkey of public.likes"),
            ("publication", "supabase_realtime"),
        ],
        "likes": [("function", "public.purge()")],  # a statement it EXECUTEs, from a literal
    }
    proc = run_cli("audit", str(tmp_path), "--legacy-schema", str(legacy), "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert f"Database objects using these tables ({legacy})" in proc.stdout
    assert "| content | trigger | touch | runs touch |" in proc.stdout


def test_a_trigger_reading_a_renamed_column_runs_on_the_target_translated(pg_admin_url, tmp_path):
    legacy = """
    CREATE TABLE public.notes (id int PRIMARY KEY, body text, body_length int);
    CREATE FUNCTION public.measure() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.body_length := length(NEW."body");
      RETURN NEW;
    END $$;
    CREATE TRIGGER measure BEFORE INSERT OR UPDATE ON public.notes FOR EACH ROW EXECUTE FUNCTION public.measure();
    """
    (tmp_path / "target.sql").write_text("CREATE TABLE public.memos (id int PRIMARY KEY, text text, body_length int);\n")
    (tmp_path / "rules.toml").write_text('version = 1\nname = "t"\nschema = "target.sql"\n[[table]]\nlegacy = "notes"\ntarget = "memos"\n[table.renames]\nbody = "text"\n')
    url = users_database(pg_admin_url, legacy)
    run(url, phase(tmp_path, url, "expand"))
    run(url, "INSERT INTO memos (id, text) VALUES (1, 'new code')")  # the translated function reads NEW.text
    run(url, "INSERT INTO notes (id, body) VALUES (2, 'old')")  # the legacy trigger, then the dual-write
    run(url, "UPDATE memos SET text = 'longer text' WHERE id = 2")
    assert run(url, "SELECT id, body_length FROM memos ORDER BY id") == [(1, 8), (2, 11)]
    # the original function is untouched; old code still gets its own trigger
    assert run(url, "SELECT body, body_length FROM notes WHERE id = 2") == [("longer text", 11)]


def test_a_trigger_whose_function_reads_the_whole_row_is_refused_when_columns_are_renamed(pg_admin_url, tmp_path):
    legacy = """
    CREATE TABLE public.notes (id int PRIMARY KEY, body text);
    CREATE TABLE public.history (row jsonb);
    CREATE FUNCTION public.remember() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.history VALUES (to_jsonb(NEW)); RETURN NULL; END $$;
    CREATE TRIGGER remember AFTER INSERT ON public.notes FOR EACH ROW EXECUTE FUNCTION public.remember();
    """
    (tmp_path / "target.sql").write_text("CREATE TABLE public.memos (id int PRIMARY KEY, text text);\n")
    (tmp_path / "rules.toml").write_text('version = 1\nname = "t"\nschema = "target.sql"\n[[table]]\nlegacy = "notes"\ntarget = "memos"\n[table.renames]\nbody = "text"\n')
    url = users_database(pg_admin_url, legacy)
    proc = run_cli("sql", "--rules", str(tmp_path / "rules.toml"), "--database-url", url, "--phase", "expand")
    assert proc.returncode == 2
    assert "trigger 'remember' of notes cannot be carried to memos: what its function remember reads of the row cannot be known" in proc.stderr


def test_policies_reading_other_tables_keep_their_meaning_through_renames_and_contract(pg_admin_url, tmp_path):
    """A policy whose sub-query names the legacy table's own (renamed) column bare, and a legacy
    table's policy that reads another legacy table: both read the right rows on the target, before
    and after contract."""
    legacy = f"""
    CREATE TABLE public.folders (id int PRIMARY KEY, shared boolean NOT NULL);
    CREATE TABLE public.files (id int PRIMARY KEY, folder int REFERENCES public.folders (id), owner uuid NOT NULL);
    ALTER TABLE public.files ENABLE ROW LEVEL SECURITY;
    CREATE POLICY "own" ON public.files FOR SELECT TO authenticated USING (owner = auth.uid());
    CREATE POLICY "shared folders" ON public.files FOR SELECT TO authenticated
      USING (folder IN (SELECT id FROM public.folders WHERE shared) OR EXISTS (SELECT 1 FROM public.folders f WHERE f.id = folder AND f.shared));
    GRANT SELECT ON public.files, public.folders TO authenticated;
    INSERT INTO auth.users (id) VALUES ('{U1}'), ('{U2}');
    INSERT INTO public.folders VALUES (1, true), (2, false);
    INSERT INTO public.files VALUES (10, 1, '{U2}'), (11, 2, '{U2}'), (12, 2, '{U1}');
    """
    (tmp_path / "target.sql").write_text(
        "CREATE TABLE public.groups (id int PRIMARY KEY, shared boolean NOT NULL);\n"
        "CREATE TABLE public.documents (id int PRIMARY KEY, group_id int REFERENCES public.groups (id), user_id uuid NOT NULL);\n"
    )
    (tmp_path / "rules.toml").write_text(
        'version = 1\nname = "t"\nschema = "target.sql"\n'
        '[[table]]\nlegacy = "folders"\ntarget = "groups"\n'
        '[[table]]\nlegacy = "files"\ntarget = "documents"\n[table.renames]\nfolder = "group_id"\nowner = "user_id"\n'
    )
    url = users_database(pg_admin_url, legacy)
    for name in ("expand", "backfill"):
        run(url, phase(tmp_path, url, name))
    assert as_user(url, U1, "SELECT id FROM documents ORDER BY id") == [(10,), (12,)]
    run(url, phase(tmp_path, url, "contract"))
    assert as_user(url, U1, "SELECT id FROM documents ORDER BY id") == [(10,), (12,)]
    # the policy reads the groups as they are now, not the folders archived at contract
    run(url, "UPDATE groups SET shared = true WHERE id = 2")
    assert as_user(url, U1, "SELECT id FROM documents ORDER BY id") == [(10,), (11,), (12,)]
    assert as_user(url, U1, "SELECT id FROM files ORDER BY id") == [(10,), (11,), (12,)]


def test_keys_between_legacy_tables_keep_pointing_at_the_same_rows_in_the_targets(pg_admin_url, tmp_path):
    """Two legacy tables that both move, one referencing the other, and a parent_id: numbered ids
    with gaps are kept, so each copied key still finds its row."""
    legacy = """
    CREATE TABLE public.folders (id bigserial PRIMARY KEY, name text, parent_id bigint REFERENCES public.folders (id));
    CREATE TABLE public.files (id bigserial PRIMARY KEY, folder_id bigint REFERENCES public.folders (id), name text);
    INSERT INTO public.folders (name) VALUES ('gone'), ('docs'), ('photos');
    DELETE FROM public.folders WHERE name = 'gone';
    UPDATE public.folders SET parent_id = 2 WHERE name = 'photos';
    INSERT INTO public.files (folder_id, name) VALUES (2, 'a.txt'), (3, 'b.png');
    """
    (tmp_path / "target.sql").write_text(
        "CREATE TABLE public.groups (id bigserial PRIMARY KEY, name text, parent_id bigint REFERENCES public.groups (id));\n"
        "CREATE TABLE public.documents (id bigserial PRIMARY KEY, group_id bigint REFERENCES public.groups (id), name text);\n"
    )
    (tmp_path / "rules.toml").write_text(
        'version = 1\nname = "t"\nschema = "target.sql"\n'
        '[[table]]\nlegacy = "folders"\ntarget = "groups"\n'
        '[[table]]\nlegacy = "files"\ntarget = "documents"\n[table.renames]\nfolder_id = "group_id"\n'
    )
    url = users_database(pg_admin_url, legacy)
    joined = "SELECT d.name, g.name, p.name FROM {d} d JOIN {g} g ON g.id = d.{k} LEFT JOIN {g} p ON p.id = g.parent_id ORDER BY 1"
    before = run(url, joined.format(d="files", g="folders", k="folder_id"))
    for name in ("expand", "backfill"):
        run(url, phase(tmp_path, url, name))
    assert run(url, joined.format(d="documents", g="groups", k="group_id")) == before == [("a.txt", "docs", None), ("b.png", "photos", "docs")]
    run(url, "INSERT INTO groups (name) VALUES ('new')")  # past every id the legacy table handed out
    assert run(url, "SELECT id FROM groups WHERE name = 'new'") == [(4,)]


def test_a_materialized_view_is_made_again_reading_the_target_with_its_indexes_owner_and_grants(pg_admin_url, tmp_path):
    legacy = KEYS + """
    CREATE MATERIALIZED VIEW public.content_totals AS SELECT count(*) AS n, max(id) AS last FROM public.content;
    CREATE UNIQUE INDEX content_totals_last ON public.content_totals (last);
    GRANT SELECT ON public.content_totals TO authenticated;
    """
    plan = keys_plan(tmp_path)
    url = users_database(pg_admin_url, legacy, KEY_ROWS + "REFRESH MATERIALIZED VIEW public.content_totals;")
    for name in ("expand", "backfill", "contract"):
        run(url, phase(plan, url, name))
    run(url, "INSERT INTO posts (body) VALUES ('after')")
    run(url, "REFRESH MATERIALIZED VIEW CONCURRENTLY content_totals")  # needs its unique index
    assert as_user(url, U1, "SELECT n, last FROM content_totals") == [(3, 4)]
