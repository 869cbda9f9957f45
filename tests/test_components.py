"""Vue, Svelte and Astro components: which blocks are code, and calls in them placed in the whole file."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, RULES
from helpers import run_cli, run_cli_bytes
from tableshift import engine
from tableshift.discover import LANGUAGES, discover
from tableshift.model import Kind, Position
from tableshift.scan import error_count, scan_source
from tableshift.scan import typescript
from tableshift.scan.components import _in_component, blocks, masked, units
from tableshift.scan.source import SourceText

ROOT = Path(__file__).resolve().parents[1]


def codes(source: str | bytes, component: str) -> list[tuple[str, str]]:
    data = source.encode() if isinstance(source, str) else source
    return [(b.grammar, data[b.start : b.end].decode()) for b in blocks(data, component)]


def scanned(source: str | bytes, component: str, path: str = "x"):
    data = source.encode() if isinstance(source, str) else source
    result = scan_source(data, path=f"{path}.{component}", language=component)
    assert result.error is None, result.error
    return result


# -- which blocks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # attributes in any order and quoting, over several lines
        ("<script lang='ts' setup>a</script>", [("typescript", "a")]),
        ("<script setup lang=ts>a</script>", [("typescript", "a")]),
        ('<script\n  setup\n  lang="tsx"\n>a</script>', [("tsx", "a")]),
        ('<script setup generic="T extends Map<string, number>" lang="ts">a</script>', [("typescript", "a")]),
        ('<script lang="js">a</script><script setup lang="jsx">b</script>', [("javascript", "a"), ("javascript", "b")]),
        ("<SCRIPT>a</SCRIPT >", [("javascript", "a")]),
        ("<script>a</script\n>", [("javascript", "a")]),
        # the first `</script` ends the block, even inside a JavaScript string, as in HTML
        ("<script setup>const s = '</script>'; x</script>", [("javascript", "const s = '")]),
        # no body of its own: self-closing, or code in another file
        ('<script setup lang="ts" />\n<script src="./logic.ts"></script>', []),
        # data, not code; a language not scanned
        ('<script type="application/ld+json">{"from": 1}</script><script lang="coffee">x</script>', []),
        ('<script type="module">a</script><script type="text/x-template">b</script>', [("javascript", "a")]),
        # `<script>` as text of the template, its comments, attributes and interpolations
        ("<template><p>{{ '<script>' }}</p></template><script>yes</script>", [("javascript", "yes")]),
        ("<template><!-- <script>no</script> --></template><script>yes</script>", [("javascript", "yes")]),
        ("<template><p :title=\"'<script>'\">x</p></template><script>yes</script>", [("javascript", "yes")]),
        ("<template><textarea><script>no</script></textarea></template><script>yes</script>", [("javascript", "yes")]),
        ("<template><p>a < b and b > a</p></template><script>yes</script>", [("javascript", "yes")]),
        # a script inside the template is not the component's
        ("<template><div><script>no</script></div></template><script>yes</script>", [("javascript", "yes")]),
        ("<template><template v-if=\"x\"><i>no</i></template></template><script>yes</script>", [("javascript", "yes")]),
        # custom blocks and a template in another language are raw text
        ("<docs>\n```html\n<script>no</script>\n```\n</docs>\n<script>yes</script>", [("javascript", "yes")]),
        ('<template lang="pug">div <script> x</template><script>yes</script>', [("javascript", "yes")]),
        ("<style>a::before { content: '<script>' }</style><script>yes</script>", [("javascript", "yes")]),
        # no end tag: the block runs to the end of the file, as in HTML
        ("<template></template>\n<script>a\n", [("javascript", "a\n")]),
    ],
)
def test_vue_script_blocks(source, expected):
    assert codes(source, "vue") == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('<script context="module" lang="ts">m</script><script lang="ts">i</script>', [("typescript", "m"), ("typescript", "i")]),
        ("<script context=module>m</script>", [("javascript", "m")]),
        ('<script module lang="ts">m</script>', [("typescript", "m")]),
        ('<script lang="typescript">i</script>', [("typescript", "i")]),
        # expressions hold `<script>` and `>` that are not markup
        ("<p>{'<script>'} {`</script>`}</p><script>yes</script>", [("javascript", "yes")]),
        ("<button on:click={() => a > b}>x</button><script>yes</script>", [("javascript", "yes")]),
        ('<a title="{ok ? "<script>" : "b"}">x</a><script>yes</script>', [("javascript", "yes")]),
        ("<p>Don't worry</p>\n<script>yes</script>", [("javascript", "yes")]),
        # scripts inside elements or blocks are markup, not the component's scripts
        ("<svelte:head><script>no</script></svelte:head><script>yes</script>", [("javascript", "yes")]),
        ("{#if ok}<script>no</script>{/if}<script>yes</script>", [("javascript", "yes")]),
        ("<ul><li>a<li>b</ul><script>yes</script>", [("javascript", "yes")]),
    ],
)
def test_svelte_script_blocks(source, expected):
    assert codes(source, "svelte") == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("---\nconst a = 1;\n---\n<p>{a}</p>", [("typescript", "\nconst a = 1;\n")]),
        ("\n\n---\r\nfm\r\n---\r\n<p/>", [("typescript", "\r\nfm\r\n")]),
        # a `---` line in a template literal does not close the frontmatter
        ("---\nconst md = `\n---\ntitle: x\n---\n`;\n---\n<p/>", [("typescript", "\nconst md = `\n---\ntitle: x\n---\n`;\n")]),
        ("---\nconst a = '---';\n// ---\n---\n", [("typescript", "\nconst a = '---';\n// ---\n")]),
        # processed scripts are TypeScript; inline ones are sent as they are: JavaScript
        ("<p/><script>a</script><script is:inline>b</script><script define:vars={{ x }}>c</script>",
         [("typescript", "a"), ("javascript", "b"), ("javascript", "c")]),
        # anywhere in the template, even in an expression
        ("<div>{show && <script>e</script>}</div>", [("typescript", "e")]),
        ("<Comp attr=`${a > b}` /><script>f</script>", [("typescript", "f")]),
        ('<script type="application/ld+json">{"a": 1}</script>', []),
        ("<p>no frontmatter --- here</p>", []),
        ("<p>x</p>\n---\nnot = frontmatter\n---\n", []),
    ],
)  # fmt: skip
def test_astro_frontmatter_and_scripts(source, expected):
    assert codes(source, "astro") == expected


def test_vue_and_svelte_scripts_are_one_module_and_astro_scripts_are_not():
    def grammars(source: bytes, component: str) -> list[tuple[int, str]]:
        return [(len(u.blocks), u.grammar) for u in units(source, component)]

    assert grammars(b"<script>a</script><script setup>b</script>", "vue") == [(2, "javascript")]
    # a TypeScript block and a JavaScript one: the TypeScript grammar reads both
    assert grammars(b'<script>a</script><script setup lang="ts">b</script>', "vue") == [(2, "typescript")]
    assert grammars(b'<script>a</script><script setup lang="tsx">b</script>', "vue") == [(2, "tsx")]
    assert grammars(b'<script module lang="ts">a</script><script lang="ts">b</script>', "svelte") == [(2, "typescript")]
    # Astro's frontmatter runs on the server, each <script> in the browser
    assert grammars(b"---\na\n---\n<script>b</script><script is:inline>c</script>", "astro") == [
        (1, "typescript"),
        (1, "typescript"),
        (1, "javascript"),
    ]
    assert units(b"<template><p>x</p></template>", "vue") == []


def test_masked_copy_keeps_offsets_line_endings_and_bom():
    data = "\ufeff<template>\r\n  <p>é</p>\r\n</template>\r\n<script setup>\r\nconst a = 1\r\n</script>\r\n".encode()
    [block] = blocks(data, "vue")
    copy = masked(data, [block])
    assert len(copy) == len(data)
    assert copy.startswith(b"\xef\xbb\xbf")
    assert copy.count(b"\r\n") == data.count(b"\r\n")
    assert copy[block.start : block.end] == data[block.start : block.end] == b"\r\nconst a = 1\r\n"
    assert set(copy[3 : block.start]) <= set(b" \r\n") and set(copy[block.end :]) <= set(b" \r\n")


# -- scanning -------------------------------------------------------------------

VUE = """<script lang="ts">
const QUEUE = 'content_metadata';
export default { name: 'Queue' };
</script>

