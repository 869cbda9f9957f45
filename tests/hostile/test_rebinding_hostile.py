"""The gate never passes a call on a wrong certain table: what the language evaluates decides, or
the call is dynamic (issue 18: duplicate keys, a spread after a key, loop and catch bindings that
shadow a constant, and their Python siblings)."""

from __future__ import annotations

import pytest

from conftest import RULES
from helpers import run_cli, write_project
from tableshift.scan import scan_source


def table(source: str, language: str):
    path = "x.py" if language == "python" else "x.ts"
    [call] = [c for c in scan_source(source.encode(), path=path, language=language).calls if c.table is not None][:1]
    return call.table


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("const T = { a: 'posts', a: 'content_metadata' };\nexport const f = () => supabase.from(T.a).select('id');\n", "content_metadata"),
        ("const T = { ...base, a: 'posts' };\nexport const f = () => supabase.from(T.a).select('id');\n", "posts"),
        ("const T = { a: 'posts', ...other };\nexport const f = () => supabase.from(T.a).select('id');\n", None),
        ("const T = { a: 'posts', [k]: 'x' };\nexport const f = () => supabase.from(T.a).select('id');\n", None),
        ("const T = { a: 'posts', get a() { return 'x'; } };\nexport const f = () => supabase.from(T.a).select('id');\n", None),
        ("const TABLE = 'posts';\nexport const f = () => { for (const TABLE of ['content_metadata']) supabase.from(TABLE).select('id'); };\n", None),
        ("const TABLE = 'posts';\nexport const f = (o: object) => { for (const TABLE in o) supabase.from(TABLE).select('id'); };\n", None),
        ("const TABLE = 'posts';\nexport const f = () => { try { g(); } catch (TABLE) { supabase.from(TABLE).select('id'); } };\n", None),
        ("const TABLE = 'posts';\nexport const f = () => { for (const { TABLE } of rows) supabase.from(TABLE).select('id'); };\n", None),
        ("const TABLE = 'posts';\nexport const f = () => { for (const x of rows) supabase.from(TABLE).select('id'); };\n", "posts"),
    ],
)
def test_typescript_reads_what_javascript_evaluates(source, expected):
    found = table(source, "typescript")
    assert (found.name if found.certain else None) == expected, found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("TABLE = 'posts'\nfor TABLE in ['content_metadata']:\n    client.table(TABLE).select('id').execute()\n", None),
        ("TABLE = 'posts'\ndef f(c):\n    try:\n        pass\n    except Exception as TABLE:\n        return c.table(TABLE).select('id').execute()\n", None),
        ("TABLE = 'posts'\ndef f(c):\n    with open('x') as TABLE:\n        return c.table(TABLE).select('id').execute()\n", None),
        ("TABLE = 'posts'\ndef f(c):\n    if (TABLE := g()):\n        return c.table(TABLE).select('id').execute()\n", None),
        ("TABLE = 'posts'\ndef f(c):\n    return [c.table(TABLE).select('id').execute() for TABLE in xs]\n", None),
        ("TABLE = 'posts'\ndef g():\n    global TABLE\n    TABLE = 'content_metadata'\ndef f(c):\n    return c.table(TABLE).select('id').execute()\n", None),
        ("TABLE = 'posts'\nTABLE += '_v2'\ndef f(c):\n    return c.table(TABLE).select('id').execute()\n", None),
        ("TABLE = 'posts'\ndef f(c):\n    ys = [1 for TABLE in xs]\n    return c.table(TABLE).select('id').execute()\n", "posts"),
        ("TABLE = 'posts'\ndef g():\n    for TABLE in xs:\n        pass\ndef f(c):\n    return c.table(TABLE).select('id').execute()\n", "posts"),
    ],
)
def test_python_reads_what_python_evaluates(source, expected):
    found = table(source, "python")
    assert (found.name if found.certain else None) == expected, found


def test_check_strict_fails_on_a_legacy_table_hidden_behind_a_duplicate_key(tmp_path):
    root = write_project(
        tmp_path / "app",
        {"src/a.ts": "const T = { q: 'posts', q: 'content_metadata' };\nexport const f = () => supabase.from(T.q).select('id');\n"},
    )
    empty = tmp_path / "baseline.json"
    assert run_cli("baseline", "src", "--rules", str(RULES), "-o", str(empty), cwd=root).returncode == 0
    (root / "src" / "b.ts").write_text("const T = { q: 'posts', q: 'content_metadata' };\nexport const g = () => supabase.from(T.q).select('id');\n")
    proc = run_cli("check", "src", "--rules", str(RULES), "--baseline", str(empty), "--strict", cwd=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "src/b.ts" in proc.stdout

