"""The TypeScript scanner on small inline sources: what is a call, what is noise, what is known."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tree_sitter import Parser

from tableshift.model import Confidence, Kind, Operation, TableSource
from tableshift.scan import scan_source, ts_nodes, typescript
from tableshift.scan.typescript import grammar

from conftest import FIXTURES


def calls(source: str, language: str = "typescript"):
    result = scan_source(source.encode(), path="x.ts", language=language)
    assert result.error is None, result.error
    return list(result.calls)


def only(source: str, language: str = "typescript"):
    found = calls(source, language)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    "noise",
    [
        "const a = Array.from(items).filter(Boolean);",
        "const b = Buffer.from(x, 'base64');",
        "const c = Uint8Array.from([1, 2]);",
        "const d = Array.from('abc');",
        "gsap.from(el, { opacity: 0 });",
        "db.select().from(users).where(eq(users.id, 1));",
        "knex.select('*').from('users');",
        "knex.from('users').where('id', 1);",
        "const r = dateRange.from(start);",
        "const o = Object.fromEntries(pairs);",
        "from(promise).subscribe();",
        "const s = new Set(Array.from(set));",
        "const t = [...Array.from({ length: 3 }, (_, i) => i), ...Buffer.from('ab')];",
        "client.rpc = 1;",
        "emitter.on('data', cb);",
    ],
)
def test_noise_is_not_a_call(noise):
    assert calls(noise) == []


@pytest.mark.parametrize(
    "receiver",
    [
        "supabase",
        "this.supabase",
        "client",
        "this.client",
        "admin",
        "db",
        "supabaseClient",
        "getSupabaseClient()",
        "this.db.getClient()",
        "(await import('./lib/supabase')).supabase",
        "(supabase as any)",
    ],
)
def test_client_receivers_without_a_chain_are_medium_confidence_calls(receiver):
    call = only(f"async function f() {{ const q = {receiver}.from('posts'); return q; }}")
    assert call.kind is Kind.TABLE and call.table.name == "posts"
    assert call.confidence is Confidence.MEDIUM
    assert call.operation is None


def test_any_receiver_with_a_postgrest_chain_is_a_high_confidence_call():
    call = only("await whatever.from('posts').select('id').eq('status', 'x');")
    assert call.confidence is Confidence.HIGH
    assert call.operation is Operation.SELECT
    assert call.client == "whatever"


def test_destructured_data_error_is_evidence():
    call = only("const { data, error } = await thing.from('posts');")
    assert call.confidence is Confidence.HIGH


@pytest.mark.parametrize(
    ("arg", "name", "source"),
    [
        ("'posts'", "posts", TableSource.LITERAL),
        ('"posts"', "posts", TableSource.LITERAL),
        ("`posts`", "posts", TableSource.LITERAL),
        ("'posts' as any", "posts", TableSource.LITERAL),
        ("('posts' as const)", "posts", TableSource.LITERAL),
        ("'posts'!", "posts", TableSource.LITERAL),
        ("T", "posts", TableSource.CONSTANT),
        ("TABLES.posts", "posts_v2", TableSource.CONSTANT),
    ],
)
def test_certain_table_names(arg, name, source):
    src = f"const T = 'posts';\nconst TABLES = {{ posts: 'posts_v2' }} as const;\nsupabase.from({arg}).select();"
    call = only(src)
    assert call.table.name == name
    assert call.table.source is source


def test_literal_table_span_points_inside_the_quotes():
    src = "supabase.from('posts').select();"
    call = only(src)
    span = call.table.span
    assert src.encode()[span.start : span.end] == b"posts"


def test_env_override_is_dynamic_with_candidate():
    call = only("const LOG_TABLE = process.env.LOG_TABLE ?? 'usage_log';\nsupabase.from(LOG_TABLE).insert(row);")
    assert call.table.source is TableSource.DYNAMIC
    assert call.table.candidates == ("usage_log",)
    assert "environment override" in call.table.reasons[0]


def test_parameter_is_dynamic_with_call_site_candidates():
    src = """
async function count(tableName: string) { return supabase.from(tableName).select('*', { count: 'exact', head: true }); }
count('tweets'); count("posts"); count(other);
"""
    [call] = [c for c in calls(src)]
    assert call.table.name is None
    assert call.table.candidates == ("tweets", "posts")
    assert call.table.reasons == ("parameter `tableName` of `count`",)


def test_const_shadowed_by_parameter_is_the_parameter():
    src = "const table = 'tweets';\nfunction f(table) { return supabase.from(table).select(); }"
    call = only(src)
    assert call.table.source is TableSource.DYNAMIC
    assert "parameter `table`" in call.table.reasons[0]


def test_config_object_defaults_are_candidates():
    src = """
