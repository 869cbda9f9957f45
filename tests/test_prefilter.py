"""The byte-level prefilter: a file it turns away is never parsed, so it must never turn away a file
the scanner would find a call in; and the faster searches must find exactly what the patterns do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tableshift import engine
from tableshift.discover import discover
from tableshift.scan import has_candidates, typescript
from tableshift.scan.shared import GENERATED_TYPES, TS_CANDIDATE, TYPE_CANDIDATE, generated_types, has_query_hit, name_occurrences, noise_hit, ts_hits, type_hits
from tableshift.scan.sql import SQL_CANDIDATE, has_sql, literal_text, sql_hits

from conftest import FIXTURES

# (source, whether the scanner finds a call in it)
SNIPPETS = [
    ("const b = Buffer.from(data);\nconst a = Array.from(new Set(xs));\n", False),
    ("const u = Uint8Array.from(bytes); const big = BigInt64Array.from(xs);\n", False),
    ("const x = Buffer .from(data)\nconst y = Array\n  .from(xs)\n", False),
    ("const r = _.from(xs); const o = Observable.from(p);\n", False),
    ("const b = Buffer.from(x);\nawait supabase.from('posts').select('id');\n", True),
    ("await this.Buffer.from('posts').select('id').eq('a', 1);\n", True),  # a member, not the global
    ("await ctx.Array.from('posts').select('id').eq('a', 1);\n", True),
    ("class A { #Array = db; q() { return this.#Array.from('posts').select('id').eq('a', 1) } }\n", True),
    ("const éArray = db; await éArray.from('posts').select('id').eq('a', 1);\n", True),
    ("const b = Buffer.from(x);\nchannel.on('postgres_changes', { event: '*', schema: 'public', table: 'posts' }, cb);\n", True),
    ("const b = Buffer.from(x);\nawait supabase.rpc('bump', { n: 1 });\n", True),
]


@pytest.mark.parametrize(("source", "found"), SNIPPETS)
def test_a_file_turned_away_holds_no_call_the_scanner_would_find(source, found):
    data = source.encode()
    calls, _ = typescript.scan(data, path="a.ts", language="typescript")
    assert bool(calls) == found
    assert has_candidates(data, "typescript") == found


def _corpus() -> list[bytes]:
    files = [p.read_bytes() for p in sorted(FIXTURES.rglob("*")) if p.suffix in (".ts", ".tsx", ".js", ".vue", ".mjs") and p.is_file()]
    tricky = [
        b"x . from <Row> ( 't' ); y.rpc\n(\n'f'); z.fromX(1); wfrom(2); a.\tfrom(3)",
        b"postgres_changespostgres_changes .from(",
        b"from(from(.from(.rpc<{a: b}>(",
        b"q = `  SELECT a\n FROM t`; r = 'delete from x'; s = \"With x as (select 1) select * from x\"; t = 'selection from'",
        b"'update\tposts set a = 1'; `insert  into` ; 'SELECT' from",
        b"'with' 'select 1' \"select a, b\" `with recursive t as (select 1) select * from t`",
        # a match that holds the start of another: the pattern's matches never overlap
        b"`select a from ${x ? 'select b from c' : \"delete from d\"}` 'insert into e' \"WITH q AS (SELECT 1) UPDATE f SET\"",
        b"` select from` 'select\n from' \"update\" x set",
        # quotes folded to one byte: a NUL in the file is not a quote, quotes of every kind and any
        # case and whitespace before the keyword are, a keyword inside a longer word is not
        b"\x00select a from t; \x00 'select a from t' '\x00select x from y' \"\x00\"SELECT a FROM t\"",
        b"'\t\n\r\f\vSeLeCt a FrOm t' `\vDELETE\x0bFROM t` \"' \"  with  x as (select 1) select * from x",
        # a line break in a '...' or "..." string: no string holds one, a template may
        b"// it's with\n// the rows from x\n'select\nfrom t' \"select\r\nfrom t\" '\nselect a from t' `with\nx as (select 1) select * from x`",
        b"'select\\\nfrom t' \"select \\\n from t\" 'select\t\x0ba from t' \"\x0c delete from t\"",
        b"'preselect a from t' 'selects a from t' 'xselect a from t' 'with\x00select a from t' ''select a from t",
        b"'INSERT INTO t' \"UPDATE t SET a\" `DELETE\nFROM t` 'W\xc3\x8dTH x from y' 'select\xa0a from t'",
        # generated types and references to them, with the words inside longer names
        b"type A = Tables<'a'>; type B = TablesInsert <'b'>; MyTables<'c'>; Tables_<'d'>; xTablesUpdate<'e'>",
        b"D['public'][ \"Tables\" ]['f']['Row']; D['Tables\"]; D[`Tables`]; ['Tables'x]; [ 'Tables' ]Tables<",
        b"TablesTables<'g'> ['Tables']['Tables'] Tables['Tables']<",
        b"export type Database = { public: { Tables: { t: { Row: { id: number } } } } }",
        b"{ MyTables: { Row: {} } } { Tables : {  xRow: { } }",
        b"{ Tables:{ _Row: {}, Row\n:\n{ } } }",
    ]
    return files + tricky


def test_the_literal_led_search_finds_exactly_the_pattern_s_hits():
    for data in _corpus():
        assert ts_hits(data) == [(m.start(), m.end()) for m in TS_CANDIDATE.finditer(data)]


def test_a_query_hit_is_found_as_the_list_of_hits_would_find_it():
    corpus = [*_corpus(), *(source.encode() for source, _ in SNIPPETS), b"Buffer.from(x); Array.from(y)", b"Buffer.from(x); a.rpc(1)", b"[...Array.from(y)]", b"x...Array.from(y)"]
    for data in corpus:
        listed = any(data.startswith(b"postgres", start) or not noise_hit(data, start) for start, _ in ts_hits(data))
        assert has_query_hit(data) == listed, data[:80]


def test_a_spread_noise_receiver_is_no_candidate():
    # `...Array.from(` is `Array.from(` spread: the scanner finds no call, so the file is not parsed
    spread = b"const rows = [...Array.from({ length: 9 }, (_, i) => i)];\n"
    assert not has_candidates(spread, "typescript")
    assert typescript.scan(spread, path="a.ts", language="typescript")[0] == []
    member = b"const rows = x.Array.from('posts');\n"  # a member named Array: not the global
    assert has_candidates(member, "typescript")


def test_the_keyword_led_sql_search_agrees_with_the_pattern():
    for data in _corpus():
        assert [m.span() for m in sql_hits(data)] == [m.span() for m in SQL_CANDIDATE.finditer(data)], data[:80]
        if SQL_CANDIDATE.search(data) is None:
            assert not has_sql(data), data[:80]


# (source, whether the scanner finds a call in it, whether the prefilter lets it be parsed)
STATEMENT_LIKE = [
    ("toast('Update requests from the store');\n", False, False),
    ("expect(log).toContain('DELETE FROM public.channels');\n", False, True),  # SQL, given to a call that takes none
    ("db.prepare(`DELETE FROM ${TABLE} WHERE id = ?`).run(id);\n", False, False),  # the table interpolated
    ("const help = `with the user\\'s pick from the list`;\n", False, False),  # an escape, read as the scanner reads it
    ('const t = <Tip text="Select a row from the table" />;\n', False, False),
    ("await run('DELETE FROM ' + table);\n", False, False),
    ("await pool.query('DELETE FROM posts');\n", True, True),  # a call that takes SQL
    ("await pool.query(\n  // every row\n  'DELETE FROM posts');\n", True, True),
    ("await pool.query(/* every row */ 'DELETE FROM posts');\n", True, True),
    ("await pool.query(\n  'DELETE FROM posts');\n", True, True),
    ("await sql`DELETE FROM posts`;\n", True, True),
    ("await db.sql`DELETE FROM posts`;\n", True, True),
    ("await sql<Row>`DELETE FROM posts`;\n", False, True),  # tree-sitter reads `<` and `>` as comparisons here
    ("const q = 'DELETE FROM posts WHERE id = $1';\n", True, True),  # reads as code
    ("const q = `select * from posts where id in (${ids.map((i) => `'${i}'`)})`;\n", True, True),  # not read here
    ("await run(x, 'DELETE FROM posts');\n", False, True),  # a later argument: the scanner decides
    # literals the scanner reports whose own quote is no hit: a hit is a quote inside them
    ("await sql`SELECT ${full ? sql`*` : sql`id`} FROM users WHERE note = 'select x from y'`;\n", True, True),
    ("db.query(\"SELECT \\\"id\\\" FROM accounts WHERE note = 'select x from y'\");\n", True, True),
    ("const q = `\\nSELECT * FROM users WHERE note = 'select x from y'`;\n", True, True),
    ("const q = \"SELECT\\tid FROM users WHERE note = 'select x from y'\";\n", True, True),
    ("const q = `SELECT " + "a, " * 1400 + "a FROM users WHERE note = 'select x from y'`;\n", True, True),
    ("foo.raw('\\'delete from t');\n", True, True),
    ("db.query(`SELECT * FROM orders -- why\\?\nnot sql`);\n", True, True),  # `\?` and a line break: one escape
    ("const q = 'select a from b\\n';\n", False, True),  # an escape in a quoted string: not read here
]


@pytest.mark.parametrize(("source", "found", "candidate"), STATEMENT_LIKE)
def test_a_string_that_only_starts_like_a_statement_is_not_parsed_for_it(source, found, candidate):
    data = source.encode()
    language = "tsx" if "<Tip" in source else "typescript"
    calls, _ = typescript.scan(data, path="a.tsx", language=language)
    assert bool(calls) == found
    assert has_candidates(data, language) == candidate


def test_a_statement_in_a_component_s_script_is_found_past_a_quote_in_its_markup():
    # the markup's backtick is a hit that runs on into the script: the script's string is tried too
    data = b"<template>\n  <p>Tip: ` update the rows, then</p>\n</template>\n<script setup>\nconst rows = await db.query('select * from invoices where id = 1')\n</script>\n<!-- ` -->\n"
    from tableshift.scan import components

    calls, _ = components.scan(data, path="f.vue", language="vue")
    assert [c.table.name for c in calls] == ["invoices"]
    assert has_candidates(data, "vue")


def _literals(data: bytes, language: str):  # type: ignore[no-untyped-def]
    """Each string and template literal of a file (from its quote), with the text the scanner reads."""
    from tree_sitter import Parser

    from tableshift.scan.source import SourceText

    grammar = typescript.grammar(language)
    root = Parser(grammar.language).parse(data).root_node
    scan = typescript._FileScan(path="a", language=language, src=SourceText(data), root=root, grammar=grammar)
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in ("string", "template_string") and data[node.start_byte] in b"'\"`" and not node.has_error:
            yield node.start_byte, scan._sql_text(node)[0]
        stack.extend(node.children)


def test_a_literal_read_off_its_bytes_is_the_text_the_scanner_reads():
    tricky = [
        b"a = `x\\n${b}y\\t${ {c: 1}.c }z\\u0041\\u{1F600}\\x41\\101\\0\\q\\\n`;",
        b"a = `${`nested ${d}`} and ${'q'} and ${/re}/} and ${x /* } */}`; b = `\xc3\xa9t\xc3\xa9 \\\xc3\xa9`;",
        b"a = 'it\\'s'; b = \"say \\\"hi\\\"\"; c = 'caf\xc3\xa9 & more'; d = '';",
        b"const t = <A title=\"a &amp; b\" alt='x\\y' />; const u = `\\${x}` + `$${y}` + `$\\{z}`;",
        b"a = `unclosed ${x",
        b"a = `why\\?\nnot`; b = `x\\\r\ny`;",
    ]
    files = [
        (p.read_bytes(), "tsx" if p.suffix in (".tsx", ".jsx") else "javascript" if p.suffix in (".js", ".mjs") else "typescript")
        for p in sorted(FIXTURES.rglob("*"))
        if p.suffix in (".ts", ".tsx", ".js", ".mjs", ".jsx") and p.is_file()
    ]
    read = 0
    for data, language in [*files, *((t, "tsx") for t in tricky)]:
        for start, text in _literals(data, language):
            mine = literal_text(data, start)
            assert mine is None or mine == text, (data[start : start + 60], mine, text)
            read += mine is not None
    assert read > 500  # most literals are read off their bytes


@pytest.mark.parametrize(
    ("source", "found"),
    [
        # a quote in a comment, then "with" at the end of its line: no string starts there
        ("// the 'import' with\n// a row from the list\nconst x = 1;\n", False),
        ('// a "b" with\n// c from d\nconst x = 1;\n', False),
        ('const a = "Select\\\nfrom the list";\n', False),  # a `\` line continuation: no whitespace
        ("await pool.query('select id from posts where a = $1', [1]);\n", True),
        ("await pool.query(\"select\tid from posts where a = $1\", [1]);\n", True),
        ("await sql`with\n  x as (select id from posts) select * from x`;\n", True),
    ],
)
def test_a_statement_in_a_quoted_string_is_on_one_line(source, found):
    data = source.encode()
    calls, _ = typescript.scan(data, path="a.ts", language="typescript")
    assert bool(calls) == found
    assert has_candidates(data, "typescript") == found


def test_the_word_led_type_searches_agree_with_the_patterns():
    for data in _corpus():
        assert type_hits(data) == [m.span() for m in TYPE_CANDIDATE.finditer(data)], data[:80]
        generated = b"Tables" in data and b"Row" in data and GENERATED_TYPES.search(data) is not None and re.search(rb"\bRow\s*:\s*\{", data) is not None
        assert generated_types(data) == generated, data[:80]
    assert generated_types(b"{ Tables: { t: { Row: { id: number } } } }")
    assert not generated_types(b"{ MyTables: { t: { Row: {} } } }") and not generated_types(b"{ Tables: { t: { xRow: {} } } }")


def test_a_name_s_occurrences_are_the_look_behind_pattern_s():
    corpus = [*_corpus(), b"aa aaa $aa aa$ _aa aa_ a\xc3\xa9a\xc3\xa9a \xc3\xa9aa aa", b"q=q;q.q(q)[q]`${q}`//q"]
    for data in corpus:
        for word in set(re.findall(rb"[A-Za-z_$\x80-\xff][\w$\x80-\xff]*", data)):
            name = word.decode("utf-8", "surrogateescape")
            expected = [m.span() for m in re.finditer(rb"(?<![\w$])" + re.escape(word) + rb"(?![\w$])", data)]
            assert [m.span() for m in name_occurrences(data, name)] == expected, (name, data[:60])


def test_generated_types_alone_are_not_parsed_yet_still_listed(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "database.types.ts").write_text(
        "export type Database = { public: { Tables: { posts: { Row: { id: number } } } } }\n"
        "export type Tables<T extends keyof Database['public']['Tables']> = Database['public']['Tables'][T]['Row']\n"
    )
    (tmp_path / "bytes.ts").write_text("export const b = (x: string) => Buffer.from(x, 'utf8');\n")
    result = engine.run(discover(["."]), None, options=engine.Options(jobs=1, cache_dir=tmp_path / "cache"))
    files = {f.path: f for f in result.files}
    assert files["database.types.ts"].generated_types and not files["database.types.ts"].calls
    assert not files["bytes.ts"].calls
    assert engine.LAST_RUN["candidates"] == 0  # neither file was parsed
    again = engine.run(discover(["."]), None, options=engine.Options(jobs=1, cache_dir=tmp_path / "cache"))
    assert {f.path: f.generated_types for f in again.files} == {"bytes.ts": False, "database.types.ts": True}  # from the stat index