<script setup lang="ts">
import { supabase } from './db';
const { data } = await supabase.from(QUEUE).select('id, topic_cluster');
const url = supabase.storage.from('thumbs').getPublicUrl('a.png');
</script>

<template>
  <!-- supabase.from('tweets').select() -->
  <p>{{ data }} {{ Array.from(data) }} supabase.from('posts').select('id')</p>
</template>

<style>p::after { content: "supabase.from('outcomes')"; }</style>
"""


def test_only_script_blocks_are_parsed_and_share_their_constants():
    result = scanned(VUE, "vue")
    assert not result.parse_error
    assert [(c.kind, c.start.line, c.table.name if c.table else c.name) for c in result.calls] == [
        (Kind.TABLE, 8, "content_metadata"),
        (Kind.STORAGE, 9, "thumbs"),
        (Kind.TABLE, 14, "posts"),  # markup is not parsed, but a query written there is never unseen
    ]
    assert [c.in_error_region for c in result.calls] == [False, False, True]  # comments and styles are text
    assert {c.language for c in result.calls} == {"vue"}
    assert result.language == "vue"
    assert result.calls[0].table.source.value == "constant"


def test_different_languages_are_parsed_each_with_its_grammar():
    src = """<script>
export default { name: 'A' };
</script>
<script setup lang="ts">
const rows: Array<{ id: number }> = [];
const { data } = await supabase.from('posts').select('id') as { data: typeof rows };
</script>
"""
    result = scanned(src, "vue")
    assert not result.parse_error
    assert [c.table.name for c in result.calls] == ["posts"]


def test_blocks_on_one_line_do_not_run_into_each_other():
    src = "<script>const a = 1</script><script setup>const b = supabase.from('posts').select('id')</script>"
    result = scanned(src, "vue")
    assert not result.parse_error
    [call] = result.calls
    assert (call.start.line, call.start.column) == (1, src.index("from(") + 1)


def test_positions_are_those_of_the_whole_file():
    src = "\ufeff<template>\r\n  <p>Caf\u00e9 \u2615 \U0001f600</p>\r\n</template>\r\n<script setup lang=\"ts\">\r\n  await supabase.from('posts').select('id');\r\n</script>\r\n"
    data = src.encode()
    [call] = scanned(data, "vue").calls
    offset = data.index(b"from(")
    assert call.start == SourceText(data).position(offset) == Position(5, 18)
    assert data[call.table.span.start : call.table.span.end] == b"posts"
    assert call.code == "await supabase.from('posts').select('id');"


def test_columns_count_characters_before_a_block_on_its_first_line():
    # a blanked multi-byte character is one space per byte in the scanned copy: the column must not grow
    src = "\ufeff<p>\u00e9\u2615\U0001f600</p><script>await supabase.from('posts').select('id, topic_cluster')</script>\n"
    data = src.encode()
    [call] = scanned(data, "astro").calls
    original = SourceText(data)
    assert call.start == original.position(data.index(b"from("))
    assert call.start.column == src.index("from(")  # the BOM is not a column
    [column] = [c for c in call.columns.select if c.name == "topic_cluster"]
    assert column.position == original.position(data.index(b"topic_cluster"))
    assert call.end == original.position(data.index(b"</script>"))


def test_a_block_that_does_not_parse_is_a_parse_error_and_still_scanned():
    src = """<script setup lang="ts">