const DEFAULTS = { tables: { posts: 'posts', metrics: 'tweet_metrics' } };
class Repo {
  constructor(config = {}) { this.config = { ...DEFAULTS, ...config }; }
  list() { return this.supabase.from(this.config.tables.posts).select('*'); }
}
"""
    call = only(src)
    assert call.table.candidates == ("posts",)
    assert call.table.reasons == ("config property `this.config.tables.posts`",)


def test_template_with_substitution_is_dynamic():
    call = only("supabase.from(`${prefix}_events`).select();")
    assert call.table.name is None and call.table.candidates == ()


def test_schema_storage_rpc_realtime():
    src = """
supabase.schema('analytics').from('events').select('*');
supabase.storage
  .from('avatars')
  .upload(path, file);
const storage = supabase.storage;
storage.from('media').getPublicUrl(p);
await supabase.rpc('get_stats', { since });
supabase.channel('x').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'posts' }, cb).subscribe();
"""
    found = calls(src)
    assert [(c.kind, c.start.line) for c in found] == [
        (Kind.TABLE, 2),
        (Kind.STORAGE, 4),
        (Kind.STORAGE, 7),
        (Kind.RPC, 8),
        (Kind.REALTIME, 9),
    ]
    assert found[0].schema == "analytics" and found[0].client == "supabase"
    assert [c.name for c in found[1:4]] == ["avatars", "media", "get_stats"]
    assert found[4].table.name == "posts" and found[4].event == "INSERT"


@pytest.mark.parametrize(
    "source",
    [
        "const { data } = await supabaseAdmin(c).storage.from('images').list('avatars/');",
        "const { data } = await useSupabase().storage.from('images').createSignedUrl(path, 60);",
        "await getSupabaseClient().storage.from('images').remove([path]);",
        "await (await client()).storage.from('images').upload(path, file);",
        "class Media { async drop(p: string) { await this.supabase.storage.from('images').remove([p]); } }",
        "await (supabase.storage as any).from('images').list();",
        "await supabase?.storage?.from('images').list();",
        "await supabase['storage'].from('images').list();",
        "await this.db.getClient()\n  .storage\n  .from('images')\n  .list();",
        "const store = getClient().storage;\nawait store.from('images').list();",
        "const store = (await client()).storage;\nawait store.from('images').list();",
        "const bucket = getClient().storage.from('images');\nconst { data, error } = await bucket.upload(path, file);",
    ],
)
def test_storage_from_on_any_receiver_is_the_bucket(source):
    call = only(source)
    assert (call.kind, call.name, call.table) == (Kind.STORAGE, "images", None)


def test_storage_receivers_in_javascript_name_the_client():
    src = "const { data } = await supabaseAdmin(c).storage.from('images').list();\nconst removed = (await client()).storage.from('docs').remove([p]);\n"
    found = calls(src, "javascript")
    assert [(c.kind, c.name, c.client) for c in found] == [
        (Kind.STORAGE, "images", "supabaseAdmin(c)"),
        (Kind.STORAGE, "docs", "(await client())"),
    ]


@pytest.mark.parametrize(
    "source",
    [
        "await db.from('images').select('*');",
        "await getClient().from('images').select('id');",
        "await (await client()).from('images').select('id');",
        "const store = getClient();\nawait store.from('images').select('id');",
        "const storage = supabase;\nawait storage.from('images').select('id');",
        "await supabase.storageUsage.from('images').select('id');",
    ],
)
def test_from_on_a_client_that_is_not_storage_stays_a_table_call(source):
    call = only(source)
    assert (call.kind, call.table.name, call.name) == (Kind.TABLE, "images", None)


def test_split_builder_collects_continued_filters():
    src = """
async function list(status?: string) {
  let q = supabase.from('posts').select('*');
  if (status) q = q.eq('status', status);
  const { data } = await q;
}
"""
    call = only(src)
    assert call.operation is Operation.SELECT
    assert [c.name for c in call.columns.filter] == ["status"]


def test_columns_everywhere():
    src = """
