"""A rewrite is parsed again incrementally, from the tree of the scan that planned it: the error
count must be the one a full parse gives, whatever the edits (several, multi-line, breaking)."""

from __future__ import annotations

import pytest
from tree_sitter import Parser

from tableshift.model import Edit, Span
from tableshift.patch import apply_edits
from tableshift.scan import error_count, typescript

SOURCE = (
    "import { supabase } from './db'\n"
    "export async function load(id: string) {\n"
    "  const { data } = await supabase.from('content_queue').select('id, body').eq('id', id)\n"
    "  await supabase.from('posts').insert({ body: 'é ü' })\n"
    "  return data\n"
    "}\n"
).encode()


def _span(text: str, occurrence: int = 0) -> Span:
    start = -1
    for _ in range(occurrence + 1):
        start = SOURCE.index(text.encode(), start + 1)
    return Span(start, start + len(text.encode()))


CASES = {
    "one table": [Edit(_span("content_queue"), "content_pipeline")],
    "several, growing and shrinking": [
        Edit(_span("content_queue"), "content_pipeline"),
        Edit(_span("posts"), "p"),
        Edit(_span("'id, body'"), "'id, body:content_body'"),
    ],
    "a multi-line insertion": [Edit(Span(_span(".eq(").start, _span(".eq(").start), "\n    .eq('stage', 'queued')\n    ")],
    "an insertion after a non-ASCII string": [Edit(Span(_span(" })").start, _span(" })").start), ", status: 'posted'")],
    "an edit that breaks the file": [Edit(_span("select('id, body')"), "select('id, body'")],
    "an edit that breaks it twice": [Edit(_span("{ data }"), "{ data"), Edit(_span("return data"), "return )")],
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("language", ["typescript", "tsx", "javascript"])
def test_the_incremental_count_is_the_full_count(case, language):
    source = SOURCE.replace(b": string", b"") if language == "javascript" else SOURCE
    edits = [Edit(Span(e.span.start, e.span.end), e.text) for e in CASES[case]]
    if language == "javascript":  # the same edits, past the removed type
        shift = len(b": string")
        cut = SOURCE.index(b": string")
        edits = [Edit(Span(e.span.start - shift * (e.span.start > cut), e.span.end - shift * (e.span.end > cut)), e.text) for e in edits]
    new = apply_edits(source, edits)
    typescript.scan(source, path="a.ts", language=language)
    tree = typescript._LAST[0][1]
    assert typescript._LAST[0][0] is source
    assert typescript.error_count_edited(source, new, edits, language=language) == error_count(new, language)
    assert typescript._LAST[0] is None  # used once: the next file starts afresh
    # and the tree reused is, once edited, the tree a full parse builds
    parser = Parser(typescript.grammar(language).language)
    assert str(parser.parse(new, tree).root_node) == str(parser.parse(new).root_node)


def test_another_files_bytes_are_parsed_in_full():
    typescript.scan(SOURCE, path="a.ts", language="typescript")
    other = bytes(bytearray(SOURCE))  # equal, but not the bytes just scanned
    assert other is not SOURCE
    edits = [Edit(_span("return data"), "return )")]
    new = apply_edits(other, edits)
    assert typescript.error_count_edited(other, new, edits, language="typescript") == error_count(new, "typescript") > 0
