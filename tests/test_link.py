"""The link pass: table names imported from other modules, each resolution rule and each way it breaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import run_cli, write_project

CALL = "export const q{n} = () => supabase.from({arg}).select('id');\n"


def project(root: Path, files: dict[str, str]) -> Path:
    return write_project(root, files)


def tables(root: Path, *extra: str) -> dict[tuple[str, int], dict]:
    proc = run_cli("audit", "-f", "json", *extra, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return {(c["file"], c["line"]): c for c in json.loads(proc.stdout)["calls"] if c["kind"] == "table"}


def only(root: Path, *extra: str) -> dict:
    [call] = tables(root, *extra).values()
    return call


CONSTANTS = """export const QUEUE = 'content_queue';
export const TABLES = { ISSUES: 'issues', content: { queue: 'content_metadata', posted: { done: 'posts' } } } as const;
export default { MESSAGES: 'messages' };
export enum Table { Tweets = 'tweets', Outcomes = "outcomes" }
export const FROZEN = Object.freeze({ METRICS: 'tweet_metrics' });
const PRIVATE = 'secret';
export { PRIVATE as RENAMED };
"""


@pytest.mark.parametrize(
    ("imports", "arg", "table"),
    [
        ("import { QUEUE } from './constants';", "QUEUE", "content_queue"),
        ("import { QUEUE as Q } from './constants';", "Q", "content_queue"),
        ("import { TABLES } from './constants';", "TABLES.ISSUES", "issues"),
        ("import { TABLES } from './constants';", "TABLES.content.queue", "content_metadata"),
        ("import { TABLES } from './constants';", "TABLES.content.posted.done", "posts"),
        ("import names from './constants';", "names.MESSAGES", "messages"),
        ("import * as db from './constants';", "db.TABLES.ISSUES", "issues"),
        ("import * as db from './constants';", "db.QUEUE", "content_queue"),
        ("import { Table } from './constants';", "Table.Tweets", "tweets"),
        ("import { Table } from './constants';", "Table.Outcomes", "outcomes"),
        ("import { FROZEN } from './constants';", "FROZEN.METRICS", "tweet_metrics"),
        ("import { RENAMED } from './constants';", "RENAMED", "secret"),
        ("import { QUEUE } from './constants.js';", "QUEUE", "content_queue"),  # a .js specifier naming a .ts file
        ("import { QUEUE } from './constants.ts';", "QUEUE", "content_queue"),
    ],
)
def test_es_module_names_resolve(tmp_path, imports, arg, table):
    root = project(tmp_path, {"src/constants.ts": CONSTANTS, "src/use.ts": imports + "\n" + CALL.format(n=1, arg=arg)})
    call = only(root)
    assert (call["table"], call["table_source"], call["dynamic"]) == (table, "constant", False), call


def test_reexport_chains_through_index_files(tmp_path):
    root = project(
        tmp_path,
        {
            "src/db/tables.ts": "export const POSTS = 'posts';\nexport const TWEETS = 'tweets';\n",
            "src/db/names.ts": "export { TWEETS as TWEET_TABLE } from './tables';\n",
            "src/db/index.ts": "export * from './tables';\nexport * from './names';\nexport * as all from './tables';\n",
            "src/index.ts": "export * from './db';\n",
            "src/use.ts": "import { POSTS, TWEET_TABLE, all } from '.';\n"
            + CALL.format(n=1, arg="POSTS")
            + CALL.format(n=2, arg="TWEET_TABLE")
            + CALL.format(n=3, arg="all.TWEETS"),
        },
    )
    found = tables(root)
    assert [found[("src/use.ts", line)]["table"] for line in (2, 3, 4)] == ["posts", "tweets", "tweets"]


@pytest.mark.parametrize(
    ("module", "use", "table"),
    [
        ("module.exports = { POSTS: 'posts' };", "const { POSTS } = require('./t');", "POSTS"),
        ("module.exports = { POSTS: 'posts' };", "const t = require('./t');", "t.POSTS"),
        ("exports.POSTS = 'posts';", "const { POSTS: P } = require('./t');", "P"),
        ("module.exports.POSTS = 'posts';", "const t = require('./t.js');", "t.POSTS"),
        ("module.exports = { POSTS: 'posts' };", "import t from './t';", "t.POSTS"),
    ],
)
def test_commonjs_names_resolve(tmp_path, module, use, table):
    root = project(tmp_path, {"scripts/t.js": module + "\n", "scripts/use.js": use + "\n" + CALL.format(n=1, arg=table)})
    call = only(root)
    assert (call["table"], call["dynamic"]) == ("posts", False), call


def test_a_directory_import_finds_its_index(tmp_path):
    root = project(tmp_path, {"src/names/index.js": "export const X = 'posts';\n", "src/use.mjs": "import { X } from './names';\n" + CALL.format(n=1, arg="X")})
    assert only(root)["table"] == "posts"


TSCONFIG = """{
  // comments and trailing commas are normal in tsconfig files
  "extends": "./tsconfig.base.json",
  "compilerOptions": {
    "strict": true,
  },
}
"""
TSCONFIG_BASE = """{
  "compilerOptions": {
    "baseUrl": ".",
    /* path aliases */
    "paths": { "@/*": ["src/*"], "@tables": ["src/constants/tables.ts"], },
  },
}
"""


@pytest.mark.parametrize(
    ("imports", "arg"),
    [
        ("import { POSTS } from '@/constants/tables';", "POSTS"),
        ("import { POSTS } from '@tables';", "POSTS"),
        ("import { POSTS } from 'src/constants/tables';", "POSTS"),  # baseUrl
    ],
)
def test_tsconfig_paths_and_base_url_through_extends(tmp_path, imports, arg):
    root = project(
        tmp_path,
        {
            "tsconfig.json": TSCONFIG,
            "tsconfig.base.json": TSCONFIG_BASE,
            "src/constants/tables.ts": "export const POSTS = 'posts';\n",
            "src/app/use.ts": imports + "\n" + CALL.format(n=1, arg=arg),
        },
    )
    assert only(root)["table"] == "posts"


def test_the_nearest_tsconfig_applies_in_a_monorepo(tmp_path):
    root = project(
        tmp_path,
        {
            "tsconfig.json": '{ "compilerOptions": { "paths": { "@/*": ["wrong/*"] } } }',
            "apps/web/tsconfig.json": '{ "compilerOptions": { "paths": { "@/*": ["./src/*"] } } }',
            "apps/web/src/tables.ts": "export const POSTS = 'posts';\n",
            "apps/web/src/use.ts": "import { POSTS } from '@/tables';\n" + CALL.format(n=1, arg="POSTS"),
        },
    )
    assert only(root)["table"] == "posts"


def test_workspace_packages_resolve_by_name(tmp_path):
    root = project(
        tmp_path,
        {
            "package.json": '{ "private": true, "workspaces": ["packages/*"] }',
            "packages/db/package.json": '{ "name": "@acme/db", "main": "src/index.ts" }',
            "packages/db/src/index.ts": "export * from './tables';\n",
            "packages/db/src/tables.ts": "export const TABLES = { POSTS: 'posts' } as const;\n",
            "packages/web/package.json": '{ "name": "@acme/web" }',
            "packages/web/src/use.ts": "import { TABLES } from '@acme/db';\nimport { TABLES as T2 } from '@acme/db/src/tables';\n"
            + CALL.format(n=1, arg="TABLES.POSTS")
            + CALL.format(n=2, arg="T2.POSTS"),
        },
    )
    assert {c["table"] for c in tables(root).values()} == {"posts"}


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({"src/use.ts": "import { X } from './missing';\n"}, "not resolved: no file 'src/missing'"),
        (
            {"src/a.ts": "export { X } from './b';\n", "src/b.ts": "export { X } from './a';\n", "src/use.ts": "import { X } from './a';\n"},
            "not resolved: import cycle through",
        ),
        ({"src/t.ts": "export const X = { a: 'b' };\n", "src/use.ts": "import { X } from './t';\n"}, "is an object"),
        ({"src/t.ts": "export let X = 'posts';\n", "src/use.ts": "import { X } from './t';\n"}, "not a string constant"),
        ({"src/t.ts": "export const Y = 'posts';\n", "src/use.ts": "import { X } from './t';\n"}, "'src/t.ts' exports no `X`"),
        ({"src/use.ts": "import { X } from 'lodash';\n"}, "'lodash' is a package outside the repository"),
        ({"src/use.ts": "import { X } from '../../../outside';\n"}, "points outside the repository"),
        ({"tsconfig.json": "{ not json", "src/use.ts": "import { X } from '@/t';\n"}, "tsconfig.json: does not parse"),
        ({"tsconfig.json": '{ "compilerOptions": { "paths": { "@/*": ["../elsewhere/*"] } } }', "src/use.ts": "import { X } from '@/t';\n"}, "no file does"),
    ],
)
def test_a_broken_link_leaves_the_call_dynamic_and_says_why(tmp_path, files, reason):
    files = dict(files)
    files["src/use.ts"] += CALL.format(n=1, arg="X")
    call = only(project(tmp_path / "repo", files))
    assert call["dynamic"] is True and call["table"] is None
    assert any(reason in r for r in call["reasons"]), call["reasons"]


def test_a_non_literal_require_is_not_followed(tmp_path):
    root = project(tmp_path, {"src/use.js": "const t = require(process.env.T);\n" + CALL.format(n=1, arg="t.POSTS")})
    call = only(root)
    assert call["dynamic"] is True


def test_a_same_named_constant_in_another_module_is_another_constant(tmp_path):
    root = project(
        tmp_path,
        {
            "src/db/tables.ts": "export const TABLES = { A: 'posts' };\n",
            "src/jobs/tables.ts": "export const TABLES = { A: 'tweets' };\n",
            "src/db/use.ts": "import { TABLES } from './tables';\n" + CALL.format(n=1, arg="TABLES.A"),
            "src/jobs/use.ts": "import { TABLES } from './tables';\n" + CALL.format(n=1, arg="TABLES.A"),
        },
    )
    found = tables(root)
    assert found[("src/db/use.ts", 2)]["table"] == "posts" and found[("src/jobs/use.ts", 2)]["table"] == "tweets"


def test_helper_call_sites_pass_imported_constants_as_candidates(tmp_path):
    root = project(
        tmp_path,
        {
            "src/tables.ts": "export const TABLES = { POSTS: 'posts', TWEETS: 'tweets' } as const;\n",
            "src/helper.ts": "import { TABLES } from './tables';\n"
            "export async function rows(table: string) { return supabase.from(table).select('id'); }\n"
            "rows(TABLES.POSTS);\nrows(TABLES.TWEETS);\nrows('outcomes');\n",
        },
    )
    call = only(root)
    assert call["dynamic"] is True
    assert sorted(call["candidates"]) == ["outcomes", "posts", "tweets"]


def test_an_edit_to_the_constants_module_alone_changes_verdicts_on_a_warm_cache(tmp_path):
    root = project(tmp_path, {"src/tables.ts": "export const T = 'posts';\n", "src/use.ts": "import { T } from './tables';\n" + CALL.format(n=1, arg="T")})
    assert only(root)["table"] == "posts"
    assert only(root)["table"] == "posts"  # warm
    (root / "src/tables.ts").write_text("export const T = 'tweets';\n")
    assert only(root)["table"] == "tweets"


HELPERS = {
    "src/constants.js": "export const TABLES = { POSTS: 'posts', ISSUES: 'issues' };\n",
    "src/helpers/db.js": "export async function getRowsByTable(table, limit) {\n"
    "  return supabase.from(table).select('*').limit(limit);\n}\n"
    "export const countRows = async (client, table) => client.from(table).select('id', { count: 'exact' });\n",
    "src/helpers/index.js": "export * from './db';\n",
    "src/pages/posts.js": "import { TABLES } from '../constants';\nimport { getRowsByTable, countRows as count } from '../helpers';\n"
    "export const load = () => getRowsByTable(TABLES.POSTS, 10);\n"
    "export const total = () => count(supabase, TABLES.ISSUES);\n",
    "src/pages/other.js": "import * as helpers from '../helpers/db';\n"
    "export const load = () => helpers.getRowsByTable('outcomes', 5);\n"
    "function getRowsByTable(t) { return t; }\nexport const local = () => getRowsByTable('not_a_helper_call');\n",
}


def test_helpers_carry_their_callers_tables_from_other_files(tmp_path):
    found = tables(project(tmp_path, HELPERS))
    rows, count = found[("src/helpers/db.js", 2)], found[("src/helpers/db.js", 4)]
    assert sorted(rows["candidates"]) == ["outcomes", "posts"]
    assert "called from src/pages/posts.js:3 with `TABLES.POSTS`" in rows["reasons"]
    assert "called from src/pages/other.js:2 with `'outcomes'`" in rows["reasons"]
    assert count["candidates"] == ["issues"]


def test_a_helper_call_site_is_a_use_of_the_table_it_passes(tmp_path):
    proc = run_cli("audit", "-f", "json", cwd=project(tmp_path, HELPERS))
    sites = [c for c in json.loads(proc.stdout)["calls"] if c["kind"] == "helper"]
    assert sorted((c["file"], c["line"], tuple(c["candidates"])) for c in sites) == [
        ("src/pages/other.js", 2, ("outcomes",)),
        ("src/pages/posts.js", 3, ("posts",)),
        ("src/pages/posts.js", 4, ("issues",)),
    ]


def test_the_gate_sees_a_legacy_table_passed_to_a_helper(tmp_path):
    from conftest import RULES

    files = dict(HELPERS)
    files["tableshift.toml"] = f'rules = "{RULES.as_posix()}"\n'
    root = project(tmp_path, files)
    assert run_cli("baseline", cwd=root).returncode == 0
    (root / "src/pages/new.js").write_text("import { getRowsByTable } from '../helpers';\nexport const f = () => getRowsByTable('tweets', 1);\n")
    proc = run_cli("check", cwd=root)
    assert proc.returncode == 0 and "src/pages/new.js:2:" in proc.stdout and "warning" in proc.stdout
    strict = run_cli("check", "--strict", cwd=root)
    assert strict.returncode == 1 and "src/pages/new.js:2:" in strict.stdout


PY_TABLES = '''from enum import StrEnum

QUEUE_TABLE = "content_queue"


class Tables(StrEnum):
    POSTS = "posts"
    METRICS = "tweet_metrics"
'''


@pytest.mark.parametrize(
    ("imports", "arg", "table"),
    [
        ("from app.db.tables import QUEUE_TABLE", "QUEUE_TABLE", "content_queue"),
        ("from app.db.tables import QUEUE_TABLE as Q", "Q", "content_queue"),
        ("from app.db.tables import Tables", "Tables.POSTS", "posts"),
        ("from app.db.tables import Tables", "Tables.METRICS.value", "tweet_metrics"),
        ("import app.db.tables as t", "t.QUEUE_TABLE", "content_queue"),
        ("import app.db.tables as t", "t.Tables.POSTS", "posts"),
        ("import app.db.tables", "app.db.tables.QUEUE_TABLE", "content_queue"),
        ("from app.db import tables", "tables.QUEUE_TABLE", "content_queue"),
        ("from ..db.tables import QUEUE_TABLE", "QUEUE_TABLE", "content_queue"),
        ("from app.db import QUEUE_TABLE", "QUEUE_TABLE", "content_queue"),  # re-exported by the package
    ],
)
def test_python_module_constants_and_enums_resolve(tmp_path, imports, arg, table):
    root = project(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/db/__init__.py": "from .tables import QUEUE_TABLE\n",
            "app/db/tables.py": PY_TABLES,
            "app/jobs/__init__.py": "",
            "app/jobs/run.py": f"{imports}\n\n\ndef run(supabase):\n    return supabase.table({arg}).select('id').execute()\n",
        },
    )
    call = only(root)
    assert (call["table"], call["table_source"]) == (table, "constant"), call


def test_python_packages_under_src_resolve(tmp_path):
    root = project(
        tmp_path,
        {
            "src/svc/__init__.py": "",
            "src/svc/names.py": "POSTS = 'posts'\n",
            "src/svc/job.py": "from svc.names import POSTS\n\ndef run(supabase):\n    return supabase.table(POSTS).select('id').execute()\n",
        },
    )
    assert only(root)["table"] == "posts"


def test_a_python_name_that_does_not_resolve_says_why(tmp_path):
    root = project(
        tmp_path,
        {"job.py": "from nowhere.names import POSTS\n\ndef run(supabase):\n    return supabase.table(POSTS).select('id').execute()\n"},
    )
    call = only(root)
    assert call["dynamic"] is True
    assert any("not resolved: no module 'nowhere.names' in the project" in r for r in call["reasons"]), call["reasons"]


def test_a_component_calling_a_helper_is_a_call_site(tmp_path):
    files = dict(HELPERS)
    files["src/components/Posts.vue"] = (
        "<template><p>{{ rows.length }}</p></template>\n"
        "<script setup lang=\"ts\">\nimport { getRowsByTable } from '../helpers';\n"
        "const rows = await getRowsByTable('tweets', 5);\n</script>\n"
    )
    found = tables(project(tmp_path, files))
    assert "tweets" in found[("src/helpers/db.js", 2)]["candidates"]
    proc = run_cli("audit", "-f", "json", cwd=tmp_path)
    sites = [c for c in json.loads(proc.stdout)["calls"] if c["kind"] == "helper" and c["file"].endswith(".vue")]
    assert [(c["line"], c["candidates"]) for c in sites] == [(4, ["tweets"])]


def test_python_helpers_carry_their_callers_tables_from_other_modules(tmp_path):
    from conftest import RULES

    root = project(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/consts.py": "INVOICE_TABLE = 'tweets'\n",
            "app/helpers.py": "def count_rows(client, table_name):\n    return client.table(table_name).select('id', count='exact').execute()\n",
            "app/use.py": "from .helpers import count_rows\nfrom .consts import INVOICE_TABLE\n\n\ndef run(c):\n    return count_rows(c, INVOICE_TABLE)\n",
            "app/other.py": "import app.helpers as h\n\n\ndef run(c):\n    return h.count_rows(c, 'outcomes')\n",
            "tableshift.toml": f'rules = "{RULES.as_posix()}"\n',
        },
    )
    found = tables(root)
    helper = found[("app/helpers.py", 2)]
    assert sorted(helper["candidates"]) == ["outcomes", "tweets"]
    proc = run_cli("audit", "-f", "json", cwd=root)
    sites = sorted((c["file"], c["line"], tuple(c["candidates"])) for c in json.loads(proc.stdout)["calls"] if c["kind"] == "helper")
    assert sites == [("app/other.py", 5, ("outcomes",)), ("app/use.py", 6, ("tweets",))]
    assert run_cli("check", "--strict", cwd=root).returncode == 2  # no baseline yet: made below
    assert run_cli("baseline", cwd=root).returncode == 0
    (root / "app/new.py").write_text("from .helpers import count_rows\n\n\ndef run(c):\n    return count_rows(c, 'posts')\n")
    strict = run_cli("check", "--strict", cwd=root)
    assert strict.returncode == 1 and "app/new.py:5:" in strict.stdout


def test_constants_exported_by_a_svelte_module_script_resolve(tmp_path):
    root = project(
        tmp_path,
        {
            "src/Feed.svelte": "<script context=\"module\" lang=\"ts\">\n  export const FEED_TABLE = 'tweets';\n</script>\n<p>feed</p>\n",
            "src/load.ts": "import { FEED_TABLE } from './Feed.svelte';\n" + CALL.format(n=1, arg="FEED_TABLE"),
        },
    )
    assert only(root)["table"] == "tweets"


def test_a_default_exported_helper_is_found_under_the_name_its_importer_gives_it(tmp_path):
    root = project(
        tmp_path,
        {
            "src/rows.ts": "export default async function rowsOf(table: string) {\n  return supabase.from(table).select('id');\n}\n",
            "src/page.ts": "import load from './rows';\nexport const f = () => load('tweets');\n",
        },
    )
    found = tables(root)
    assert found[("src/rows.ts", 2)]["candidates"] == ["tweets"]


def test_a_realtime_hook_destructuring_its_table_lists_its_callers_tables(tmp_path):
    root = project(
        tmp_path,
        {
            "src/hooks/useRealtime.ts": (
                "export function useRealtime({ table, event = '*' }: { table: string; event?: string }) {\n"
                "  return supabase.channel(table).on('postgres_changes', { event, schema: 'public', table }, () => {}).subscribe();\n"
                "}\n"
            ),
            "src/feed.ts": "import { useRealtime } from './hooks/useRealtime';\nexport const a = () => useRealtime({ table: 'posts' });\n",
            "src/queue.ts": "import { useRealtime } from './hooks/useRealtime';\nexport const b = () => useRealtime({ event: 'INSERT', table: 'content_queue' });\n",
        },
    )
    proc = run_cli("audit", "-f", "json", cwd=root)
    [call] = [c for c in json.loads(proc.stdout)["calls"] if c["kind"] == "realtime"]
    assert call["dynamic"] and sorted(call["candidates"]) == ["content_queue", "posts"], call
