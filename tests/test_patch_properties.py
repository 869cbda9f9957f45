"""Properties of patch over generated sources: nothing auto is left behind, unrelated code never changes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import RULES
from tableshift.classify import classify
from tableshift.patch import apply_edits
from tableshift.rewrite import Fix, plan
from tableshift.rules import load_rules
from tableshift.scan import error_count, scan_source

RULESET = load_rules(RULES)
LEGACY = [r.legacy for r in RULESET.tables]
OTHER = ["profiles", "reply_opportunities", "api_usage_log", "content_queue", "posted_content"]
COLUMNS = ["id", "decision_id", "tweet_id", "content", "status", "topic_cluster", "likes_count", "impressions_count", "created_at"]

receiver = st.sampled_from(["supabase", "this.supabase", "client", "getSupabaseClient()", "(supabase as any)"])
quote = st.sampled_from(["'", '"', "`"])
cols = st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=3, unique=True)


@st.composite
def call(draw, tables):
    table = draw(st.sampled_from(tables))
    q = draw(quote)
    recv = draw(receiver)
    op = draw(st.sampled_from(["select", "insert", "update", "upsert", "delete"]))
    c = draw(cols)
    if op == "select":
        chain = f".select('{', '.join(c)}')"
    elif op == "delete":
        chain = ".delete()"
    else:
        payload = ", ".join(f"{name}: {i}" for i, name in enumerate(c))
        chain = f".{op}({{ {payload} }})"
    filt = draw(st.sampled_from(["", f".eq('{c[0]}', 1)", f".order('{c[0]}', {{ ascending: false }})", ".limit(3)"]))
    sep = draw(st.sampled_from(["", "\n    "]))
    return f"await {recv}{sep}.from({q}{table}{q}){sep}{chain}{filt};"


noise = st.sampled_from(["const a = Array.from(xs);", "const b = Buffer.from(s, 'base64');", "// .from('tweets')", "let n = 1;"])


def program(tables):
    return st.lists(st.one_of(call(tables), noise), min_size=1, max_size=8).map(
        lambda lines: "export async function job() {\n  " + "\n  ".join(lines) + "\n}\n"
    )


def _plans(data: bytes):
    result = scan_source(data, path="x.ts", language="typescript")
    return [plan(classify(c, RULESET), RULESET, data) for c in result.calls]


@settings(max_examples=150, deadline=None)
@given(source=program(LEGACY + OTHER), crlf=st.booleans())
def test_patch_then_audit_leaves_no_auto_call(source, crlf):
    data = source.replace("\n", "\r\n").encode() if crlf else source.encode()
    plans = _plans(data)
    new = apply_edits(data, [e for p in plans if p.fix is Fix.AUTO for e in p.edits])
    assert error_count(new, "typescript") <= error_count(data, "typescript")
    again = _plans(new)
    assert [p for p in again if p.fix is Fix.AUTO] == []
    # review and dynamic calls were left exactly as they were
    assert sum(p.fix is Fix.REVIEW for p in again) == sum(p.fix is Fix.REVIEW for p in plans)
    # line ends stay the file's own: a chain broken over lines (Prettier's layout) adds only such
    if crlf:
        assert new.count(b"\n") == new.count(b"\r\n")
    else:
        assert b"\r" not in new


@settings(max_examples=100, deadline=None)
@given(source=program(OTHER))
def test_unrelated_file_is_never_changed(source):
    data = source.encode()
    plans = _plans(data)
    assert all(p.fix is Fix.OK and p.edits == () for p in plans)
