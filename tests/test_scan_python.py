"""The Python scanner (LibCST) on small inline sources."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tableshift.model import Confidence, Kind, Operation, TableSource
from tableshift.scan import scan_source


def calls(source: str | bytes):
    data = source.encode() if isinstance(source, str) else source
    result = scan_source(data, path="x.py", language="python")
    assert result.error is None, result.error
    return list(result.calls)


def only(source: str | bytes):
    found = calls(source)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    "noise",
    [
        "t = Table('x')\nconsole.print(t)",
        "docs.table('summary')",
        "q = Query.from_('customers').select('id')",
        "stmt = select(users.c.id).select_from(users)",
        "s = 'abc'.translate(tbl)",
        "report.table(rows, headers)",
    ],
)
def test_noise_is_not_a_call(noise):
    assert calls(noise) == []


@pytest.mark.parametrize(
    "receiver", ["supabase", "self.db", "get_client()", "db.client", "self.client", "admin", "sb"]
)
def test_receivers(receiver):
    call = only(f"def f():\n    return {receiver}.table('posts').select('*').execute()\n")
    assert call.table.name == "posts" and call.operation is Operation.SELECT and call.confidence is Confidence.HIGH


def test_async_from_and_schema():
    src = "async def f(c):\n    await c.schema('analytics').from_('events').insert({'kind': 'x'}).execute()\n"
    call = only(src)
    assert (call.schema, call.table.name, call.operation) == ("analytics", "events", Operation.INSERT)
    assert [c.name for c in call.columns.write] == ["kind"]


def test_dotted_table_is_schema_and_table():
    src = 'supabase.table("basejump.account_user").select("*").execute()'
    call = only(src)
    assert (call.schema, call.table.name) == ("basejump", "account_user")
    assert src.encode()[call.table.span.start : call.table.span.end] == b"account_user"


@pytest.mark.parametrize(
    ("arg", "name"),
    [("'posts'", "posts"), ('"posts"', "posts"), ("'''posts'''", "posts"), ("r'posts'", "posts"), ("f'posts'", "posts"), ("u'posts'", "posts")],
)
def test_literal_spellings(arg, name):
    src = f"supabase.table({arg}).select('*').execute()"
    call = only(src)
    assert call.table.name == name and call.table.source is TableSource.LITERAL
    assert src.encode()[call.table.span.start : call.table.span.end] == b"posts"


def test_module_constant_class_attribute_and_env_override():
    src = '''
import os
TABLE = "outcomes"
LOG = os.environ.get("LOG_TABLE", "api_usage_log")
OTHER = os.getenv("X") or "fallback_table"

class Repo:
    TABLE = "content_metadata"
    def a(self):
        return self.db.table(self.TABLE).select("*").execute()

def f(supabase):
    supabase.table(TABLE).select("*").execute()
    supabase.table(LOG).insert({"a": 1}).execute()
    supabase.table(OTHER).select("*").execute()
'''
    a, b, c, d = calls(src)
    assert (a.table.name, a.table.source) == ("content_metadata", TableSource.CONSTANT)
    assert (b.table.name, b.table.source) == ("outcomes", TableSource.CONSTANT)
    assert c.table.candidates == ("api_usage_log",) and "environment override" in c.table.reasons[0]
    assert d.table.candidates == ("fallback_table",)


def test_class_attribute_overridden_in_subclasses_is_dynamic():
    src = '''
class Base:
    table_name = "posts"
    def all(self):
        return self.client.table(self.table_name).select("*").execute()

class Tweets(Base):
    table_name = "tweets"
'''
    call = only(src)
    assert call.table.name is None and call.table.candidates == ("posts", "tweets")


def test_parameter_with_default_and_call_sites():
    src = '''
def count(client, table="tweet_metrics"):
    return client.table(table).select("*", count="exact").execute()

count(sb, "posts")
count(sb, table="outcomes")
'''
    call = only(src)
    assert call.table.candidates == ("tweet_metrics", "posts", "outcomes")
    assert call.table.reasons == ("parameter `table` of `count`",)


def test_method_parameter_call_sites_skip_self():
    src = '''
class Repo:
    def count(self, table):
        return self.client.table(table).select("*").execute()
    def run(self):
        self.count("posts")
'''
    assert only(src).table.candidates == ("posts",)


def test_storage_and_rpc():
    src = "supabase.storage.from_('avatars').upload('p', data)\nsupabase.rpc('get_stats', {'a': 1}).execute()\n"
    storage, rpc = calls(src)
    assert (storage.kind, storage.name, storage.start.line) == (Kind.STORAGE, "avatars", 1)
    assert (rpc.kind, rpc.name) == (Kind.RPC, "get_stats")


def test_python_column_positions():
    src = '''supabase.table("outcomes").upsert(
    [{"tweet_id": "1", "likes_count": 2, **extra}, {"tweet_id": "2", key: 1}], on_conflict="tweet_id,collected_pass"
).select("id", "likes_count").eq("likes_count", 1).not_.is_("tweet_id", "null").order("collected_at", desc=True).or_("a.eq.1,b.is.null").match({"status": "x"}).execute()
'''
    call = only(src)
    cols = call.columns
    assert [c.name for c in cols.write] == ["tweet_id", "likes_count", "tweet_id"]
    assert [c.name for c in cols.on_conflict] == ["tweet_id", "collected_pass"]
    assert [c.name for c in cols.select] == ["id", "likes_count"]
    assert [(c.name, c.op) for c in cols.filter] == [
        ("likes_count", "eq"),
        ("tweet_id", "is_"),
        ("collected_at", "order"),
        ("a", "or"),
        ("b", "or"),
        ("status", "match"),
    ]
    assert sorted(o.reason for o in cols.opaque) == ["upsert has a computed key: `key`", "upsert unpacks `**extra`"]
    data = src.encode()
    for column in (*cols.write, *cols.on_conflict, *cols.select, *cols.filter):
        assert data[column.span.start : column.span.end].decode() == column.name


def test_bom_crlf_and_declared_latin1():
    bom = "\ufeff# é\r\nsupabase.table('posts').select('id').execute()\r\n".encode()
    call = only(bom)
    assert (call.start.line, call.start.column) == (2, 10)
    assert bom[call.table.span.start : call.table.span.end] == b"posts"
    latin = "# -*- coding: latin-1 -*-\n# café\nsupabase.table('posts').select('id').execute()\n".encode("latin-1")
    call = only(latin)
    assert latin[call.table.span.start : call.table.span.end] == b"posts"


def test_syntax_error_file_is_still_scanned_and_every_call_flagged():
    result = scan_source(b"def f(:\n    supabase.table('posts').select('*')\n", path="x.py", language="python")
    assert result.parse_error and result.error is None
    (call,) = result.calls
    assert (call.table.name, call.operation, call.in_error_region) == ("posts", Operation.SELECT, True)


def test_suppression_comment():
    call = only("supabase.table('tweets').select('*').execute()  # tableshift-ignore: parity script\n")
    assert call.suppression == "parity script"


def test_builder_continued_in_a_variable_collects_its_filters():
    src = '''
def list_queue(client, status=None, topic=None):
    query = client.table("content_metadata").select("decision_id, topic_cluster")
    if status:
        query = query.eq("status", status)
    if topic:
        query = query.ilike("topic_cluster", topic)
    query = client.table("other").select("*")
    query = query.eq("after_reset", 1)
    return query.order("scheduled_at").execute().data
'''
    first, second = calls(src)
    assert [c.name for c in first.columns.filter] == ["status", "topic_cluster"]
    assert [c.name for c in second.columns.filter] == ["after_reset", "scheduled_at"]


def test_builder_passed_on_is_noted():
    src = "def f(client):\n    q = client.table('posts').select('*')\n    return paginate(q)\n"
    assert any("is passed on" in note for note in only(src).notes)


def test_schema_from_a_constant_and_from_an_unknown():
    known = only("S = 'analytics'\nsupabase.schema(S).table('events').select('*').execute()\n")
    assert known.schema == "analytics" and known.table.name == "events"
    unknown = only("import os\nsupabase.schema(os.environ['S']).table('tweets').select('*').execute()\n")
    assert unknown.table.name is None and unknown.table.candidates == ("tweets",)


@pytest.mark.parametrize(
    "noise",
    [
        "db = TinyDB('x.json')\ntweets = db.table('tweets')\n",
        "spark.table('posts').select('id').filter('id > 1').collect()\n",
    ],
)
def test_other_table_apis_are_noise(noise):
    assert calls(noise) == []


def test_upper_case_client_with_execute_counts():
    assert only("SUPABASE.table('tweets').select('id').execute()\n").table.name == "tweets"


def test_class_attribute_is_resolved_per_class():
    src = '''
class C:
    table_name = "tweets"
    def get(self):
        return self.client.table(self.table_name).select("*").execute()

class D:
    table_name = "outcomes"
    def get(self):
        return self.client.table(self.table_name).select("*").execute()
'''
    first, second = calls(src)
    assert (first.table.name, second.table.name) == ("tweets", "outcomes")


def test_local_variable_shadows_module_constant():
    src = 'TW = "tweets"\ndef f(sb):\n    TW = "posted_content"\n    return sb.table(TW).select("*").execute()\n'
    call = only(src)
    assert call.table.name is None and call.table.candidates == ("posted_content",)


def test_executed_response_in_a_variable_is_not_a_builder():
    call = only("def f(supabase):\n    res = supabase.table('tweets').select('id').execute()\n    return res\n")
    assert call.notes == ()


def test_call_site_constants_are_candidates_of_a_helper():
    src = '''
INVOICE_TABLE = "receipts"

class Jobs:
    TABLE = "job_runs"
    def run(self, client):
        return count_rows(client, self.TABLE)

def count_rows(client, table):
    return client.table(table).select("id", count="exact").execute()

count_rows(supabase, INVOICE_TABLE)
count_rows(supabase, table="posts")
'''
    call = only(src)
    assert call.table.candidates == ("job_runs", "receipts", "posts")
    assert call.table.reasons == ("parameter `table` of `count_rows`",)


def test_a_helper_that_calls_itself_with_its_parameter_terminates():
    src = '''
def walk(client, table, depth=0):
    if depth:
        return walk(client, table, depth - 1)
    return client.table(table).select("*").execute()

def other(client, table):
    return walk(client, table)

walk(supabase, "posts")
'''
    call = only(src)
    assert call.table.candidates == ("posts",) and call.table.name is None


# -- files LibCST cannot parse: tree-sitter reads them, every call goes to review ---------------

SAME_AS_LIBCST = [
    "x = (supabase.table('posts')\n    .select('id, author:users(name)')\n    .eq('status', 1)\n    .order('created_at', desc=True)\n    .execute())\n",
    "supabase.table('t').upsert([{'a': 1, **extra}, {key: 2}], on_conflict='a,b').execute()  # tableshift-ignore: ok\n",
    "async def f(c):\n    await c.schema('analytics').from_('events').insert({'kind': 'x'}).execute()\n",
    "supabase.table('basejump.account_user').select('*').not_.is_('x', 'null').or_('a.eq.1,b.is.null').execute()\n",
    "supabase.storage.from_('avatars').upload('p', data)\nsupabase.rpc('get_stats', {'a': 1}).execute()\n",
    "supabase.table('a\\\\nb').select(cols).match({'s': 1}).execute()\nsb.table(f'x{{y}}').delete().eq('id', 1).execute()\n",
    "\ufeff# é\r\nsupabase.table('posts').select('id').execute()\r\n",
]


@pytest.mark.parametrize("source", SAME_AS_LIBCST)
def test_fallback_reads_a_call_as_libcst_does(source):
    from tableshift.scan import python, python_fallback

    data = source.encode()
    expected, broken = python.scan(data, path="x.py")
    found = python_fallback.scan(data, path="x.py")
    assert not broken and len(found) == len(expected) > 0
    for ours, theirs in zip(found, expected):
        assert ours.in_error_region
        assert replace(ours, in_error_region=False) == theirs


def test_undecodable_file_is_scanned_by_the_fallback():
    result = scan_source(b"# caf\xe9\nsupabase.table('posts').select('id').execute()\n", path="x.py", language="python")
    assert result.error is None and result.parse_error
    (call,) = result.calls
    assert (call.table.name, call.start.line, call.in_error_region) == ("posts", 2, True)


def test_broken_file_keeps_the_evidence_rules():
    src = '''
def broken(:
    pass
class Repo:
    def a(self):
        return self.db.table("outcomes").select("id").eq("a", 1).execute()
docs.table("summary")
db = TinyDB("x.json")
tweets = db.table("tweets")
q = Query.from_("customers").select("id")
supabase.storage.from_(BUCKET).upload("p", data)
supabase.rpc("get_stats").execute()
supabase.table(TABLE).select("*").execute()
supabase.schema(S).table("events").select("*").execute()
'''
    result = scan_source(src.encode(), path="x.py", language="python")
    assert result.parse_error and all(c.in_error_region for c in result.calls)
    outcomes, storage, rpc, dynamic, events = result.calls
    assert (outcomes.table.name, outcomes.operation, outcomes.confidence) == ("outcomes", Operation.SELECT, Confidence.HIGH)
    assert [c.name for c in outcomes.columns.filter] == ["a"]
    assert (storage.kind, storage.name, storage.notes) == (Kind.STORAGE, None, ("bucket: `BUCKET` is not resolved: the file does not parse",))
    assert (rpc.kind, rpc.name) == (Kind.RPC, "get_stats")
    assert dynamic.table.name is None and dynamic.table.reasons == ("`TABLE` is not resolved: the file does not parse",)
    assert events.table.candidates == ("events",) and events.schema is None


def test_error_count_grows_as_a_file_breaks_further():
    from tableshift.scan import error_count

    good = b"supabase.table('posts').select('id').execute()\n"
    once = b"def f(:\n    pass\n" + good
    twice = once + b"x = = 1\n"
    assert error_count(good, "python") == 0
    assert 0 < error_count(once, "python") < error_count(twice, "python")


@pytest.mark.parametrize(
    ("source", "beyond"),
    [
        ("x = " + "(" * 100 + "1" + ")" * 100 + "\n", False),
        ("x = " + "(" * 200 + "1" + ")" * 200 + "\n", True),
        # brackets in strings and comments do not nest
        ("x = '" + "(" * 5000 + "'  # " + "[" * 5000 + "\n", False),
        ('x = """\n' + "{" * 5000 + '\n"""\n', False),
        # but those of an f-string's placeholder do, even behind quotes it reuses (PEP 701)
        ('x = f"{ "a" + ' + "(" * 200 + "1" + ")" * 200 + ' }"\n', True),
        ("x = f'{x:>{w}}' + f'\\N{DASH}{{' + " + "(" * 200 + "1" + ")" * 200 + "\n", True),
        ("x = (a\n" + "  .b()\n" * 300 + ")\n", True),
        ("x = " + "-" * 600 + "1\n", True),
        ("x = 1" + "or 1" * 600 + "\n", True),  # `1or 1` is `1 or 1`
        ("if a:\n    pass\n" + "elif a:\n    pass\n" * 1200, True),
        # a long implicit concatenation is cheap for LibCST, a much longer one is not
        ("PROMPT = (\n" + "    'line'\n" * 3000 + ")\n", False),
        ("PROMPT = (\n" + "    'line'\n" * 5000 + ")\n", True),
        # a data table is long, not deep: each item starts afresh after its comma
        ("ROWS = [\n" + "    (-1, 'a', f(x).y),\n" * 20000 + "]\n", False),
        # LibCST's tokenizer would fail: no need to try it
        ("x = 'unterminated\n", True),
        ("x = (1]\n", True),
    ],
)
def test_what_is_kept_away_from_libcst(source, beyond):
    from tableshift.scan.python_fallback import beyond_libcst

    assert beyond_libcst(source.encode()) is beyond


def test_many_deep_statements_exhaust_libcsts_time_budget():
    from tableshift.scan.python_fallback import MAX_COST, MAX_DEPTH, beyond_libcst, nesting

    statement = "x = (a\n" + "  .b()\n" * 180 + ")\n"
    one = nesting(statement.encode())
    assert MAX_DEPTH / 2 < one.depth <= MAX_DEPTH and not beyond_libcst(statement.encode())
    assert beyond_libcst((statement * (MAX_COST // one.cost + 1)).encode())


def test_realtime_subscriptions_are_found():
    src = (
        b"def sub(client, cb):\n"
        b"    client.channel('x').on_postgres_changes('*', schema='public', table='receipts', callback=cb).subscribe()\n"
        b"    client.channel('y').on_postgres_changes(event='INSERT', table='tweets', filter='id=eq.1', callback=cb)\n"
    )
    calls = scan_source(src, path="x.py", language="python").calls
    assert [(c.kind.value, c.table.name, c.event, c.start.line) for c in calls] == [
        ("realtime", "receipts", "*", 2),
        ("realtime", "tweets", "INSERT", 3),
    ]
    assert [f.name for f in calls[1].columns.filter] == ["id"]