await supabase.from('outcomes')
  .upsert([{ decision_id, likes_count: 1 }, { 'tweet_id': 2, ...rest, [k]: 3 }], { onConflict: 'decision_id,tweet_id' })
  .select('id, alias:likes_count::int, metadata->>kind, profiles!inner(name)')
  .match({ status: 'x' })
  .or('a.eq.1,b.is.null')
  .order('collected_at', { ascending: false })
  .not('tweet_id', 'is', null);
"""
    call = only(src)
    cols = call.columns
    assert [(c.name, c.shorthand) for c in cols.write] == [("decision_id", True), ("likes_count", False), ("tweet_id", False)]
    assert [c.name for c in cols.on_conflict] == ["decision_id", "tweet_id"]
    assert [(c.name, c.alias, c.cast, c.json_path) for c in cols.select] == [
        ("id", None, None, None),
        ("likes_count", "alias", "int", None),
        ("metadata", None, None, "->>kind"),
    ]
    assert [(e.table, e.hints, [c.name for c in e.columns]) for e in cols.embedded] == [("profiles", ("inner",), ["name"])]
    assert [(c.name, c.op) for c in cols.filter] == [
        ("status", "match"),
        ("a", "or"),
        ("b", "or"),
        ("collected_at", "order"),
        ("tweet_id", "not"),
    ]
    assert sorted(o.reason for o in cols.opaque) == ["upsert has a computed key: `[k]: 3`", "upsert spreads `...rest`"]
    data = src.encode()
    for column in (*cols.write, *cols.on_conflict, *cols.select, *cols.filter):
        assert data[column.span.start : column.span.end].decode() == column.name


def test_payload_variable_is_opaque_not_guessed():
    call = only("await supabase.from('posts').insert(row);")
    assert call.columns.write == ()
    assert call.columns.opaque[0].reason == "insert payload is a variable: `row`"


def test_malformed_select_is_a_note_not_a_crash():
    call = only("await supabase.from('posts').select('a, b(c');")
    assert call.columns.select == ()
    assert "select string does not parse" in call.notes[0]


def test_parse_error_region_is_flagged_and_file_still_scanned():
    src = "supabase.from('a').select();\nfunction broken( {\nsupabase.from('b').select();\n"
    result = scan_source(src.encode(), path="x.ts", language="typescript")
    assert result.parse_error
    assert [c.table.name for c in result.calls] == ["a", "b"]
    assert [c.in_error_region for c in result.calls] == [False, True]


def test_bom_crlf_and_non_ascii_positions():
    src = "\ufeffconst é = 1; await supabase.from('posts').select('id');\r\n  supabase.from('tweets').select();\r\n"
    data = src.encode("utf-8")
    result = scan_source(data, path="x.ts", language="typescript")
    assert not result.parse_error
    first, second = result.calls
    assert (first.start.line, first.start.column) == (1, 29)
    assert (second.start.line, second.start.column) == (2, 12)
    assert first.code.startswith("const é")
    assert data[first.table.span.start : first.table.span.end] == b"posts"


def test_non_utf8_bytes_do_not_break_the_scan():
    data = b"// caf\xe9\nawait supabase.from('posts').select('id');\n"
    [call] = scan_source(data, path="x.js", language="javascript").calls
    assert call.table.name == "posts"


def test_files_without_candidates_are_not_parsed():
    result = scan_source(b"export const x = 1;\n", path="x.ts", language="typescript")
    assert result.parsed is False and result.calls == ()


def test_tsx_and_javascript_grammars():
    tsx = "export function P() { const { data } = useQuery(() => supabase.from('posts').select('*')); return <div>{data}</div>; }"
    assert only(tsx, "tsx").table.name == "posts"
    js = "const { createClient } = require('@supabase/supabase-js');\nmodule.exports = async () => supabase.from('tweets').delete().eq('id', 1);"
    assert only(js, "javascript").operation is Operation.DELETE


@pytest.mark.parametrize(
    "source",
    [
        "class Store { static readonly TABLE = 'posts'; load() { return supabase.from(Store.TABLE).select(); } }",
        "class Store { private readonly table = 'posts'; load() { return this.supabase.from(this.table).select(); } }",
        "const TABLES = Object.freeze({ posts: 'posts' });\nsupabase.from(TABLES.posts).select();",
        "const TABLES = Object.freeze({ posts: 'posts' });\nsupabase.from(TABLES['posts']).select();",
    ],
)
def test_class_fields_and_frozen_objects_are_constants(source):
    call = only(source)
    assert (call.table.name, call.table.source) == ("posts", TableSource.CONSTANT)


def test_schema_from_a_constant_and_from_an_unknown():
    known = only("const S = 'analytics';\nsupabase.schema(S).from('events').select();")
    assert known.schema == "analytics"
    unknown = only("supabase.schema(process.env.SCHEMA ?? 'public').from('tweets').select('id');")
    assert unknown.table.name is None and unknown.table.candidates == ("tweets",)
    assert unknown.table.reasons[0] == "the .schema() argument is not known statically"


def test_reassigned_builder_variable_does_not_share_filters():
    src = "let q = supabase.from('a').select('id');\nq = supabase.from('b').select('id');\nq = q.eq('x', 1);\n"
    first, second = calls(src)
    assert first.columns.filter == () and [c.name for c in second.columns.filter] == ["x"]


@pytest.mark.parametrize(
    "noise",
    [
        "emailClient.from('noreply@example.com');",
        "httpClient.from('tweets');",
        "wsClient.rpc('eth_call', []);",
        "client.from('not a table name');",
    ],
)
def test_clients_of_other_things_are_noise(noise):
    assert calls(noise) == []


def test_non_literal_on_conflict_is_recorded():
    first, second = calls("const onConflict = 'a';\nawait supabase.from('t').upsert({ a: 1 }, { onConflict });\nawait supabase.from('t').upsert({ a: 1 }, opts);")
    assert first.columns.opaque[0].reason == "onConflict is a variable: `onConflict`"
    assert second.columns.opaque[0].reason == "upsert options are not an object literal: `opts`"


def test_call_next_to_a_syntax_error_is_flagged():
    src = "async function f() {\n  const { data } = await supabase.from('posts').select('id'\n  return data;\n}\n"
    [call] = calls(src)
    assert call.in_error_region


def test_deeply_nested_argument_does_not_crash():
    deep = "a" + ".b" * 3000
    call = only(f"supabase.from({deep}).select();")
    assert call.table.name is None


def test_builder_passed_on_is_noted():
    src = "async function f() {\n  const q = supabase.from('posts').select('*');\n  return paginate(q, 10);\n}\n"
    call = only(src)
    assert any("is passed on" in note for note in call.notes)
    plain = only("async function f() {\n  const q = supabase.from('posts').select('*');\n  const { data } = await q.eq('a', 1);\n}\n")
    assert plain.notes == ()


def test_helper_called_with_a_constant_lists_the_constant_table():
    src = """
