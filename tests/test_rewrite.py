"""Rewrite plans on inline sources: each feature has a fix test and a noop test beside it."""

from __future__ import annotations

import pytest

from tableshift.classify import classify
from tableshift.patch import apply_edits
from tableshift.rewrite import Fate, Fix, plan
from tableshift.rules import parse_rules
from tableshift.scan import error_count, scan_source

RULES_TOML = b"""
version = 1
schema = "schema.sql"

[[table]]
legacy = "content_metadata"
target = "content_queue"
group = "queue"
drop = ["actual_likes"]
[table.renames]
topic_cluster = "raw_topic"

[[table]]
legacy = "outcomes"
target = "engagement_metrics"
group = "metrics"
[table.renames]
likes_count = "likes"

[[table]]
legacy = "tweets"
target = "posted_content"
group = "posted"
[table.where]
kind = "tweet"
[table.set]
kind = "tweet"
"""

SCHEMA = """
CREATE TABLE content_queue (id bigserial primary key, decision_id uuid unique, content text, raw_topic text,
  status text, created_at timestamptz, metadata jsonb);
CREATE TABLE posted_content (id bigserial primary key, decision_id uuid unique references content_queue(decision_id),
  tweet_id text, content text, kind text, posted_at timestamptz);
CREATE TABLE engagement_metrics (id bigserial primary key, decision_id uuid references posted_content(decision_id),
  tweet_id text not null, likes int, engagement_rate numeric, collected_at timestamptz);
CREATE TABLE profiles (id uuid primary key, name text);
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    base = tmp_path_factory.mktemp("rules")
    (base / "schema.sql").write_text(SCHEMA)
    return parse_rules(RULES_TOML, "rules.toml", base=base)


def plans(source: str, rules, language: str = "typescript"):
    data = source.encode()
    result = scan_source(data, path="x.ts", language=language)
    return data, [plan(classify(c, rules), rules, data) for c in result.calls]


def rewrite(source: str, rules, language: str = "typescript") -> str:
    data, found = plans(source, rules, language)
    assert all(p.fix is Fix.AUTO for p in found if p.fix is not Fix.OK), [p.reasons for p in found]
    new = apply_edits(data, [e for p in found for e in p.edits])
    assert error_count(new, language) <= error_count(data, language)
    return new.decode()


def review_reasons(source: str, rules) -> list[str]:
    _, found = plans(source, rules)
    [p] = [p for p in found if p.fix is not Fix.OK]
    assert p.fix is Fix.REVIEW and p.edits == ()
    return list(p.reasons)


def test_table_literal_keeps_quotes_and_casts(rules):
    assert rewrite("""supabase.from("content_metadata" as any).select('id');""", rules) == (
        """supabase.from("content_queue" as any).select('id');"""
    )
    assert rewrite("supabase.from(`content_metadata`).delete().eq('id', 1);", rules) == (
        "supabase.from(`content_queue`).delete().eq('id', 1);"
    )


def test_non_legacy_call_is_left_alone(rules):
    src = "supabase.from('content_queue').select('raw_topic').eq('status', 'queued');"
    assert rewrite(src, rules) == src


def test_renamed_select_column_keeps_row_shape(rules):
    assert rewrite("supabase.from('content_metadata').select('id, topic_cluster, t:topic_cluster, topic_cluster::text');", rules) == (
        "supabase.from('content_queue').select('id, topic_cluster:raw_topic, t:raw_topic, topic_cluster:raw_topic::text');"
    )


def test_renamed_column_in_every_position(rules):
    src = (
        "await supabase.from('outcomes')"
        ".upsert({ likes_count, 'decision_id': d, tweet_id: t }, { onConflict: 'tweet_id,likes_count' })"
        ".eq('likes_count', 1).order('likes_count').or('likes_count.gt.5,tweet_id.is.null').match({ likes_count: 2 })"
        ".not('likes_count', 'is', null).filter('likes_count', 'in', '(1,2)');"
    )
    assert rewrite(src, rules) == (
        "await supabase.from('engagement_metrics')"
        ".upsert({ likes: likes_count, 'decision_id': d, tweet_id: t }, { onConflict: 'tweet_id,likes' })"
        ".eq('likes', 1).order('likes').or('likes.gt.5,tweet_id.is.null').match({ likes: 2 })"
        ".not('likes', 'is', null).filter('likes', 'in', '(1,2)');"
    )


def test_embedded_legacy_table_keeps_row_shape_and_alias(rules):
    src = "supabase.from('posted_content').select('decision_id, outcomes(likes_count), m:outcomes!inner(engagement_rate)');"
    assert rewrite(src, rules) == (
        "supabase.from('posted_content').select("
        "'decision_id, outcomes:engagement_metrics(likes_count:likes), m:engagement_metrics!inner(engagement_rate)');"
    )


def test_embed_without_foreign_key_in_target_is_review(rules):
    reasons = review_reasons("supabase.from('profiles').select('name, outcomes(likes_count)');", rules)
    assert "no foreign key between 'profiles' and 'engagement_metrics' in the target schema: the embed would fail" in reasons


def test_embed_with_constraint_hint_is_review(rules):
    reasons = review_reasons("supabase.from('posted_content').select('outcomes!outcomes_decision_fkey(likes_count)');", rules)
    assert reasons == ["embed 'outcomes' names a foreign key of a legacy table: !outcomes_decision_fkey"]


def test_where_is_appended_to_reads_updates_deletes(rules):
    assert rewrite("supabase.from('tweets').select('tweet_id').limit(5);", rules) == (
        "supabase.from('posted_content').select('tweet_id').eq('kind', 'tweet').limit(5);"
    )
    # a line the rewrite takes past 80 columns is laid out as Prettier lays it out
    assert rewrite("supabase.from('tweets').update({ content: c }).eq('tweet_id', t);", rules) == (
        "supabase\n  .from('posted_content')\n  .update({ content: c })\n  .eq('kind', 'tweet')\n  .eq('tweet_id', t);"
    )


def test_a_call_that_names_the_where_column_itself_is_review(rules):
    for source in (
        "supabase.from('tweets').select('tweet_id').eq('kind', 'x');",
        "supabase.from('tweets').select('tweet_id').match({ kind: 'x' });",
        "supabase.from('tweets').update({ kind: 'reply' }).eq('tweet_id', t);",
    ):
        assert review_reasons(source, rules) == [
            "the call filters on or writes 'kind' itself, which the rules' where sets for 'posted_content': merge them by hand"
        ]


def test_set_is_added_to_insert_payloads(rules):
    assert rewrite("supabase.from('tweets').insert([{ tweet_id: t }, {}]);", rules) == (
        "supabase\n  .from('posted_content')\n  .insert([{ kind: 'tweet', tweet_id: t }, { kind: 'tweet' }]);"
    )


def test_set_clashing_with_payload_is_review(rules):
    reasons = review_reasons("supabase.from('tweets').insert({ kind: 'reply' });", rules)
    assert reasons == ["payload already sets 'kind', which the rules set too"]


def test_realtime_on_a_merged_table_gets_the_where_as_its_filter(rules):
    source = "ch.on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'tweets' }, cb);"
    assert rewrite(source, rules) == (
        "ch.on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'posted_content', filter: 'kind=eq.tweet' }, cb);"
    )


def test_realtime_on_a_table_without_where_gets_no_filter(rules):
    source = "ch.on('postgres_changes', { event: '*', table: 'outcomes' }, cb);"  # every event: no where, no filter needed
    assert rewrite(source, rules) == "ch.on('postgres_changes', { event: '*', table: 'engagement_metrics' }, cb);"


@pytest.mark.parametrize(
    "options",
    ["{ event: 'UPDATE', table: 'tweets', filter: 'tweet_id=eq.1' }", "{ event: 'UPDATE', table: 'tweets', filter }", "{ event: 'UPDATE', table: 'tweets', filter: f }"],
)
def test_realtime_with_a_filter_of_its_own_is_review(rules, options):
    reasons = review_reasons(f"ch.on('postgres_changes', {options}, cb);", rules)
    assert "subscription has a filter already, and realtime takes one: add the rules' where by hand" in reasons


def test_an_embedded_merged_table_is_filtered_to_its_own_rows(rules):
    source = "supabase.from('content_queue').select('id, tweets(tweet_id)').limit(3);"
    assert rewrite(source, rules) == (
        "supabase\n  .from('content_queue')\n  .select('id, tweets:posted_content(tweet_id)')\n  .eq('tweets.kind', 'tweet')\n  .limit(3);"
    )


def test_an_aliased_embed_is_filtered_through_its_alias(rules):
    source = "supabase.from('content_queue').select('id, posted:tweets(tweet_id)');"
    assert rewrite(source, rules) == (
        "supabase\n  .from('content_queue')\n  .select('id, posted:posted_content(tweet_id)')\n  .eq('posted.kind', 'tweet');"
    )


def test_an_embed_filtered_on_the_where_column_already_is_review(rules):
    source = "supabase.from('content_queue').select('id, tweets(tweet_id)').eq('tweets.kind', 'other');"
    assert "the call filters embed 'tweets' on 'kind' itself, which the rules' where sets: merge them by hand" in review_reasons(source, rules)


def test_two_embeds_of_one_merged_table_get_one_insertion_each(rules):
    source = "supabase.from('content_queue').select('id, tweets(tweet_id), t2:tweets(tweet_id)');"
    assert rewrite(source, rules) == (
        "supabase.from('content_queue').select('id, tweets:posted_content(tweet_id), t2:posted_content(tweet_id)')"
        ".eq('tweets.kind', 'tweet').eq('t2.kind', 'tweet');"
    )


@pytest.mark.parametrize("event", ["DELETE", "*"])
def test_realtime_delete_events_cannot_be_filtered_so_they_are_review(rules, event):
    reasons = review_reasons(f"ch.on('postgres_changes', {{ event: '{event}', table: 'tweets' }}, cb);", rules)
    assert any("realtime cannot filter DELETE events" in r for r in reasons)


def test_realtime_options_with_a_spread_are_review(rules):
    reasons = review_reasons("ch.on('postgres_changes', { ...base, event: 'INSERT', table: 'tweets' }, cb);", rules)
    assert "subscription has a filter already, and realtime takes one: add the rules' where by hand" in reasons


def test_an_embedded_merged_table_in_a_write_is_review(rules):
    reasons = review_reasons("supabase.from('content_queue').insert({ content: c }).select('id, tweets(tweet_id)');", rules)
    assert "embed 'tweets' reads merged table 'posted_content': its where filter cannot be placed on this call" in reasons


def test_an_insert_into_a_merged_table_must_set_what_reads_filter_on(tmp_path):
    (tmp_path / "schema.sql").write_text(SCHEMA)
    body = b"schema = 'schema.sql'\n[[table]]\nlegacy = 'tweets'\ntarget = 'posted_content'\n[table.where]\nkind = 'tweet'\n"
    # `set` defaults to `where`: the new row gets the value reads filter on
    only_where = parse_rules(body, "r.toml", base=tmp_path)
    assert rewrite("supabase.from('tweets').insert({ tweet_id: t });", only_where) == (
        "supabase.from('posted_content').insert({ kind: 'tweet', tweet_id: t });"
    )
    # `set = {}` says there is nothing to set: then the insert must, or a person decides
    nothing_set = parse_rules(body + b"[table.set]\n", "r.toml", base=tmp_path)
    _, found = plans("supabase.from('tweets').insert({ tweet_id: t });", nothing_set)
    [p] = [p for p in found if p.fix is not Fix.OK]
    assert p.fix is Fix.REVIEW
    assert any("does not set 'kind', which the rules' where filters on" in r for r in p.reasons)
    _, found = plans("supabase.from('tweets').insert({ tweet_id: t, kind: k });", nothing_set)
    assert [p.fix for p in found] == [Fix.AUTO]


def test_where_on_a_continued_chain_is_review(rules):
    reasons = review_reasons("let q = supabase.from('tweets'); q = q.select('*');", rules)
    assert any("where filter cannot be placed" in r for r in reasons)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("supabase.from('content_metadata').select('actual_likes');", "column 'actual_likes' of 'content_metadata' is dropped"),
        ("supabase.from('content_metadata').select('nope');", "column 'nope' is not in target 'content_queue'"),
        ("supabase.from('content_metadata').insert(row);", "insert payload is a variable: `row`"),
        ("supabase.from('content_metadata').update({ ...row });", "update spreads `...row`"),
        ("supabase.from('content_metadata').select('a, b(');", "select string does not parse"),
        ("supabase.from('content_metadata').or('status.eq');", "or() string does not parse"),
        ("export const T = 'content_metadata';\nsupabase.from(T).select('id');", "table name comes from a constant"),
        ("supabase.from('outcomes').insert({ likes_count: 1 });", "insert omits NOT NULL column(s) of 'engagement_metrics' without a default: tweet_id"),
        ("supabase.from('content_metadata').select('id');\nfunction broken( {\nsupabase.from('content_metadata').select('id');", None),
    ],
)
def test_what_needs_a_person(rules, source, reason):
    _, found = plans(source, rules)
    review = [p for p in found if p.fix is Fix.REVIEW]
    assert review, [p.fix for p in found]
    if reason is None:
        assert "call sits in a region with syntax errors" in review[-1].reasons
    else:
        assert any(reason in r for r in review[0].reasons), review[0].reasons


def test_column_fates(rules):
    _, [p] = plans("supabase.from('content_metadata').select('id, topic_cluster, actual_likes, nope');", rules)
    fates = {(f.column, f.fate, f.new) for f in p.fates}
    assert fates == {
        ("id", Fate.KEPT, None),
        ("topic_cluster", Fate.RENAMED, "raw_topic"),
        ("actual_likes", Fate.DROPPED, None),
        ("nope", Fate.MISSING, None),
    }


def test_dynamic_call_is_never_rewritten(rules):
    _, [p] = plans("function f(t) { return supabase.from(t).select('*'); }\nf('tweets');", rules)
    assert p.fix is Fix.DYNAMIC and p.edits == ()


def test_rewriting_twice_changes_nothing(rules):
    once = rewrite("supabase.from('content_metadata').select('topic_cluster').eq('topic_cluster', x);", rules)
    assert rewrite(once, rules) == once


def test_constraint_hint_under_a_moved_table_is_review(rules):
    reasons = review_reasons("supabase.from('tweets').select('id, writer:profiles!tweets_author_fkey(name)');", rules)
    assert "embed 'profiles' names a foreign key of a legacy table: !tweets_author_fkey" in reasons


def test_constraint_hint_under_an_unmoved_table_is_fine(rules):
    src = "supabase.from('posted_content').select('id, writer:profiles!posted_author_fkey(name)');"
    assert rewrite(src, rules) == src


def test_filter_on_a_legacy_embed_is_renamed_by_its_rules(rules):
    src = "supabase.from('posted_content').select('decision_id, outcomes(likes_count)').or('likes_count.gt.5', { referencedTable: 'outcomes' }).order('likes_count', { referencedTable: 'outcomes' });"
    assert rewrite(src, rules) == (
        "supabase.from('posted_content').select('decision_id, outcomes:engagement_metrics(likes_count:likes)')"
        ".or('likes.gt.5', { referencedTable: 'outcomes' }).order('likes', { referencedTable: 'outcomes' });"
    )


def test_python_rewrite_renames_table_keys_and_select(rules):
    src = (
        'supabase.table("content_metadata").insert({"decision_id": d, "topic_cluster": t}).execute()\n'
        "supabase.table('content_metadata').select('topic_cluster').eq('topic_cluster', x).execute()\n"
    )
    assert rewrite(src, rules, "python") == (
        'supabase.table("content_queue").insert({"decision_id": d, "raw_topic": t}).execute()\n'
        "supabase.table('content_queue').select('topic_cluster:raw_topic').eq('raw_topic', x).execute()\n"
    )


def test_python_where_and_set_use_python_syntax(rules):
    src = 'client.table("tweets").insert({"tweet_id": t}).execute()\nclient.table("tweets").select("*").execute()\n'
    assert rewrite(src, rules, "python") == (
        'client.table("posted_content").insert({"kind": "tweet", "tweet_id": t}).execute()\n'
        'client.table("posted_content").select("*").eq("kind", "tweet").execute()\n'
    )


def test_python_noop(rules):
    src = 'client.table("content_queue").select("raw_topic").execute()\n'
    assert rewrite(src, rules, "python") == src


def _settled(source: str, rules):
    from tableshift.rewrite import settle_shared

    data, found = plans(source, rules)
    return data, settle_shared(tuple(found))


def test_a_private_constant_used_only_by_rewritable_calls_is_rewritten(rules):
    src = "const T = 'outcomes';\nexport const a = () => supabase.from(T).select('likes_count');\nexport const b = () => supabase.from(T).delete().eq('tweet_id', 1);\n"
    data, found = _settled(src, rules)
    assert [p.fix for p in found] == [Fix.AUTO, Fix.AUTO]
    new = apply_edits(data, [e for p in found for e in p.edits]).decode()
    assert new == (
        "const T = 'engagement_metrics';\nexport const a = () => supabase.from(T).select('likes_count:likes');\n"
        "export const b = () => supabase.from(T).delete().eq('tweet_id', 1);\n"
    )


@pytest.mark.parametrize(
    "extra",
    [
        "export { T };\n",  # exported: other files may use it
        "console.log(T);\n",  # used for something else too
        "export const c = () => supabase.from(T).insert(row);\n",  # a sibling that needs review
    ],
)
def test_a_constant_with_other_uses_is_review(rules, extra):
    src = "const T = 'outcomes';\nexport const a = () => supabase.from(T).select('likes_count');\n" + extra
    _, found = _settled(src, rules)
    assert all(p.fix is Fix.REVIEW and p.edits == () for p in found if p.verdict.status.value == "legacy")


def test_python_realtime_is_renamed_and_a_where_is_left_to_a_person(rules):
    source = "def sub(ch, cb):\n    ch.on_postgres_changes('INSERT', table='outcomes', callback=cb)\n"
    assert rewrite(source, rules, "python") == "def sub(ch, cb):\n    ch.on_postgres_changes('INSERT', table='engagement_metrics', callback=cb)\n"
    data, found = plans("def sub(ch, cb):\n    ch.on_postgres_changes('INSERT', table='tweets', callback=cb)\n", rules, "python")
    [p] = [p for p in found if p.fix is not Fix.OK]
    assert p.fix is Fix.REVIEW and any("needs filter=" in r for r in p.reasons)


# -- PostgREST over plain HTTP ------------------------------------------------


def test_a_rest_url_is_rewritten_path_columns_and_where_as_a_client_call_would_be(rules):
    assert rewrite("fetch(`${URL}/rest/v1/content_metadata?select=decision_id,topic_cluster&status=eq.queued`);", rules) == (
        "fetch(`${URL}/rest/v1/content_queue?select=decision_id,topic_cluster:raw_topic&status=eq.queued`);"
    )
    # a merged table keeps its own rows: the rules' where joins the query
    assert rewrite("fetch(`${URL}/rest/v1/tweets?select=tweet_id&tweet_id=eq.${id}`);", rules) == (
        "fetch(`${URL}/rest/v1/posted_content?select=tweet_id&tweet_id=eq.${id}&kind=eq.tweet`);"
    )
    assert rewrite("fetch(URL + '/rest/v1/tweets', { method: 'DELETE' });", rules) == "fetch(URL + '/rest/v1/posted_content?kind=eq.tweet', { method: 'DELETE' });"
    assert rewrite("fetch(`${URL}/rest/v1/outcomes?select=*`);", rules) == (
        "fetch(`${URL}/rest/v1/engagement_metrics?select=*,likes_count:likes`);"  # no space: it is a URL
    )


def test_a_rest_url_the_patch_cannot_finish_goes_to_review_with_why(rules):
    reasons = review_reasons("fetch(`${URL}/rest/v1/tweets?select=tweet_id&${more}`);", rules)
    assert "where filter cannot be placed: the URL ends in an interpolation" in reasons
    reasons = review_reasons("const u = `${URL}/rest/v1/tweets`; send(u); send(u);", rules)
    assert "where filter cannot be placed: the request's method is not visible (the URL is sent elsewhere)" in reasons
    reasons = review_reasons("fetch(`${URL}/rest/v1/outcomes`, { method: 'POST', body });", rules)
    assert "the insert request's body is not read: its keys may name renamed columns" in reasons


def test_generated_types_are_renamed_only_when_the_row_type_means_the_same(rules):
    reasons = review_reasons("type Q = Tables<'content_metadata'>;", rules)
    assert reasons == ["the row type of 'content_metadata' changes (renames topic_cluster -> raw_topic; drops actual_likes): the code using this type must follow"]
    assert "merges it into 'posted_content' with kind" in review_reasons("type T = Database['public']['Tables']['tweets']['Row'];", rules)[0]


def test_a_realtime_callback_holding_dots_is_not_a_filter(rules):
    source = "ch.on('postgres_changes', { event: 'INSERT', table: 'tweets' }, (p) => console.log('new tweet...', p));"
    assert rewrite(source, rules) == (
        "ch.on('postgres_changes', { event: 'INSERT', table: 'posted_content', filter: 'kind=eq.tweet' }, (p) => console.log('new tweet...', p));"
    )


def test_added_links_and_keys_are_laid_out_as_the_chain_and_the_object_are(rules):
    source = (
        "const { data } = await supabase\n"
        "  .from('tweets')\n"
        "  .select('tweet_id')\n"
        "  .limit(5);\n"
        "await supabase.from('tweets').insert({\n"
        "  tweet_id: t,\n"
        "  content: c,\n"
        "});\n"
    )
    assert rewrite(source, rules) == (
        "const { data } = await supabase\n"
        "  .from('posted_content')\n"
        "  .select('tweet_id')\n"
        "  .eq('kind', 'tweet')\n"
        "  .limit(5);\n"
        "await supabase.from('posted_content').insert({\n"
        "  kind: 'tweet',\n"
        "  tweet_id: t,\n"
        "  content: c,\n"
        "});\n"
    )


def test_a_broken_chain_keeps_the_files_line_ends(rules):
    source = "const x = 1;\r\nconst { data } = await supabase.from('tweets').select('tweet_id, content');\r\n"
    assert rewrite(source, rules) == (
        "const x = 1;\r\nconst { data } = await supabase\r\n  .from('posted_content')\r\n  .select('tweet_id, content')\r\n  .eq('kind', 'tweet');\r\n"
    )
