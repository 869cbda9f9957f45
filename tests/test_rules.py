"""Rules files: the shipped one loads; every kind of mistake is one clear UsageError."""

from __future__ import annotations

from pathlib import Path

import pytest

from tableshift.errors import UsageError
from tableshift.rules import load_rules, parse_rules

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "rules" / "content-consolidation.toml"

MINIMAL = b"""
version = 1
[[table]]
legacy = "tweets"
target = "posted_content"
"""


def test_shipped_rules_map_nine_tables_to_three_targets_plus_reply_tables():
    rules = load_rules(SHIPPED)
    legacy = {r.legacy for r in rules.tables}
    assert {
        "content_metadata",
        "content_generation_metadata_comprehensive",
        "posted_decisions",
        "tweets",
        "posts",
        "outcomes",
        "real_tweet_metrics",
        "tweet_analytics",
        "tweet_metrics",
    } <= legacy
    assert rules.targets == {"content_queue", "posted_content", "engagement_metrics"}
    assert rules.lookup("content_metadata").rename("topic_cluster") == "raw_topic"
    assert rules.lookup("outcomes").rename("likes_count") == "likes"
    assert "actual_likes" in rules.lookup("content_metadata").drop
    assert rules.groups == ("content-queue", "posted-content", "engagement")


def test_lookup_respects_schema():
    rules = parse_rules(MINIMAL, "r.toml")
    assert rules.lookup("tweets") is not None
    assert rules.lookup("tweets", "public") is not None
    assert rules.lookup("tweets", "analytics") is None
    assert rules.lookup("public.tweets") is None  # a dotted name is one table name to PostgREST
    assert rules.lookup("posted_content") is None


def test_group_defaults_to_target():
    assert parse_rules(MINIMAL, "r.toml").tables[0].group == "posted_content"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[[table]]\nlegacy = 'a'\n", "table[1]: missing required key 'target'"),
        (b"[[table]]\nlegacy = 'a'\ntarget = 'b'\ncolour = 'red'\n", "table[1].colour: unknown key"),
        (b"bogus = 1\n[[table]]\nlegacy='a'\ntarget='b'\n", "bogus: unknown key"),
        (
            b"[[table]]\nlegacy='a'\ntarget='b'\n[[table]]\nlegacy='a'\ntarget='c'\n",
            "table[2].legacy: table 'a' is mapped twice (also in table[1])",
        ),
        (b"[[table]]\nlegacy='a'\ntarget='a'\n", "table[1].target: target is the same table as legacy 'a'"),
        (
            b"[[table]]\nlegacy='a'\ntarget='b'\n[table.renames]\nx='z'\ny='z'\n",
            "table[1].renames.y: column 'z' is the new name of 'x' already: renamed twice",
        ),
        (b"[[table]]\nlegacy='a'\ntarget='b'\n[table.renames]\nx='x'\n", "renamed to itself"),
        (b"[[table]]\nlegacy='a'\ntarget='b'\ndrop=['x']\n[table.renames]\nx='y'\n", "both renamed and dropped"),
        (b"[[table]]\nlegacy='a'\ntarget='b'\n[[table]]\nlegacy='b'\ntarget='c'\n", "is itself a legacy table"),
        (b"[[table]]\nlegacy='a b'\ntarget='c'\n", "is not a table name"),
        (b"version = 7\n[[table]]\nlegacy='a'\ntarget='b'\n", "unsupported rules version 7"),
        (b"version = 1\n", "no [[table]] entries"),
        (b"[[table]]\nlegacy = 'a\ntarget='b'\n", "invalid TOML"),
    ],
)
def test_mistakes_are_one_line_errors_naming_file_and_key(body, expected):
    with pytest.raises(UsageError) as info:
        parse_rules(body, "rules/bad.toml")
    message = str(info.value)
    assert message.startswith("rules/bad.toml: ")
    assert expected in message
    assert "\n" not in message


def test_bad_toml_names_its_line():
    with pytest.raises(UsageError, match=r"line 3"):
        parse_rules(b"version = 1\n\n[[table]\nlegacy='a'\n", "r.toml")


def test_missing_rules_file(tmp_path):
    with pytest.raises(UsageError, match="rules file not found"):
        load_rules(tmp_path / "nope.toml")