const INVOICE_TABLE = 'receipts';
async function countRows(client: SupabaseClient, table: string) {
  return client.from(table).select('id', { count: 'exact' });
}
await countRows(supabase, INVOICE_TABLE);
"""
    call = only(src)
    assert call.table.source is TableSource.DYNAMIC
    assert call.table.candidates == ("receipts",)
    assert call.table.reasons == ("parameter `table` of `countRows`",)


def test_helper_call_site_arguments_resolve_like_a_table_argument():
    src = """
const TABLES = Object.freeze({ posts: 'posts_v2' });
class Store { static readonly TABLE = 'stores'; }
const LOG = process.env.LOG_TABLE ?? 'usage_log';
const DEFAULT = 'defaults';
function list(table = DEFAULT) { return supabase.from(table).select('*'); }
list('tweets'); list(TABLES.posts); list(Store.TABLE); list(LOG); list(flag ? 'a' : 'b'); list(unknown);
"""
    call = only(src)
    assert call.table.candidates == ("defaults", "tweets", "posts_v2", "stores", "usage_log", "a", "b")
    assert call.table.reasons == ("parameter `table` of `list`",)


def test_helper_passing_its_parameter_on_lists_its_own_callers_tables():
    src = """
function inner(t) { return supabase.from(t).select('*'); }
function outer(name) { return inner(name); }
const T = 'posts';
outer(T); inner('tweets');
"""
    call = only(src)
    assert call.table.candidates == ("posts", "tweets")


def test_parameter_defaults_inside_patterns():
    src = "function f(a = 'x', { b = 'y', c: { d } = {} } = {}, [e, g = 'z'] = [], h?: string, ...{ i = 'w' }) {}"
    fn = Parser(grammar("typescript").language).parse(src.encode()).root_node.named_children[0]
    names = [(name, ts_nodes.text(d) if d is not None else None) for name, d in ts_nodes.parameter_names(fn)]
    assert names == [("a", "'x'"), ("b", "'y'"), ("d", "{}"), ("e", "[]"), ("g", "'z'"), ("h", None), ("i", "'w'")]


def test_explicit_generics_on_from_and_rpc_are_calls():
    src = b"const { data } = await supabase.from<Row>('receipts').select('*');\nconst b = await supabase.rpc<Out>('fn', {});\nconst c = supabase.from<Row>('posts').select();\n"
    calls = scan_source(src, path="x.ts", language="typescript").calls
    assert [(c.kind.value, c.table.name if c.table else c.name, c.start.line) for c in calls] == [
        ("table", "receipts", 1),
        ("rpc", "fn", 2),
        ("table", "posts", 3),
    ]


def test_realtime_options_held_in_a_constant_or_hidden_are_still_subscriptions():
    src = b"const opts = { event: 'INSERT', schema: 'public', table: 'receipts' };\nch.on('postgres_changes', opts, cb);\nch.on('postgres_changes', makeOpts(), cb);\n"
    calls = scan_source(src, path="x.ts", language="typescript").calls
    assert [(c.kind, c.table.name, c.start.line) for c in calls] == [(Kind.REALTIME, "receipts", 2), (Kind.REALTIME, None, 3)]
    assert any("come from `opts`" in note for note in calls[0].notes)  # review: never edited through the constant
    assert not calls[1].table.certain


def test_sql_in_strings_names_the_tables_postgresql_reads_in_it():
    from tableshift.scan import scan_source

    code = (
        "const a = () => sql`WITH recent AS (SELECT * FROM tweets) INSERT INTO outcomes (tweet_id) SELECT tweet_id FROM recent ON CONFLICT DO NOTHING`;\n"
        "const b = (id: string) => pool.query(\"DELETE FROM archive.posts WHERE id = $1\", [id]);\n"
        "const c = (t: string) => sql`SELECT * FROM ${sql(t)}`;\n"  # an identifier from an interpolation: not a table
        "const d = 'Select one of the options below';\n"
        "const e = `update ${table} set a = 1`;\n"
    )
    calls = [c for c in scan_source(code.encode(), path="x.ts", language="typescript").calls if c.kind.value == "sql"]
    assert [(c.start.line, c.table.name, c.schema, c.operation.value) for c in calls] == [
        (1, "tweets", None, "select"),  # the CTE `recent` is not a table
        (1, "outcomes", None, "upsert"),
        (2, "posts", "archive", "delete"),
    ]


def test_small_shapes_real_code_takes_spread_tables_rpc_ternaries_and_schema_clients():
    from tableshift.scan import scan_source

    code = (
        "import { createClient } from '@supabase/supabase-js';\n"
        "const files = createClient(URL, KEY, { db: { schema: 'storage' } });\n"
        "const plain = createClient(URL, KEY, { db: { schema: 'public' } });\n"
        "export const a = (args: [string]) => supabase.from(...args).select('id');\n"
        "export const b = (flag: boolean) => supabase.rpc(flag ? 'top_tweets' : 'all_tweets');\n"
        "export const c = () => files.from('objects').select('name');\n"
        "export const d = () => plain.from('posts').select('id');\n"
    )
    calls = {c.start.line: c for c in scan_source(code.encode(), path="x.ts", language="typescript").calls}
    assert not calls[4].table.certain and calls[4].table.reasons == ("expression `...args`",)  # reported, not dropped
    assert calls[5].table.candidates == ("top_tweets", "all_tweets")  # an rpc lists its candidates as a table does
    assert (calls[6].schema, calls[6].table.name) == ("storage", "objects")
    assert (calls[7].schema, calls[7].table.name) == (None, "posts")


def test_rest_urls_name_their_table_and_a_base_url_names_none():
    from tableshift.scan import scan_source

    code = (
        "export const a = (id: string) => fetch(`${URL}/rest/v1/dealers?id=eq.${id}&select=user_id`, { method: 'PATCH', body: '{}' });\n"
        "export const b = () => page.route('**/rest/v1/prizes**', (r) => r.fulfill({ body: '[]' }));\n"  # a glob: the name ends before it
        "export const BASE = `${URL}/rest/v1/`;\n"
        "export const c = () => fetch(`${URL}/rest/v1/rpc/get_stats`, { method: 'POST' });\n"
    )
    calls = scan_source(code.encode(), path="x.ts", language="typescript").calls
    assert [(c.start.line, c.kind.value, c.table.name if c.table else c.name, c.operation.value if c.operation else None) for c in calls] == [
        (1, "rest", "dealers", "update"),
        (2, "rest", "prizes", None),
        (4, "rpc", "get_stats", None),
    ]
    assert [(c.name, c.op) for c in calls[0].columns.select + calls[0].columns.filter] == [("user_id", "select"), ("id", "filter")]


def test_english_that_parses_as_sql_is_not_sql_unless_given_to_a_call_taking_sql():
    from tableshift.scan import scan_source

    code = (
        "const a = t('Select an option from the list');\n"  # SELECT an AS option FROM the AS list: English
        "const b = 'Delete from the queue';\n"
        "const c = () => db.query('select id from tweets');\n"  # bare, but given to query()
        "const d = sql`delete from outcomes`;\n"
    )
    calls = scan_source(code.encode(), path="x.ts", language="typescript").calls
    assert [(c.start.line, c.table.name, c.operation.value) for c in calls] == [(3, "tweets", "select"), (4, "outcomes", "delete")]


@pytest.mark.parametrize(
    "statement",
    [
        "WITH recent AS (SELECT * FROM tweets) INSERT INTO outcomes (tweet_id) SELECT tweet_id FROM recent ON CONFLICT DO NOTHING",
        "WITH tweets AS (SELECT 1 AS id) SELECT * FROM tweets, public.tweets JOIN posts p ON p.id = tweets.id",  # a CTE shadowing a table
        "WITH moved AS (DELETE FROM content_metadata WHERE id = $1 RETURNING *) INSERT INTO content_queue SELECT * FROM moved ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a",
        "UPDATE posts SET n = t.n FROM (SELECT id, count(*) AS n FROM tweet_metrics GROUP BY id) t WHERE posts.id = t.id RETURNING (SELECT 1 FROM outcomes LIMIT 1)",
        "DELETE FROM archive.posts USING tweets WHERE posts.id = tweets.id AND EXISTS (SELECT 1 FROM \"we\"\"ird\" WHERE x = '\"RangeVar\":{')",
        "SELECT * FROM a NATURAL JOIN b LEFT JOIN LATERAL (SELECT * FROM c WHERE c.a = a.id) d ON true WHERE a.id IN (SELECT id FROM \"Tëst\")",
        "INSERT INTO tweets SELECT * FROM tweets",  # the same table read and written
        "SELECT 1",
        "CREATE TABLE t (id int REFERENCES posts (id))",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r, posts",
    ],
)
def test_one_statement_s_tables_are_what_walking_its_whole_tree_finds(statement):
    """`_statement` decodes only the parts of a parse tree that name tables; `_walked` loads and
    walks all of it (and takes any number of statements): they must find the same tables."""
    from tableshift.scan import sql

    tree = sql._parser().parse_sql_json(statement)
    assert sql._statement(tree) == sql._walked(tree)
    assert list(sql._tables(statement)) == sql._walked(tree)
    two = sql._parser().parse_sql_json(f"{statement}; SELECT * FROM posted_decisions")
    assert sql._walked(two)[-1].table == "posted_decisions" and sql._walked(two)[:-1] == sql._walked(tree)


@pytest.mark.parametrize("terms", [490, 600, 3000])
def test_sql_nested_deeper_than_the_json_decoder_goes_costs_the_file_none_of_its_calls(terms):
    """A statement whose tree nests deeper than Python's JSON decoder recurses is walked with a
    stack as before (what that finds, or nothing), never a RecursionError that loses the file."""
    from tableshift.scan import scan_source, sql

    statement = "insert into audit_log (msg) select " + " || ".join(["'x'"] * terms)
    assert sql._tables.__wrapped__(statement) == tuple(sql._walked(sql._parser().parse_sql_json(statement)))
    code = f"export const f = async () => {{\n  await supabase.from('users').select('*');\n  await pool.query(`{statement}`);\n}};\n"
    result = scan_source(code.encode(), path="x.ts", language="typescript")
    assert result.error is None
    assert [c.table.name for c in result.calls if c.kind.value != "sql"] == ["users"]


def test_sql_in_strings_leaves_pglast_s_node_classes_unbuilt_until_something_reads_them():
    # a fresh interpreter: this one may have imported pglast already
    import subprocess
    import sys

    probe = """
