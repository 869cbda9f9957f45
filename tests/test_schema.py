"""Target-schema DDL through pglast: what it learns, and one-line errors with the SQL line."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT
from tableshift.errors import UsageError
from tableshift.schema import load_schema, parse_schema

DDL = """
CREATE TABLE a (id bigserial PRIMARY KEY, code text NOT NULL, note text NOT NULL DEFAULT '', gen int GENERATED ALWAYS AS IDENTITY);
CREATE TABLE b (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), a_id bigint REFERENCES a (id), old text);
ALTER TABLE b ADD COLUMN must text NOT NULL;
ALTER TABLE b DROP COLUMN old;
ALTER TABLE b RENAME COLUMN must TO required_now;
CREATE TABLE c (x int, FOREIGN KEY (x) REFERENCES b (id));
"""


def test_columns_required_and_foreign_keys():
    schema = parse_schema(DDL, "s.sql")
    assert list(schema.tables) == ["a", "b", "c"]
    assert schema.table("a").required == ("code",)
    assert set(schema.table("b").columns) == {"id", "a_id", "required_now"}
    assert schema.table("b").required == ("required_now",)
    assert schema.linked("a", "b") and schema.linked("b", "a") and schema.linked("c", "b")
    assert not schema.linked("a", "c")


def test_shipped_schema_matches_the_plan():
    schema = load_schema(ROOT / "rules" / "content-consolidation.sql")
    assert set(schema.tables) == {"content_queue", "posted_content", "engagement_metrics"}
    assert "raw_topic" in schema.table("content_queue").columns
    assert {"likes", "retweets", "replies", "impressions", "bookmarks", "collected_pass"} <= set(
        schema.table("engagement_metrics").columns
    )
    assert schema.linked("posted_content", "content_queue") and schema.linked("engagement_metrics", "posted_content")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE TABLE x (\n  a int,\n  b intt intt\n);", "s.sql:3:10: SQL syntax error"),
        ("CREATE TABLE x (a int);\n\nALTER TABLE zz ADD COLUMN b int;", "s.sql:3: table 'zz' is altered before any CREATE TABLE of it"),
        ("CREATE TABLE x (a int);\nALTER TABLE x DROP COLUMN nope;", "s.sql:2: DROP COLUMN 'nope': 'x' has no such column"),
        ("CREATE TABLE x (a int);\nALTER TABLE x RENAME COLUMN nope TO b;", "s.sql:2: RENAME COLUMN 'nope': 'x' has no such column"),
        ("SELECT 1;", "no CREATE TABLE statement"),
    ],
)
def test_mistakes_are_one_line_with_the_line(sql, message):
    with pytest.raises(UsageError) as info:
        parse_schema(sql, "s.sql")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_drop_if_exists_is_fine():
    parse_schema("CREATE TABLE x (a int);\nALTER TABLE x DROP COLUMN IF EXISTS nope;", "s.sql")


def test_directory_is_not_a_schema(tmp_path: Path):
    with pytest.raises(UsageError, match="is a directory"):
        load_schema(tmp_path)


def test_a_schema_read_once_is_not_parsed_again_and_a_tampered_copy_is_not_trusted(tmp_path, monkeypatch):
    from tableshift import schema as schema_module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ddl = "CREATE TABLE memo_t (id bigint PRIMARY KEY, body text NOT NULL);"
    first = schema_module.parse_schema(ddl, "s.sql")
    parsed: list[str] = []
    real = schema_module._parse_schema
    monkeypatch.setattr(schema_module, "_parse_schema", lambda sql, where: parsed.append(where) or real(sql, where))
    assert schema_module.parse_schema(ddl, "s.sql") == first and parsed == []  # remembered
    for path in (tmp_path / "tableshift" / "schemas").iterdir():
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    assert schema_module.parse_schema(ddl, "s.sql") == first and parsed == ["s.sql"]  # parsed again
    with pytest.raises(UsageError):
        schema_module.parse_schema("CREATE TABLE (", "bad.sql")  # errors are never remembered
    with pytest.raises(UsageError):
        schema_module.parse_schema("CREATE TABLE (", "bad.sql")
