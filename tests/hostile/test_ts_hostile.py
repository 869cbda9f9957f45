"""The TypeScript scanner on hostile shapes: very long method chains and very deep nesting."""

from __future__ import annotations

import pytest
from tree_sitter import Parser, QueryCursor

from tableshift.model import Operation, TableSource
from tableshift.scan import scan_source, ts_nodes
from tableshift.scan.ts_resolve import Resolver
from tableshift.scan.typescript import grammar


def _chain(links: int) -> str:
    """One query with one `.eq()` per line: 10,000 links are more than Python's recursion limit."""
    return "const r = await supabase.from('t').select('id')\n" + "".join(f"  .eq('a{i}', {i})\n" for i in range(links)) + ";\n"


def _only(source: str):
    result = scan_source(source.encode(), path="x.ts", language="typescript")
    assert result.error is None, result.error
    assert len(result.calls) == 1, result.calls
    return result.calls[0]


@pytest.fixture
def parents(monkeypatch):
    """The Parents each scan makes: their steps are the work spent walking up the tree."""
    made: list[ts_nodes.Parents] = []

    class Counted(ts_nodes.Parents):
        def __init__(self, root):  # type: ignore[no-untyped-def]
            super().__init__(root)
            made.append(self)

    monkeypatch.setattr(ts_nodes, "Parents", Counted)
    return made


def test_a_ten_thousand_link_chain_is_read_whole():
    call = _only(_chain(10_000))
    assert (call.table.name, call.operation) == ("t", Operation.SELECT)
    assert [c.name for c in call.columns.filter] == [f"a{i}" for i in range(10_000)]
    assert call.end.line == 10_001


def test_walking_up_a_chain_is_linear_in_its_length(parents):
    def steps(links: int) -> int:
        parents.clear()
        assert len(_only(_chain(links)).columns.filter) == links
        return sum(p.steps for p in parents)

    small, large = steps(1_000), steps(8_000)
    assert large <= 5 * 8_000
    assert large <= 9 * small  # 8x the links, not 64x the work


@pytest.mark.parametrize("language", ["typescript", "tsx", "javascript"])
def test_no_query_keeps_a_match_open_per_chain_link(language):
    # A pattern waiting for a later child (`arguments:` after `function:`) keeps one match
    # open per call nested before it, and each node of the chain then steps every open one.
    g = grammar(language)
    root = Parser(g.language).parse(_chain(2_000).encode()).root_node
    for key, query in g.queries.items():
        cursor = QueryCursor(query, match_limit=64)
        cursor.matches(root)
        assert not cursor.did_exceed_match_limit, key


def test_a_chain_inside_deep_parentheses_is_found_with_linear_work(parents):
    depth = 50_000
    call = _only("const x = " + "(" * depth + "supabase.from('t').select('id').eq('a', 1)" + ")" * depth + ";\n")
    assert [c.name for c in call.columns.filter] == ["a"]
    assert sum(p.steps for p in parents) <= 5 * depth


def test_deep_parentheses_inside_an_argument_still_work():
    depth = 50_000
    call = _only("await supabase.from('t').select('id').eq('a', " + "(" * depth + "1" + ")" * depth + ");\n")
    assert [c.name for c in call.columns.filter] == ["a"]
    table = _only("await supabase.from(" + "(" * depth + "'t'" + ")" * depth + ").select('id');\n").table
    assert (table.name, table.source) == ("t", TableSource.LITERAL)


def test_a_long_continued_chain_is_read_whole(parents):
    links = 10_000
    source = "let q = supabase.from('t').select('id');\nq = q" + "".join(f"\n  .eq('a{i}', {i})" for i in range(links)) + ";\n"
    call = _only(source)
    assert len(call.columns.filter) == links
    assert sum(p.steps for p in parents) <= 5 * links


def test_a_helper_calling_itself_from_many_sites_resolves_each_site_a_few_times(monkeypatch):
    # each call site passes the parameter on: unremembered, every level of the search would
    # multiply the sites of the one before
    sites = 10  # few enough that a search without memory fails here rather than hangs
    resolved = []
    table = Resolver.table

    def counted(self, arg, at, depth=0):  # type: ignore[no-untyped-def]
        resolved.append(arg)
        return table(self, arg, at, depth)

    monkeypatch.setattr(Resolver, "table", counted)
    source = "function f(t) {\n" + "  f(t);\n" * sites + "  return supabase.from(t).select('id');\n}\nf('posts');\n"
    call = _only(source)
    assert call.table.candidates == ("posts",)
    assert len(resolved) <= 10 * sites


def test_deeply_nested_payload_arrays_are_read():
    depth = 5_000
    call = _only("await supabase.from('t').insert(" + "[" * depth + "{ a: 1 }, row" + "]" * depth + ");\n")
    assert [c.name for c in call.columns.write] == ["a"]
    assert [o.reason for o in call.columns.opaque] == ["insert payload is a variable: `row`"]


def test_deeply_nested_destructuring_does_not_lose_the_file():
    depth = 5_000
    pattern = "{ a: " * depth + "{ t }" + " }" * depth
    source = f"const {pattern} = obj;\nfunction f({pattern}) {{ return supabase.from(t).select('id'); }}\nawait supabase.from('posts').select('id');\n"
    result = scan_source(source.encode(), path="x.ts", language="typescript")
    assert result.error is None, result.error
    assert [(c.table.name, c.table.reasons) for c in result.calls] == [(None, ("parameter `t` of `f`",)), ("posts", ())]