import sys
from tableshift.scan.sql import tables
assert [(u.table, u.operation.value) for u in tables("update posts set a = 1 where id = 2")] == [("posts", "update")]
unbuilt = [name for name in ("pglast.ast", "pglast.enums") if "__getattr__" in vars(sys.modules[name])]
assert unbuilt == ["pglast.ast", "pglast.enums"], unbuilt
import pglast
import pglast.ast
from pglast import enums
from pglast.enums import SetOperation
from pglast.stream import RawStream
tree = pglast.parse_sql("select a from t union select 1")
assert isinstance(tree[0].stmt, pglast.ast.SelectStmt) and tree[0].stmt.op is SetOperation.SETOP_UNION
assert enums.SetOperation is SetOperation and RawStream()(tree[0]) == "SELECT a FROM t UNION SELECT 1"
assert not any("__getattr__" in vars(sys.modules[name]) for name in ("pglast.ast", "pglast.enums"))
"""
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_bare_ampersand_in_jsx_text_is_valid_jsx_not_a_parse_error():
    from tableshift.scan import error_count, scan_source

    code = b"export const A = () => <p>Officers & Advisers &amp; more</p>;\nexport const q = () => supabase.from('posts').select('id');\n"
    for language in ("tsx", "javascript"):
        result = scan_source(code, path="x.tsx", language=language)
        assert not result.parse_error and error_count(code, language) == 0
        [call] = result.calls
        assert not call.in_error_region
    broken = b"export const A = () => <p>Officers & Advisers</p;\n"  # an error of its own stays one
    assert error_count(broken, "tsx") > 0


@pytest.mark.parametrize(
    "code, bound",
    [
        (b"let t\n(async () => 1)()\nconst q = supabase.from(t)", ["t"]),  # ASI: `(` on the next line is another statement
        (b"var t\n[1, 2].forEach(f)\n", ["t"]),
        (b"const t = 'a'; t.length; t(1); t [0]; t\n  .trim()", ["t"]),  # each use skipped, the one binding found
        (b"const { data: t, t: u } = x; const [a, t2] = y", ["{ data: t, t: u }"]),
        (b"function f(t) { return t.x }", []),
    ],
)
def test_a_name_s_declarators_are_found_whatever_follows_its_uses(code, bound):
    from tableshift.scan.ts_resolve import Resolver

    g = grammar("typescript")
    root = Parser(g.language).parse(code).root_node
    found = Resolver(root, g.queries, ts_nodes.Parents(root)).declarators("t")
    assert [ts_nodes.text(d).partition("=")[0].strip() for d in found] == bound


# What `_uses_of` finds from a name's bytes, as three queries over the whole tree find it
_USES_QUERIES = {
    "method_calls": "(call_expression function: (member_expression object: (identifier) @object property: (property_identifier))) @call",
    "assignments": "(assignment_expression left: (identifier) @name right: (_) @value)",
    "escapes": """
        [(arguments (identifier) @name)
         (return_statement (identifier) @name)
         (arrow_function body: (identifier) @name)
         (array (identifier) @name)
         (pair value: (identifier) @name)
         (shorthand_property_identifier) @name] @escape
    """,
}
_USES_TRICKY = [
    b"let q = db.from('t').select(); q = q.eq('a', 1); q = other(); f(q); g(x, q); return q",
    b"const q = db.from('t'); const o = { q, r: q, s: [q, xq, q_, $q] }; const h = () => q; q?.eq('a', 1); q.#p(); q['eq'](1)",
    b"let q; q = (await q.limit(1)); q = (q).order('a'); q\n  .range(0, 1); 'q'; // q.eq(1)\n`${q.eq(2)}`",
    b"function f(q) { q = q || db.from('t'); return [q] } class A { q = q; m() { this.q.eq(1) } }",
    b"let \xc3\xa9q = 1, q\xc3\xa9 = 2, q = 3; f(\xc3\xa9q, q\xc3\xa9, q); q \n = 4",
]


def test_a_variable_s_uses_are_what_queries_over_the_whole_tree_find():
    from tree_sitter import Query, QueryCursor

    from tableshift.scan.source import SourceText

    sources = [(p.read_bytes(), "tsx" if p.suffix == ".tsx" else "typescript") for p in sorted(FIXTURES.rglob("*.ts*")) if p.is_file()]
    sources += [(code, "typescript") for code in _USES_TRICKY]
    checked = 0
    for data, language in sources:
        g = grammar(language)
        root = Parser(g.language).parse(data).root_node
        queries = {name: Query(g.language, q) for name, q in _USES_QUERIES.items()}
        expected: dict[str, tuple[list[int], list[int], list[int]]] = {}
        for _, m in QueryCursor(queries["method_calls"]).matches(root):
            expected.setdefault(ts_nodes.text(m["object"][0]), ([], [], []))[0].append(m["call"][0].start_byte)
        for _, m in QueryCursor(queries["assignments"]).matches(root):
            target = ts_nodes.text(m["name"][0])
            if typescript._chain_base(m["value"][0]) != target:
                expected.setdefault(target, ([], [], []))[1].append(m["value"][0].start_byte)
        for _, m in QueryCursor(queries["escapes"]).matches(root):
            expected.setdefault(ts_nodes.text(m["name"][0]), ([], [], []))[2].append(m["name"][0].start_byte)
        scan = typescript._FileScan(path="a.ts", language=language, src=SourceText(data), root=root, grammar=g)
        names = {w.decode("utf-8", "surrogateescape") for w in re.findall(rb"[A-Za-z_$\x80-\xff][\w$\x80-\xff]*", data)}
        for name in names:
            uses = scan._uses_of(name)
            calls, resets, escapes = expected.get(name, ([], [], []))
            assert [c.start_byte for c in uses.calls] == sorted(calls), (name, data[:60])
            assert uses.resets == sorted(resets), (name, data[:60])
            assert [e.start_byte for e in uses.escapes] == escapes, (name, data[:60])
            checked += bool(calls or resets or escapes)
    assert checked > 100


def _fold_whole(code: str, limit: int) -> str:
    """`fold` as first written: the whole code folded, then cut."""
    parts = re.split(r"([.()\[\]{},:])", " ".join(code.split()))
    parts[::2] = [p.strip() for p in parts[::2]]
    folded = "".join(parts).replace('"', "'").replace("`", "'")
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


_PIECE = st.tuples(st.text(alphabet=st.sampled_from("ab().,:[]{}'\"`é"), max_size=4), st.text(alphabet=st.sampled_from(" \n\t\u00a0"), max_size=30))


@settings(max_examples=1000, deadline=None)
@given(pieces=st.lists(_PIECE, max_size=60), limit=st.integers(min_value=1, max_value=40))
def test_fold_from_the_start_alone_is_fold_of_the_whole(pieces, limit):
    """A long text is folded from its start alone when that gives enough characters: the same
    result as folding all of it."""
    from tableshift.scan.shared import fold

    code = "".join(word + space for word, space in pieces)  # runs of white space: folded far shorter
    assert fold(code, limit) == _fold_whole(code, limit)


_TEXT_PIECE = st.sampled_from(["a", "bc", " ", "\n", "\r\n", "\r", "é", "語", "\t"])


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(_TEXT_PIECE, max_size=120),
    bom=st.booleans(),
    picks=st.lists(st.floats(min_value=0, max_value=1), max_size=40),
    table_at=st.integers(min_value=-1, max_value=40),
)
def test_positions_in_any_order_are_the_positions_looked_up(pieces, bom, picks, table_at):
    """A position on the line of the last one is counted on from it (a minified line stays
    linear), and its line found by counting the newlines from the last one until the line table
    is made (`table_at`): the same lines and columns as looked up afresh, in any order, a byte
    order mark included, and the same line texts."""
    from itertools import accumulate

    from tableshift.scan import source

    head = source.BOM if bom else b""
    data = head + "".join(pieces).encode() + b"\xff"  # an undecodable byte is one character
    # offsets between characters, as tree-sitter's are (and inside the byte order mark)
    offsets = [0, 1, *accumulate((len(p.encode()) for p in pieces), initial=len(head)), len(data)]
    text = source.SourceText(data)
    for index, pick in enumerate(picks):
        if index == table_at:
            assert text.line_starts  # made now (a suppression comment, an incremental parse): used from here on
        offset = offsets[int(pick * (len(offsets) - 1))]
        line, column, line_text = _looked_up(data, offset)
        position = text.position(offset)
        assert (position.line, position.column) == (line, column)
        assert text.line_text(line) == line_text


def _looked_up(data: bytes, offset: int) -> tuple[int, int, str]:
    """Line, column and line text of a byte offset, from every line's start."""
    from bisect import bisect_right

    from tableshift.scan.source import BOM

    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A]
    row = bisect_right(starts, offset) - 1
    prefix = data[starts[row] : offset]
    end = starts[row + 1] if row + 1 < len(starts) else len(data)
    line = data[starts[row] : end].rstrip(b"\r\n")
    if row == 0:
        prefix, line = prefix.removeprefix(BOM), line.removeprefix(BOM)
    return row + 1, len(prefix.decode("utf-8", "replace")) + 1, line.decode("utf-8", "replace")