SCHEMA_SQL = "CREATE TABLE invoices (id bigserial primary key, kind text not null, total_cents int, note text);\n"


def _with_schema(tmp_path, table: str):
    (tmp_path / "s.sql").write_text(SCHEMA_SQL)
    body = f"schema = 's.sql'\n[[table]]\nlegacy = 'receipts'\ntarget = 'invoices'\n{table}"
    return parse_rules(body.encode(), "rules.toml", base=tmp_path)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("[table.renames]\namount = 'amount_cents'\n", "table[1].renames.amount: target 'invoices' has no column 'amount_cents'"),
        ("[table.where]\ntype = 'receipt'\n", "table[1].where.type: target 'invoices' has no column 'type'"),
        ("[table.set]\nsource = 'legacy'\n", "table[1].set.source: target 'invoices' has no column 'source'"),
    ],
)
def test_columns_the_target_lacks_are_errors_at_load(tmp_path, table, expected):
    with pytest.raises(UsageError) as info:
        _with_schema(tmp_path, table)
    assert str(info.value) == f"rules.toml: {expected}"


def test_a_target_missing_from_the_schema_is_an_error_at_load(tmp_path):
    (tmp_path / "s.sql").write_text(SCHEMA_SQL)
    body = b"schema = 's.sql'\n[[table]]\nlegacy = 'receipts'\ntarget = 'bills'\n"
    with pytest.raises(UsageError, match=r"table\[1\]\.target: table 'bills' is not in the schema"):
        parse_rules(body, "rules.toml", base=tmp_path)


def test_columns_the_target_has_load(tmp_path):
    rules = _with_schema(tmp_path, "[table.renames]\namount = 'total_cents'\n[table.where]\nkind = 'receipt'\n[table.set]\nkind = 'receipt'\n")
    assert rules.tables[0].where == (("kind", "receipt"),)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[[table]]\nlegacy='a'\ntarget='b'\n[table.set]\nx = nan\n", "table[1].set.x: must be a finite number, not nan"),
        (b"[[table]]\nlegacy='a'\ntarget='b'\n[table.where]\nx = inf\n", "table[1].where.x: must be a finite number, not inf"),
        (b"[[table]]\nlegacy='a'\ntarget='b'\n[table.set]\nx = -inf\n", "must be a finite number, not -inf"),
        (b"[[table]]\nlegacy='a'\ntarget='b'\n[table.set]\nx = 1e400\n", "must be a finite number, not inf"),
        (b"version = true\n[[table]]\nlegacy='a'\ntarget='b'\n", "version: unsupported rules version True"),
        (b"[[table]]\nlegacy='a'\ntarget='b'\ngroup='../../x'\n", "table[1].group: '../../x' is not a group name"),
        (b"[[table]]\nlegacy='a'\ntarget='b'\ngroup='/abs/x'\n", "table[1].group: '/abs/x' is not a group name"),
        (b"[[table]]\nlegacy='a'\ntarget='b'\ngroup='.hidden'\n", "is not a group name"),
        (b"[[table]]\nlegacy='a'\ntarget='b'\ngroup=''\n", "is not a group name"),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "invalid TOML: nested too deeply or a value too large"),
        (b"x = " + b"9" * 5001 + b"\n", "invalid TOML"),
    ],
)
def test_hostile_values_are_one_line_errors(body, expected):
    with pytest.raises(UsageError) as info:
        parse_rules(body, "r.toml")
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_group_name_may_hold_dots_dashes_and_underscores():
    rules = parse_rules(b"[[table]]\nlegacy='a'\ntarget='b'\ngroup='wave-2.posted_content'\n", "r.toml")
    assert rules.groups == ("wave-2.posted_content",)


def test_set_defaults_to_where_unless_given(tmp_path):
    from tableshift.rules import parse_rules

    text = (
        'version = 1\nname = "x"\n'
        '[[table]]\nlegacy = "tweets"\ntarget = "posted"\n[table.where]\nkind = "tweet"\n'
        '[[table]]\nlegacy = "posts"\ntarget = "posted"\n[table.where]\nkind = "post"\n[table.set]\n'
    )
    rules = parse_rules(text.encode(), "r.toml", base=tmp_path)
    assert rules.lookup("tweets").set == (("kind", "tweet"),)
    assert rules.lookup("posts").set == ()  # `set = {}`: nothing to set
