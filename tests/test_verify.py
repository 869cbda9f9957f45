"""`tableshift verify` and `patch --verify`: every call before and after its rewrite, checked by PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers import run_cli

DB = Path(__file__).resolve().parent.parent / "fixtures" / "database"
RULES = DB / "rules.toml"
APP = DB / "app"


def _verify(*extra: str) -> tuple[int, dict]:
    # relative paths from the repository root: the report names them as given
    rel = "fixtures/database"
    proc = run_cli(
        "verify", f"{rel}/app", "--rules", f"{rel}/rules.toml", "--legacy-schema", f"{rel}/legacy.sql", "--format", "json", "--no-cache", *extra,
        cwd=DB.parent.parent,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_the_report_matches_its_golden_file_and_names_what_only_a_database_sees(update_golden):
    status, data = _verify()
    golden = DB / "expected" / "verify.json"
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if update_golden:
        golden.write_text(text)
    assert text == golden.read_text(), "fixtures/database/expected/verify.json differs: run pytest --update-golden"
    assert status == 1
    assert data["summary"] == {"calls": 5, "checked": 5, "ok": 3, "errors": 2, "skipped": 0}
    by_line = {c["line"]: c for c in data["calls"]}
    # a clean rewrite: both sides plan, the renamed column read under its old name
    assert by_line[7]["before"]["status"] == by_line[7]["after"]["status"] == "ok" and by_line[7]["fix"] == "auto"
    assert '"raw_topic" AS "topic_cluster"' in by_line[7]["after"]["sql"]
    # PostgreSQL's own messages for what no static check sees
    assert by_line[11]["before"]["status"] == "ok"
    assert by_line[11]["after"]["error"] == 'invalid input syntax for type integer: "n/a"' and by_line[11]["fix"] == "review"
    assert by_line[15]["after"]["error"] == "there is no unique or exclusion constraint matching the ON CONFLICT specification"
    # a call on a target table is checked as it is; a call patch leaves to a person is not rewritten
    assert by_line[18]["fix"] == "ok" and by_line[18]["after"]["status"] == "ok"
    assert by_line[21]["after"] == {"status": "skipped", "error": "not rewritten: review", "sql": None, "params": None}


def test_text_output_names_each_rejection_with_its_place(tmp_path):
    proc = run_cli("verify", str(APP), "--rules", str(RULES), "--legacy-schema", str(DB / "legacy.sql"), "--no-cache")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].endswith('queries.ts:11:12: after: outcomes -> engagement_metrics: invalid input syntax for type integer: "n/a"')
    assert lines[-1] == "tableshift verify: 5 calls, 5 checked: 3 ok, 2 with errors, 0 skipped"


def test_without_the_legacy_schema_the_before_side_is_skipped():
    proc = run_cli("verify", str(APP), "--rules", str(RULES), "--format", "json", "--no-cache")
    data = json.loads(proc.stdout)
    legacy = [c for c in data["calls"] if c["table"] != "content_queue"]
    assert all(c["before"]["status"] == "skipped" and "no legacy schema" in c["before"]["error"] for c in legacy)
    assert {c["line"]: c["after"]["status"] for c in legacy} == {7: "ok", 11: "error", 15: "error", 21: "skipped"}


def test_patch_verify_never_calls_auto_what_the_database_rejects(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "queries.ts").write_text((APP / "queries.ts").read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    report = tmp_path / "coverage.json"
    args = ["patch", "app", "--rules", str(RULES), "--no-cache", "--report", str(report)]
    plain = run_cli(*args, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "'n/a'" in plain.stdout  # without --verify, the cast that fails is rewritten
    checked = run_cli(*args, "--verify", "--legacy-schema", str(DB / "legacy.sql"), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "from('content_queue')" in checked.stdout and "engagement_metrics" not in checked.stdout
    reasons = {e["line"]: e["reasons"] for e in json.loads(report.read_text())["review"]}
    assert 'PostgreSQL rejects the rewritten call: invalid input syntax for type integer: "n/a"' in reasons[11]
    assert any("ON CONFLICT" in r for r in reasons[15])
    assert run_cli(*args, "--legacy-schema", "x.sql", cwd=tmp_path).returncode == 2  # only with --verify


def test_only_ever_one_statement_reaches_the_database():
    from tableshift.db import statement

    class Refuse:
        def transaction(self, **_):  # pragma: no cover - must not be reached
            raise AssertionError("sent to the database")

    assert statement.check(Refuse(), statement.Statement("SELECT 1; COMMIT", [])) == "not a single statement: not sent to the database"
    assert statement.check(Refuse(), statement.Statement("SELECT 1 FROM t; DROP TABLE t", [])) == "not a single statement: not sent to the database"


def _built(code: str) -> list[str]:
    from tableshift.db import statement
    from tableshift.scan import scan_source

    calls = scan_source(code.encode(), path="x.ts", language="typescript").calls
    fks = [statement.Relationship("posted_content_decision_id_fkey", "posted_content", ("decision_id",), "content_queue", ("decision_id",))]
    return [_inline(statement.build(c, c.table.name, fks, aggregates=True)) for c in calls]


def _inline(built) -> str:
    """The statement with each parameter written in its place, to read in an assertion."""
    from tableshift.db.catalog import literal

    text = built.sql
    for n in range(len(built.params), 0, -1):
        text = text.replace(f"${n}", literal(built.params[n - 1]))
    return text


def _verdicts(pg_admin_url: str, ddl: str, code: str, table: str, language: str = "typescript") -> list[str | None]:
    """Each call of `code`, built on `table` with the relationships PostgreSQL reports, checked on a
    new database holding `ddl` as verify checks it: None, or the message (PostgreSQL's, PostgREST's
    or a server setting's)."""
    import psycopg

    from conftest import users_database
    from tableshift.db import statement, verify
    from tableshift.scan import scan_source

    with psycopg.connect(users_database(pg_admin_url, ddl)) as conn:
        fks, types = statement.relationships(conn), statement.column_types(conn)
        calls = scan_source(code.encode(), path="x.ts" if language == "typescript" else "x.py", language=language).calls
        return [verify._check(conn, c, table, fks, types=types)["error"] for c in calls]


def test_statements_follow_postgrest_for_each_shape():
    [counted, ranged, logic, upsert, embedded, aggregate] = _built(
        "const a = () => supabase.from('t').select('id', { count: 'exact', head: true }).eq('status', 'queued');\n"
        "const b = () => supabase.from('t').select('id, meta->owner->>name').range(10, 19).order('id');\n"
        "const c = () => supabase.from('t').select('id').or('likes.gt.5,status.is.null,kind.not.in.(a,b)');\n"
        "const d = (row: any) => supabase.from('t').upsert({ tweet_id: '1', likes: 2 }, { onConflict: 'tweet_id', ignoreDuplicates: true });\n"
        "const e = () => supabase.from('content_queue').select('decision_id, posted_content(tweet_id)');\n"
        "const f = () => supabase.from('t').select('status, likes.sum()');\n"
    )
    assert counted == """SELECT count(*) FROM "t" AS "t" WHERE "t"."status" = 'queued'"""
    assert ranged == """SELECT "t"."id", to_jsonb("t"."meta")->'owner'->>'name' FROM "t" AS "t" ORDER BY "t"."id" ASC LIMIT 10 OFFSET 10"""
    assert logic == """SELECT "t"."id" FROM "t" AS "t" WHERE ("t"."likes" > '5' OR "t"."status" IS NULL OR NOT ("t"."kind" = ANY('{"a","b"}')))"""
    assert upsert == (
        """INSERT INTO "t" ("tweet_id", "likes") SELECT "pgrst_body"."tweet_id", "pgrst_body"."likes" FROM json_populate_recordset(NULL::"t","""
        """ '[{"tweet_id": "1", "likes": "2"}]'::json) AS "pgrst_body" ON CONFLICT ("tweet_id") DO NOTHING"""
    )
    assert '(SELECT json_agg(x) FROM (SELECT "_posted_content"."tweet_id" FROM "posted_content" AS "_posted_content"' in embedded
    assert 'WHERE "_posted_content"."decision_id" = "content_queue"."decision_id"' in embedded
    assert aggregate == 'SELECT "t"."status", sum("t"."likes") FROM "t" AS "t" GROUP BY "t"."status"'


def test_match_is_equality_on_each_key():
    [matched] = _built("const m = () => supabase.from('t').select('id').match({ status: 'queued', likes: 3 });\n")
    assert matched == """SELECT "t"."id" FROM "t" AS "t" WHERE "t"."status" = 'queued' AND "t"."likes" = '3'"""


def test_writes_whose_payload_is_a_variable_are_checked_on_what_is_visible(tmp_path):
    """`upsert(row, { onConflict })`, `update(patch).eq(...)`, `insert(rows).select(...)`: the
    conflict target needs a unique key, filters and returned columns must exist, whatever the
    payload holds; what stayed unchecked is said (`partial`), never a silent skip."""
    (tmp_path / "legacy.sql").write_text("CREATE TABLE notes (id int PRIMARY KEY, label text UNIQUE, body text);\n")
    (tmp_path / "target.sql").write_text("CREATE TABLE memos (id int PRIMARY KEY, label text UNIQUE, body text);\n")
    (tmp_path / "rules.toml").write_text('version = 1\nname = "v"\nschema = "target.sql"\n[[table]]\nlegacy = "notes"\ntarget = "memos"\n')
    (tmp_path / "app.ts").write_text(
        "export const a = (row: any) => supabase.from('notes').upsert(row, { onConflict: 'label' }).select('id');\n"
        "export const b = (row: any) => supabase.from('notes').upsert(row, { onConflict: 'body' });\n"
        "export const c = (patch: any, id: number) => supabase.from('notes').update(patch).eq('id', id).select('body');\n"
        "export const d = (patch: any, v: string) => supabase.from('notes').update(patch).eq('nope', v);\n"
        "export const e = (rows: any[]) => supabase.from('notes').insert(rows).select('id, missing');\n"
    )
    proc = run_cli(
        "verify", str(tmp_path / "app.ts"), "--rules", str(tmp_path / "rules.toml"), "--legacy-schema", str(tmp_path / "legacy.sql"),
        "--format", "json", "--no-cache",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    calls = json.loads(proc.stdout)["calls"]
    verdicts = [(c["line"], c["before"]["status"], (c["before"]["error"] or "")[:60]) for c in calls]
    assert verdicts == [
        (1, "ok", ""),
        (2, "error", "there is no unique or exclusion constraint matching the ON C"),
        (3, "ok", ""),
        (4, "error", "column notes.nope does not exist"),
        (5, "error", "column notes.missing does not exist"),  # RETURNING "notes"."missing", as PostgREST writes it
    ]
    assert calls[0]["before"]["partial"] == "the upsert's payload is not visible: only its conflict target and returned columns are checked"
    assert calls[0]["before"]["sql"] == 'INSERT INTO "notes" ("label") VALUES ($1) ON CONFLICT ("label") DO NOTHING RETURNING "notes"."id"'
    assert calls[2]["before"]["sql"] == 'SELECT "notes"."body" FROM "notes" AS "notes" WHERE "notes"."id" = $1 FOR UPDATE'


def test_nested_embeds_are_built_and_their_columns_checked(pg_admin_url):
    verdicts = _verdicts(
        pg_admin_url,
        "CREATE TABLE authors (id int PRIMARY KEY, name text);"
        "CREATE TABLE posts (id int PRIMARY KEY);"
        "CREATE TABLE comments (id int PRIMARY KEY, post_id int REFERENCES posts (id), author_id int REFERENCES authors (id));",
        "const a = () => supabase.from('posts').select('id, comments(id, author:authors(name))');\n"
        "const b = () => supabase.from('posts').select('id, comments(id, author:authors(nickname))');\n",
        "posts",
    )
    assert verdicts[0] is None
    assert verdicts[1] is not None and 'column _authors_1.nickname does not exist' in verdicts[1]


def test_order_keeps_its_direction_and_nulls_placement_as_postgrest_js_sends_them():
    [both, default, hidden] = _built(
        "const a = () => supabase.from('t').select('id').order('at', { ascending: false, nullsFirst: true }).order('id', { nullsFirst: false });\n"
        "const b = () => supabase.from('t').select('id').order('at');\n"
        "const c = (o: any) => supabase.from('t').select('id').order('at', o);\n"
    )
    assert both == 'SELECT "t"."id" FROM "t" AS "t" ORDER BY "t"."at" DESC NULLS FIRST, "t"."id" ASC NULLS LAST'
    assert default == 'SELECT "t"."id" FROM "t" AS "t" ORDER BY "t"."at" ASC'
    assert hidden == 'SELECT "t"."id" FROM "t" AS "t" ORDER BY "t"."at"'  # options in a variable: the column is still checked


def test_null_and_undefined_in_a_filter_are_the_text_postgrest_js_sends(pg_admin_url):
    """`.eq('likes', null)` is `likes=eq.null` on the wire: an integer column rejects it (use
    `.is('likes', null)`); a text column compares with the word."""
    import psycopg

    from conftest import users_database
    from tableshift.db import statement
    from tableshift.scan import scan_source

    url = users_database(pg_admin_url, "CREATE TABLE t (id int PRIMARY KEY, likes int, label text);")
    code = (
        "const a = () => supabase.from('t').select('id').eq('likes', null);\n"
        "const b = () => supabase.from('t').select('id').eq('label', undefined);\n"
        "const c = () => supabase.from('t').select('id').is('likes', null);\n"
    )
    with psycopg.connect(url) as conn:
        built = [statement.build(c, "t", []) for c in scan_source(code.encode(), path="x.ts", language="typescript").calls]
        verdicts = [statement.check(conn, b) for b in built]
    assert [b.params for b in built] == [["null"], ["undefined"], []]
    assert verdicts[0] is not None and 'invalid input syntax for type integer: "null"' in verdicts[0]
    assert verdicts[1:] == [None, None]


def test_filters_scoped_to_an_embedded_resource_apply_inside_it_or_are_refused_as_postgrest_does():
    from tableshift.db import statement
    from tableshift.scan import scan_source

    code = (
        "const a = () => supabase.from('content_queue').select('decision_id, posted_content(tweet_id)').eq('posted_content.tweet_id', '9')"
        ".order('tweet_id', { referencedTable: 'posted_content', ascending: false });\n"
        "const b = () => supabase.from('content_queue').update({ status: 'x' }).eq('posted_content.tweet_id', '9');\n"
        "const c = () => supabase.from('content_queue').select('decision_id, posted_content(tweet_id)').not('posted_content', 'is', null);\n"
    )
    fks = [statement.Relationship("posted_content_decision_id_fkey", "posted_content", ("decision_id",), "content_queue", ("decision_id",))]
    [scoped, mutation, null_embed] = scan_source(code.encode(), path="x.ts", language="typescript").calls
    inner = _inline(statement.build(scoped, "content_queue", fks))
    assert (
        'FROM "posted_content" AS "_posted_content" WHERE "_posted_content"."decision_id" = "content_queue"."decision_id"'
        ' AND "_posted_content"."tweet_id" = \'9\' ORDER BY "_posted_content"."tweet_id" DESC' in inner
    )
    assert not inner.endswith("'9'")  # not a filter of the top level
    with pytest.raises(statement.EmbedError, match="'posted_content' is not an embedded resource in this request"):
        statement.build(mutation, "content_queue", fks)
    assert "IS NULL OR" not in _inline(statement.build(null_embed, "content_queue", fks))


def test_embeds_are_found_as_postgrest_finds_them(pg_admin_url):
    """By table, by foreign-key column (`author_id(name)`), by constraint name, with a hint, both
    ways of a self-reference; no relationship, or two, is PostgREST's own refusal."""
    import psycopg

    from conftest import users_database
    from tableshift.db import statement
    from tableshift.scan import scan_source

    url = users_database(
        pg_admin_url,
        "CREATE TABLE authors (id int PRIMARY KEY, name text);"
        "CREATE TABLE comments (id int PRIMARY KEY, author_id int REFERENCES authors (id), editor_id int REFERENCES authors (id));"
        "CREATE TABLE family (id int PRIMARY KEY, parent_id int REFERENCES family (id));",
    )
    code = (
        "const a = () => supabase.from('comments').select('id, author_id(name), writer:authors!author_id(name), comments_editor_id_fkey(name)');\n"
        "const b = () => supabase.from('family').select('id, parent_id(id), family(id)');\n"
        "const c = () => supabase.from('comments').select('id, authors(name)');\n"
        "const d = () => supabase.from('comments').select('id, family(id)');\n"
    )
    results = []
    with psycopg.connect(url) as conn:
        fks = statement.relationships(conn)
        for call in scan_source(code.encode(), path="x.ts", language="typescript").calls:
            try:
                results.append(statement.check(conn, statement.build(call, call.table.name, fks)))
            except statement.EmbedError as exc:
                results.append(f"PostgREST: {exc}")
    assert results == [
        None,
        None,
        "PostgREST: Could not embed because more than one relationship was found for 'comments' and 'authors'",
        "PostgREST: Could not find a relationship between 'comments' and 'family' in the schema cache",
    ]


def test_an_unfiltered_update_or_delete_is_refused_by_supabases_safeupdate_and_text_search_needs_text():
    from tableshift.db import statement
    from tableshift.scan import scan_source

    code = (
        "const a = () => supabase.from('t').delete();\n"
        "const b = () => supabase.from('t').update({ status: 'x' });\n"
        "const c = () => supabase.from('t').delete().eq('id', 1);\n"
        "async function d(x: number) { const q = supabase.from('t').delete(); return apply(q); }\n"
        "const e = () => supabase.from('t').select('id').textSearch('body', 'cat & dog');\n"
    )
    calls = scan_source(code.encode(), path="x.ts", language="typescript").calls
    for call in calls[:2]:
        with pytest.raises(statement.ServerSetting, match="requires a WHERE clause"):
            statement.build(call, "t", [])
    assert _inline(statement.build(calls[2], "t", [])) == """DELETE FROM "t" WHERE "t"."id" = '1'"""
    assert _inline(statement.build(calls[3], "t", [])) == 'DELETE FROM "t"'  # filters may be added where the builder goes
    # a column that is not a tsvector is read through to_tsvector, as PostgREST v13 does
    assert _inline(statement.build(calls[4], "t", [])) == """SELECT "t"."id" FROM "t" AS "t" WHERE to_tsvector("t"."body") @@ to_tsquery('cat & dog')"""
    assert _inline(statement.build(calls[4], "t", [], types={("t", "body"): "tsvector"})).endswith(""""t"."body" @@ to_tsquery('cat & dog')""")


def test_filters_follow_postgrests_grammar_with_the_values_postgrest_js_sends(pg_admin_url):
    ddl = (
        "CREATE TABLE posts (id int PRIMARY KEY, title text, views int, tags text[], meta jsonb, doc tsvector, during tstzrange);"
    )
    code = (
        "const a = () => supabase.from('posts').select('id').in('id', [1, 2, 3]);\n"
        "const b = () => supabase.from('posts').select('id').in('views', ['a', 'b']);\n"
        "const c = () => supabase.from('posts').select('id').in('title', ['x,y', 'z']);\n"
        "const d = () => supabase.from('posts').select('id').or('title.eq.\"a,b\",views.eq.\"5\"');\n"
        "const e = () => supabase.from('posts').select('id').or('views.in.(1,\"2\")');\n"
        "const f = () => supabase.from('posts').select('id').not('title', 'is', 'not_null');\n"
        "const g = () => supabase.from('posts').select('id').filter('views', 'between', '1,2');\n"
        "const h = () => supabase.from('posts').select('id').textSearch('title', 'cat dog', { type: 'websearch', config: 'english' });\n"
        "const i = () => supabase.from('posts').select('id').textSearch('title', 'cat dog');\n"
        "const j = () => supabase.from('posts').select('id').textSearch('views', 'cat');\n"
        "const k = () => supabase.from('posts').select('id').textSearch('doc', 'cat', { config: 'nonesuch' });\n"
        "const l = () => supabase.from('posts').select('id').contains('tags', ['a', 'b']).overlaps('tags', ['c']);\n"
        "const m = () => supabase.from('posts').select('id').contains('meta', { owner: { id: 1 } });\n"
        "const n = () => supabase.from('posts').select('id').contains('views', ['a']);\n"
        "const o = () => supabase.from('posts').select('id').likeAnyOf('title', ['a*', '%b']);\n"
        "const p = () => supabase.from('posts').select('id').like('views', '1%');\n"
        "const q = (ids: number[]) => supabase.from('posts').select('id').in('title', ids).like('views', ids[0]);\n"
        "const r = () => supabase.from('posts').select('id').or('views.gt(any).{1,2},title.is.maybe');\n"
        "const s = () => supabase.from('posts').select('id').in('id', []);\n"
        "const t = () => supabase.from('posts').select('id').rangeGt('during', '[2024-01-01,2024-02-01)');\n"
    )
    verdicts = _verdicts(pg_admin_url, ddl, code, "posts")
    assert verdicts[0] is None
    assert verdicts[1] == 'invalid input syntax for type integer: "a"'  # `.in()` is typed: `= ANY('{"a","b"}')`
    assert verdicts[2] is None and verdicts[3] is None and verdicts[4] is None  # quoted values, in or() and in()
    assert verdicts[5] is None  # is.not_null
    assert verdicts[6].startswith("PostgREST: failed to parse filter (between.1,2) (PGRST100)")
    assert verdicts[7] is None and verdicts[8] is not None  # to_tsquery('cat dog') is not a query; websearch's is
    assert verdicts[9] is not None and "to_tsvector" in verdicts[9]  # no text to search in an integer
    assert verdicts[10] == 'text search configuration "nonesuch" does not exist'
    assert verdicts[11] is None and verdicts[12] is None
    assert verdicts[13] is not None and verdicts[14] is None
    assert verdicts[15] is not None and verdicts[16] is not None  # like on an integer fails whatever the pattern
    assert verdicts[17].startswith("PostgREST: failed to parse filter (is.maybe)")
    assert verdicts[18] is None and verdicts[19] is None


def test_many_to_many_embeds_go_through_their_junction(pg_admin_url):
    import psycopg

    from conftest import users_database
    from tableshift.db import statement
    from tableshift.scan import scan_source

    url = users_database(
        pg_admin_url,
        "CREATE TABLE users (id int PRIMARY KEY, name text);"
        "CREATE TABLE tasks (id int PRIMARY KEY, title text);"
        "CREATE TABLE users_tasks (user_id int REFERENCES users (id), task_id int REFERENCES tasks (id), PRIMARY KEY (user_id, task_id));"
        "CREATE TABLE notes (id int PRIMARY KEY, user_id int REFERENCES users (id), task_id int REFERENCES tasks (id));"  # not a junction: its key is its own
        "INSERT INTO users VALUES (1, 'ann'); INSERT INTO tasks VALUES (7, 'write'); INSERT INTO users_tasks VALUES (1, 7);",
    )
    code = (
        "const a = () => supabase.from('users').select('name, tasks(title)');\n"
        "const b = () => supabase.from('users').select('name, tasks!users_tasks(title)');\n"
        "const c = () => supabase.from('tasks').select('title, users(nickname)');\n"
    )
    with psycopg.connect(url) as conn:
        fks = statement.relationships(conn)
        built = [statement.build(call, call.table.name, fks) for call in scan_source(code.encode(), path="x.ts", language="typescript").calls]
        verdicts = [statement.check(conn, b) for b in built]
        rows = conn.execute(built[0].sql).fetchall()
    assert verdicts[:2] == [None, None]
    assert "nickname" in (verdicts[2] or "")
    assert rows == [("ann", [{"title": "write"}])]


def test_a_computed_column_is_found_as_postgrest_finds_it(pg_admin_url):
    """PostgREST qualifies every column (`"posts"."full_title"`), so a function taking the row is
    a column to it, in select and in filters; an unknown name is PostgreSQL's own error."""
    verdicts = _verdicts(
        pg_admin_url,
        "CREATE TABLE posts (id int PRIMARY KEY, title text);"
        "CREATE FUNCTION full_title(posts) RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'Re: ' || $1.title $$;",
        "const a = () => supabase.from('posts').select('id, full_title').eq('full_title', 'Re: x');\n"
        "const b = () => supabase.from('posts').select('id, short_title');\n",
        "posts",
    )
    assert verdicts[0] is None
    assert verdicts[1] is not None and "posts.short_title does not exist" in verdicts[1]


def test_aggregates_follow_db_aggregates_enabled_and_a_bare_count_is_postgrests_old_form(pg_admin_url):
    """`x.sum()` and `count()` need db-aggregates-enabled (off by default: PGRST123, a server
    setting); `rel(count)` and `count` are PostgREST's old form, `"t"."count"`, which PostgreSQL
    reads as count(t): fine alone, refused beside other columns (no GROUP BY)."""
    import psycopg

    from conftest import users_database
    from tableshift.db import statement
    from tableshift.scan import scan_source

    url = users_database(pg_admin_url, "CREATE TABLE posts (id int PRIMARY KEY, likes int); CREATE TABLE comments (id int PRIMARY KEY, post_id int REFERENCES posts (id));")
    code = (
        "const a = () => supabase.from('posts').select('likes.sum()');\n"
        "const b = () => supabase.from('posts').select('id, comments(count)');\n"
        "const c = () => supabase.from('posts').select('count');\n"
        "const d = () => supabase.from('posts').select('id, count');\n"
    )
    calls = scan_source(code.encode(), path="x.ts", language="typescript").calls
    with psycopg.connect(url) as conn:
        fks = statement.relationships(conn)
        with pytest.raises(statement.ServerSetting, match="PGRST123"):
            statement.build(calls[0], "posts", fks)
        assert statement.check(conn, statement.build(calls[0], "posts", fks, aggregates=True)) is None
        verdicts = [statement.check(conn, statement.build(c, "posts", fks)) for c in calls[1:]]
    assert verdicts[:2] == [None, None]
    assert verdicts[2] is not None and "must appear in the GROUP BY clause" in verdicts[2]


def test_an_insert_that_leaves_out_a_not_null_column_is_refused_as_executing_it_would(pg_admin_url):
    verdicts = _verdicts(
        pg_admin_url,
        "CREATE TABLE t (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, title text NOT NULL, body text NOT NULL DEFAULT '', n int);",
        "const a = () => supabase.from('t').insert({ n: 1 });\n"
        "const b = () => supabase.from('t').insert({ title: 'x' });\n"
        "const c = (extra: any) => supabase.from('t').insert({ n: 1, ...extra });\n",
        "t",
    )
    assert verdicts == ['null value in column "title" of relation "t" violates not-null constraint', None, None]


def test_a_json_path_on_a_column_that_is_not_json_is_read_through_to_jsonb_as_postgrest_does(pg_admin_url):
    verdicts = _verdicts(
        pg_admin_url,
        "CREATE TABLE t (id int PRIMARY KEY, meta jsonb, tags text[], label text);",
        "const a = () => supabase.from('t').select('meta->owner->>name').eq('meta->>kind', 'x');\n"
        "const b = () => supabase.from('t').select('tags->0, label->x');\n",
        "t",
    )
    assert verdicts == [None, None]


def test_writes_are_read_from_a_json_body_as_postgrest_reads_them(pg_admin_url):
    ddl = (
        "CREATE TABLE posts (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, title text NOT NULL,"
        " status text NOT NULL DEFAULT 'draft', meta jsonb, tags text[], views int);"
    )
    code = (
        "const a = () => supabase.from('posts').insert({ title: 'a', meta: 'hello' });\n"  # a JSON string in jsonb
        "const b = () => supabase.from('posts').insert({ title: 'a', tags: '{x,y}', views: '3' });\n"
        "const c = () => supabase.from('posts').insert({ title: 'a', views: 'many' });\n"
        "const d = () => supabase.from('posts').insert([{ title: 'a', status: 'live' }, { title: 'b' }]);\n"  # NULL into status
        "const e = () => supabase.from('posts').insert([{ title: 'a', status: 'live' }, { title: 'b' }], { defaultToNull: false });\n"
        "const f = () => supabase.from('posts').insert({ title: null });\n"
        "const g = () => supabase.from('posts').update({ status: null }).eq('id', 1);\n"
        "const h = () => supabase.from('posts').update({ meta: 'x', views: 2 }).eq('id', 1);\n"
        "const i = () => supabase.from('posts').insert({ status: 'x' });\n"
    )
    verdicts = _verdicts(pg_admin_url, ddl, code, "posts")
    assert verdicts[:3] == [None, None, 'invalid input syntax for type integer: "many"']
    assert verdicts[3] == 'null value in column "status" of relation "posts" violates not-null constraint'
    assert verdicts[4] is None  # Prefer: missing=default: the column's default
    assert verdicts[5] == 'null value in column "title" of relation "posts" violates not-null constraint'
    assert verdicts[6] == 'null value in column "status" of relation "posts" violates not-null constraint'
    assert verdicts[7] is None
    assert verdicts[8] == 'null value in column "title" of relation "posts" violates not-null constraint'


def test_a_cast_inside_an_aggregate_is_the_columns_and_outside_it_the_results(pg_admin_url):
    ddl = "CREATE TABLE orders (id int PRIMARY KEY, amount text, region text);"
    code = (
        "const a = () => supabase.from('orders').select('region, amount::numeric.sum()');\n"
        "const b = () => supabase.from('orders').select('region, amount.sum()::numeric');\n"
        "const c = () => supabase.from('orders').select('region, total:count()::text');\n"
    )
    from tableshift.db import statement
    from tableshift.scan import scan_source

    [a, b, c] = scan_source(code.encode(), path="x.ts", language="typescript").calls
    assert _inline(statement.build(a, "orders", [], aggregates=True)).startswith('SELECT "orders"."region", sum(CAST("orders"."amount" AS numeric))')
    assert _inline(statement.build(c, "orders", [], aggregates=True)).startswith('SELECT "orders"."region", CAST(count(*) AS text) AS "total"')
    import psycopg

    from conftest import users_database

    with psycopg.connect(users_database(pg_admin_url, ddl)) as conn:
        assert statement.check(conn, statement.build(a, "orders", [], aggregates=True)) is None
        assert statement.check(conn, statement.build(b, "orders", [], aggregates=True)) == "function sum(text) does not exist"


def test_embeds_reach_through_views_that_show_a_foreign_keys_columns(pg_admin_url):
    """PostgREST finds a foreign key through a view that shows its columns (under their view
    names, through views of views), both ways; a table it does not expose (auth.users, which the
    Supabase stand-in holds) has no relationship."""
    ddl = (
        "CREATE TABLE profiles (id uuid PRIMARY KEY REFERENCES auth.users (id), name text);"
        "CREATE TABLE posts (id int PRIMARY KEY, author uuid REFERENCES profiles (id), body text, draft boolean);"
        "CREATE VIEW published AS SELECT id, author AS writer, body FROM posts WHERE NOT draft;"
        "CREATE VIEW recent AS SELECT writer, id FROM published;"
        "CREATE VIEW public_profiles AS SELECT id, name FROM profiles;"
        "CREATE VIEW bodies AS SELECT id, body FROM posts;"  # no key column: no relationship
    )
    code = (
        "const a = () => supabase.from('published').select('id, profiles(name)');\n"
        "const b = () => supabase.from('profiles').select('id, published(body), recent(id)');\n"
        "const c = () => supabase.from('recent').select('id, public_profiles(name)');\n"
        "const d = () => supabase.from('published').select('id, writer(name)');\n"
        "const e = () => supabase.from('profiles').select('id, bodies(id)');\n"
        "const f = () => supabase.from('profiles').select('id, users(id)');\n"
        "const g = () => supabase.from('published').select('id, profiles(nope)');\n"
    )
    import psycopg

    from conftest import users_database
    from tableshift.db import statement, verify
    from tableshift.scan import scan_source

    with psycopg.connect(users_database(pg_admin_url, ddl)) as conn:
        fks = statement.relationships(conn)
        calls = scan_source(code.encode(), path="x.ts", language="typescript").calls
        errors = [verify._check(conn, c, c.table.name, fks)["error"] for c in calls]
    # the column names the key to profiles, never the one to the view of them (findRel: not relFTableIsView)
    assert errors[:4] == [None, None, None, None]
    assert errors[4] == "PostgREST: Could not find a relationship between 'profiles' and 'bodies' in the schema cache"
    assert errors[5] == "PostgREST: Could not find a relationship between 'profiles' and 'users' in the schema cache"
    assert errors[6] is not None and "nope" in errors[6]


def test_python_calls_are_checked_with_the_values_supabase_py_sends(pg_admin_url):
    ddl = "CREATE TABLE posts (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, title text NOT NULL, flag boolean, views int);"
    code = (
        "def a(): return supabase.table('posts').select('id').eq('flag', True).execute()\n"
        "def b(): return supabase.table('posts').select('id').eq('views', 'n/a').execute()\n"
        "def c(): return supabase.table('posts').select('id').eq('views', None).execute()\n"  # the text `null`
        "def d(): return supabase.table('posts').select('id').in_('id', ['x']).execute()\n"
        "def e(): return supabase.table('posts').insert({'title': None}).execute()\n"
        "def f(): return supabase.table('posts').insert({'title': 't', 'views': '7', 'flag': False}).execute()\n"
        "def g(): return supabase.table('posts').select('id').is_('flag', None).filter('views', 'gte', 3).execute()\n"
    )
    verdicts = _verdicts(pg_admin_url, ddl, code, "posts", language="python")
    assert verdicts[0] is None
    assert verdicts[1] == 'invalid input syntax for type integer: "n/a"'
    assert verdicts[2] == 'invalid input syntax for type integer: "null"'
    assert verdicts[3] == 'invalid input syntax for type integer: "x"'
    assert verdicts[4] == 'null value in column "title" of relation "posts" violates not-null constraint'
    assert verdicts[5] is None and verdicts[6] is None


def test_a_writes_embedded_or_applies_to_the_table_itself_as_postgrest_plans_it(pg_admin_url):
    ddl = "CREATE TABLE posts (id int PRIMARY KEY, title text); CREATE TABLE comments (id int PRIMARY KEY, post_id int REFERENCES posts, body text);"
    code = (
        "const a = () => supabase.from('posts').update({ title: 'x' }).or('id.eq.1', { referencedTable: 'comments' }).select('id, comments(id)');\n"
        "const b = () => supabase.from('posts').update({ title: 'x' }).or('body.eq.y', { referencedTable: 'comments' }).select('id, comments(id)');\n"
    )
    verdicts = _verdicts(pg_admin_url, ddl, code, "posts")
    assert verdicts[0] is None  # a WHERE clause: pg-safeupdate lets it through
    assert verdicts[1] == "column posts.body does not exist"


def test_the_resources_a_write_returns_embedded_are_checked(pg_admin_url):
    ddl = "CREATE TABLE posts (id int PRIMARY KEY, title text); CREATE TABLE comments (id int PRIMARY KEY, post_id int REFERENCES posts, body text);"
    code = (
        "const a = () => supabase.from('posts').insert({ id: 1, title: 'x' }).select('id, comments(body)');\n"
        "const b = () => supabase.from('posts').insert({ id: 1, title: 'x' }).select('id, comments(nope)');\n"
        "const c = () => supabase.from('posts').update({ title: 'x' }).eq('id', 1).select('id, authors(id)');\n"
    )
    verdicts = _verdicts(pg_admin_url, ddl, code, "posts")
    assert verdicts[0] is None
    assert verdicts[1] == "column _comments.nope does not exist"
    assert verdicts[2] == "PostgREST: Could not find a relationship between 'posts' and 'authors' in the schema cache"


def _nodes_recursive(text: str):  # type: ignore[no-untyped-def]
    """The node-text reader as it was written first (recursive): the reference for the stack one."""
    import re

    tokens = re.findall(r'[(){}]|(?:\\.|[^\s(){}\\])+', text)
    pos = 0

    def item():  # type: ignore[no-untyped-def]
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "(":
            out = []
            while pos < len(tokens) and tokens[pos] != ")":
                out.append(item())
            pos += 1
            return out
        if token == "{":
            node: dict = {}  # type: ignore[type-arg]
            pos += 1
            current = None
            while pos < len(tokens) and tokens[pos] != "}":
                if tokens[pos].startswith(":"):
                    current = node.setdefault(tokens[pos][1:], [])
                    pos += 1
                elif current is not None:
                    current.append(item())
                else:
                    item()
            pos += 1
            return node
        return None if token == "<>" else re.sub(r"\\(.)", r"\1", token)

    return item() if tokens else None


def test_node_text_is_read_without_recursion_as_before():
    import random

    from tableshift.db.statement import _nodes

    texts = [
        '({TARGETENTRY :expr {VAR :varno 1 :varattno 2} :resno 1 :resname id :resorigtbl 16384 :resorigcol 1 :resjunk false})',
        '({TARGETENTRY :expr {OPEXPR :opno 551 :args ({CONST :constvalue 4 [ 1 0 0 0 ]} {VAR :varno 1}) } :resname a\\ b'
        ' :resorigtbl 0})',
        "{QUERY :commandType 1 :rtable ({RANGETBLENTRY :alias <> :eref {ALIAS :aliasname t :colnames (\"id\" \"x\\(y\\)\")}})}",
        "", "(", "{", ")", "}", "( ) ( )", "{A :x ) :y ( } }", "(( a } b", "{A stray :f 1 2 (3 {B :g 4}) :h}",
    ]
    rng = random.Random(7)
    pieces = ["(", ")", "{", "}", "{N", ":f", ":g", "v", "<>", "a\\ b", "\\)"]
    texts += [" ".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    for text in texts:
        assert _nodes(text) == _nodes_recursive(text), text
    # `1 + 1 + ...` nested 20,000 deep: read whole (the recursive reader stopped at Python's limit)
    depth = 20_000
    deep = "({TARGETENTRY :expr " + "{OPEXPR :args (" * depth + "{VAR :varno 1 :varattno 2}" + ")}" * depth + " :resorigtbl 16384 :resorigcol 1})"
    tree = _nodes(deep)
    assert tree[0]["resorigtbl"] == ["16384"] and tree[0]["resorigcol"] == ["1"]
    node = tree[0]["expr"][0]
    for _ in range(depth):
        node = node["args"][0][0]
    assert node == {"varno": ["1"], "varattno": ["2"]}