const { data } = await supabase.from('posts').select('id');
function broken( {
</script>
<template><p>fine</p></template>
"""
    result = scanned(src, "vue")
    assert result.parse_error
    assert [c.table.name for c in result.calls] == ["posts"]
    assert error_count(src.encode(), "vue") > 0


def test_a_script_ended_by_a_string_holding_its_end_tag_is_a_parse_error():
    src = "<script setup>\nconst html = '</script>';\nconst { data } = await supabase.from('posts').select();\n</script>\n"
    result = scanned(src, "vue")
    assert result.parse_error
    # past the end tag is markup to HTML: the query there is still found, flagged for a person
    assert [(c.table.name, c.in_error_region) for c in result.calls] == [("posts", True)]


def test_error_count_reads_script_blocks_only():
    clean = b"<template><p>{{ a < }} } ) ]</p></template>\n<script setup lang=\"ts\">const a: number = 1;</script>\n"
    assert error_count(clean, "vue") == 0
    assert error_count(b"<p>{a} ) ] </p>\n<script>let a = ;</script>", "svelte") > 0
    assert error_count(b"---\nconst a: = 1;\n---\n<p/>", "astro") > 0
    assert error_count(b"<p>no scripts at all</p>", "astro") == 0


def test_a_component_without_scripts_has_only_its_markup_queries():
    result = scanned("<template><p>supabase.from('posts').select('id')</p><!-- db.from('tweets') --></template>\n", "vue")
    assert [(c.table.name, c.in_error_region) for c in result.calls] == [("posts", True)] and not result.parse_error


def test_markup_mentions_that_are_not_client_queries_are_not_calls():
    src = "<template><p>{{ Array.from(rows) }} {{ supabase.storage.from('b').getPublicUrl(p) }}</p></template>\n<style>a { content: 'supabase.from(\"x\")' }</style>\n"
    assert scanned(src, "vue").calls == ()


def test_a_module_cut_out_of_the_file_is_placed_back_exactly():
    """Each module is parsed in a copy cut to its blocks: every span and position moved back must
    equal what a scan of the whole file with everything else blanked finds."""
    sources = [(p.read_bytes(), p.suffix[1:]) for p in sorted((FIXTURES / "components").rglob("*.*"))]
    sources += [(VUE.encode(), "vue"), (CRLF_VUE.encode(), "vue"), (SVELTE.encode(), "svelte"), (ASTRO.encode(), "astro")]
    checked = 0
    for data, language in sources:
        if language not in ("vue", "svelte", "astro"):
            continue
        whole = []
        for unit in units(data, language):
            found, _ = typescript.scan(masked(data, unit.blocks), path=f"x.{language}", language=unit.grammar)
            whole += [dataclasses.replace(c, language=language) for c in found]
        got = [c for c in scanned(data, language).calls if c.client != "(markup)"]
        assert got == sorted((_in_component(c) for c in whole), key=lambda c: c.span.start)
        checked += len(got)
    assert checked > 15


def test_many_scripts_and_stray_end_tags_cost_linear_time():
    def page(scripts: int) -> bytes:
        return b"<p>text</p>\n<script>\nawait supabase.from('posts').select('id')\n</script>\n" * scripts

    def seconds(scripts: int) -> float:
        start = time.perf_counter()
        assert len(scanned(page(scripts), "astro").calls) == scripts
        return time.perf_counter() - start

    seconds(20)  # warm up: the grammar loads once
    small, large = seconds(250), seconds(1_000)
    assert large < 10 * small + 0.5  # 4x the scripts: 4x the time, not 16x

    def stray(tags: int) -> float:
        start = time.perf_counter()
        assert blocks(b"<b>{#if x}" + b"<a>" * tags + b"</b>" * tags + b"{/if}</b><script>a</script>", "svelte")
        return time.perf_counter() - start

    small, large = stray(5_000), stray(20_000)
    assert large < 10 * small + 0.5


# -- the whole pipeline ---------------------------------------------------------

CRLF_VUE = (
    "\ufeff<script setup lang=\"ts\">\r\n"
    "import { supabase } from '../lib/db';\r\n"
    "const { data } = await supabase\r\n"
    "  .from('content_metadata')\r\n"
    "  .select('id, topic_cluster')\r\n"
    "  .eq('status', 'queued');\r\n"
    "</script>\r\n"
    "\r\n"
    "<template>\r\n"
    "  <p v-for=\"row in data\">{{ row.topic_cluster }} supabase.from('tweets')</p>\r\n"
    "</template>\r\n"
)
SVELTE = """<script context="module">
  const METRICS = 'outcomes';
</script>

<script lang="ts">
  import { supabase } from '../lib/db';
  export let id: string;
  $: metrics = supabase.from(METRICS).select('likes_count').eq('tweet_id', id);
</script>

<p>{'<script>'}</p>
"""
ASTRO = """---
import { supabase } from '../lib/db';
const { data } = await supabase.from('tweets').select('tweet_id, content');
---
<ul>{data?.map((t) => <li>{t.content}</li>)}</ul>
<script>
  import { supabase } from '../lib/db';
  await supabase.from('tweet_metrics').select('impressions_count');
</script>
"""


@pytest.fixture
def app(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/Queue.vue").write_bytes(CRLF_VUE.encode())
    (tmp_path / "src/Metrics.svelte").write_text(SVELTE)
    (tmp_path / "src/index.astro").write_text(ASTRO)
    return tmp_path


def test_patch_of_components_applies_with_git_and_rewritten_files_parse(app):
    proc = run_cli_bytes("patch", "src", "--rules", str(RULES), cwd=app)
    assert proc.returncode == 0, proc.stderr
    patch = proc.stdout
    assert b"\n-  .from('content_metadata')\r\n" in patch and b"\n+  .from('content_queue')\r\n" in patch
    assert b"+  .select('id, topic_cluster:raw_topic')\r\n" in patch
    # a component's constant may be named by its markup too: it is left to a person
    assert b"const METRICS = 'engagement_metrics'" not in patch
    # lines the rewrite takes past 80 columns are broken one link per line, as Prettier breaks them
    assert b"+const { data } = await supabase\n+  .from('posted_content')\n+  .select('tweet_id, content');" in patch
    assert b"+  await supabase\n+    .from('engagement_metrics')\n+    .select('impressions_count:impressions');" in patch
    (app / "p.diff").write_bytes(patch)
    subprocess.run(["git", "init", "-q"], cwd=app, check=True)
    check = subprocess.run(["git", "apply", "--check", "p.diff"], cwd=app, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    subprocess.run(["git", "apply", "p.diff"], cwd=app, check=True)
    tables = {}
    for name, language in (("Queue.vue", "vue"), ("Metrics.svelte", "svelte"), ("index.astro", "astro")):
        data = (app / "src" / name).read_bytes()
        assert error_count(data, language) == 0, name
        tables[name] = [c.table.name for c in scan_source(data, path=name, language=language).calls]
    assert tables == {
        "Queue.vue": ["content_queue", "tweets"],  # the template's text query: found, never touched
        "Metrics.svelte": ["outcomes"],
        "index.astro": ["posted_content", "engagement_metrics"],
    }
    # the template is never touched
    assert b"{{ row.topic_cluster }} supabase.from('tweets')</p>\r\n" in (app / "src/Queue.vue").read_bytes()


def test_apply_edits_components_in_place(app):
    proc = run_cli("patch", "src", "--rules", str(RULES), "--apply", cwd=app)
    assert proc.returncode == 0, proc.stderr
    data = (app / "src/Queue.vue").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf<script setup") and data.count(b"\r\n") == CRLF_VUE.count("\r\n")
    assert b"\r\n  .from('content_queue')\r\n" in data


def test_check_points_sarif_at_the_call_in_the_component(app):
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=app, check=True, capture_output=True)

    (app / "tableshift.toml").write_text(f'rules = "{RULES.as_posix()}"\npaths = ["src"]\n')
    git("init", "-q", "-b", "main")
    git("add", ".")
    assert run_cli("baseline", cwd=app).returncode == 0
    git("add", ".")
    git("commit", "-qm", "baseline")
    added = SVELTE.replace(".eq('tweet_id', id);\n", ".eq('tweet_id', id);\n  const more = supabase.from('posts').select('id');\n")
    assert "const more" in added
    (app / "src/Metrics.svelte").write_text(added)
    proc = run_cli("check", "--format", "sarif", cwd=app)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [result] = [r for r in json.loads(proc.stdout)["runs"][0]["results"] if r["ruleId"] == "legacy-table"]
    region = result["locations"][0]["physicalLocation"]["region"]
    lines = added.split("\n")
    line = next(i for i, text in enumerate(lines, 1) if "const more" in text)
    assert (region["startLine"], region["startColumn"]) == (line, lines[line - 1].index("from(") + 1)
    [replacement] = result["fixes"][0]["artifactChanges"][0]["replacements"]
    start = replacement["deletedRegion"]["byteOffset"]
    assert added.encode()[start : start + replacement["deletedRegion"]["byteLength"]] == b"posts"


def test_a_table_imported_by_a_component_is_known_as_in_a_module(tmp_path, monkeypatch):
    """Whatever the link pass knows of an import, a component knows the same as a .ts file."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src/tables.ts").write_text("export const QUEUE = 'content_metadata';\n")
    body = "import { QUEUE } from './tables';\nconst { data } = await supabase.from(QUEUE).select('id');\n"
    (tmp_path / "src/queue.ts").write_text(body)
    (tmp_path / "src/Queue.vue").write_text(f'<script setup lang="ts">\n{body}</script>\n')
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    result = engine.run(discover(["."]), None, options=engine.Options(jobs=1))
    calls = {f.path: f.calls for f in result.files}
    [in_module], [in_component] = calls["src/queue.ts"], calls["src/Queue.vue"]
    assert in_component.table == in_module.table
    assert in_component.start.line == in_module.start.line + 1


def test_components_are_discovered_with_their_own_languages(tmp_path, monkeypatch):
    for name in ("a.vue", "b.svelte", "c.astro", "d.html"):
        (tmp_path / name).write_text("")
    monkeypatch.chdir(tmp_path)
    assert {f.display: f.language for f in discover(["."])} == {"a.vue": "vue", "b.svelte": "svelte", "c.astro": "astro"}
    assert [f.language for f in discover(["a.vue"])] == ["vue"]


def test_pre_commit_hook_runs_on_every_scanned_extension():
    import yaml

    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    files = re.compile(hook["files"])
    assert "types" not in hook and "types_or" not in hook
    for extension in LANGUAGES:
        assert files.search(f"src/deep/name{extension}"), extension
        assert files.search(f"NAME{extension.upper()}"), extension
    for other in ("README.md", "a.pyi", "a.vue.orig", "a.html", "styles.css", "a.tsx/notes.txt"):
        assert not files.search(other), other


def test_a_vue_tag_ends_where_reading_its_attributes_ends():
    import random

    from tableshift.scan import components as c

    random.seed(23)
    pieces = [b"a", b"v-if", b"=", b'"', b"'", b"/", b">", b" ", b"\n", b":x", b"@click", b"<", b"`", b"{", b"}", b"=>"]
    tags = [b"<t" + b"".join(random.choice(pieces) for _ in range(random.randint(0, 14))) for _ in range(20_000)]
    tags += [b'<div a="1 > 2" b=\'x\' c=d/ e>', b"<br/>", b"<p a=/>", b"<p a= / >", b'<p a="unterminated', b"<p ==a=b", b"<p"]
    for data in tags:
        _, end, closes = c._attributes(data, 2, "vue")
        assert c._vue_tag_end(data, 2) == (end, closes), data
