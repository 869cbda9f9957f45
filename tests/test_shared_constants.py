"""Patch across files: a constant shared by modules is edited only when every use of it moves together."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import RULES
from helpers import run_cli, run_cli_bytes, write_project

TABLES = """export const TABLES = {
  QUEUE: 'content_metadata',
  POSTED: 'tweets',
} as const;
export const OUTCOMES = 'outcomes';
export type Table = (typeof TABLES)[keyof typeof TABLES];
"""
QUEUE = """import { TABLES } from './tables';
import { supabase } from './db';
export const next = () => supabase.from(TABLES.QUEUE).select('decision_id, topic_cluster').limit(1);
export const drop = (id: number) => supabase.from(TABLES.QUEUE).delete().eq('id', id);
"""
POSTED = """import { TABLES as T, OUTCOMES } from './tables';
import { supabase } from './db';
export const posted = () => supabase.from(T.POSTED).select('tweet_id');
export const outcomes = () => supabase.from(OUTCOMES).select('tweet_id');
"""


def project(root: Path, files: dict[str, str]) -> Path:
    return write_project(root, files, add=True)


def patch(root: Path, *extra: str) -> tuple[str, dict]:
    report = root.parent / f"{root.name}-coverage.json"
    proc = run_cli("patch", "--rules", str(RULES), "--report", str(report), *extra, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(report.read_text())


def applies(root: Path, diff: str) -> None:
    if not diff:
        return
    check = subprocess.run(["git", "apply", "--check", "-"], input=diff.encode(), cwd=root, capture_output=True)
    assert check.returncode == 0, check.stderr.decode()


def review(report: dict) -> dict[tuple[str, int], list[str]]:
    return {(e["file"], e["line"]): e["reasons"] for e in report["review"]}


def test_a_constant_all_of_whose_uses_move_is_edited_in_its_module(tmp_path):
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/posted.ts": POSTED})
    diff, report = patch(root)
    applies(root, diff)
    assert "-  QUEUE: 'content_metadata',\n-  POSTED: 'tweets',\n+  QUEUE: 'content_queue',\n+  POSTED: 'posted_content'," in diff
    assert "-export const OUTCOMES = 'outcomes';\n+export const OUTCOMES = 'engagement_metrics';" in diff
    # the calls keep referring to the constant; their other edits are made where they stand
    assert "supabase.from(TABLES.QUEUE).select('decision_id, topic_cluster:raw_topic')" in diff
    assert "+export const next" in diff and "from('content_queue')" not in diff
    assert report["summary"]["auto"] == report["summary"]["rewritten"] == 4
    assert report["review"] == [] and report["left_out"] == []


def test_apply_writes_the_constant_and_the_calls_and_a_second_run_has_nothing_left(tmp_path):
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/posted.ts": POSTED})
    proc = run_cli("patch", "--rules", str(RULES), "--apply", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "QUEUE: 'content_queue'" in (root / "src/tables.ts").read_text()
    assert "topic_cluster:raw_topic" in (root / "src/queue.ts").read_text()
    audit = json.loads(run_cli("audit", "-f", "json", "--rules", str(RULES), cwd=root).stdout)
    assert {c["table"] for c in audit["calls"] if c["kind"] == "table"} == {"content_queue", "posted_content", "engagement_metrics"}
    assert all(c["status"] == "ok" for c in audit["calls"])
    assert run_cli_bytes("patch", "--rules", str(RULES), cwd=root).stdout == b""


@pytest.mark.parametrize(
    ("extra", "use"),
    [
        ("console.log(`reading ${TABLES.QUEUE}`);\n", "`TABLES.QUEUE` at src/log.ts:2"),
        ("export const all = Object.values(TABLES);\n", "the object holding it, `TABLES` at src/log.ts:2"),
        ("export const same = (t: string) => t === TABLES.QUEUE;\n", "`TABLES.QUEUE` at src/log.ts:2"),
        ("export const copy = { ...TABLES };\n", "the object holding it, `TABLES` at src/log.ts:2"),
        ("export const pick = (k: 'QUEUE') => TABLES[k];\n", "the object holding it, `TABLES` at src/log.ts:2"),
        ("export const options = { event: 'INSERT', schema: 'public', table: TABLES.QUEUE };\n", "`TABLES.QUEUE` at src/log.ts:2"),
    ],
)
def test_any_other_use_keeps_the_constant_and_its_calls_go_to_review(tmp_path, extra, use):
    log = "import { TABLES } from './tables';\n" + extra
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/log.ts": log})
    diff, report = patch(root)
    applies(root, diff)
    assert "QUEUE: 'content_queue'" not in diff
    assert "src/queue.ts" not in diff  # none of the calls on it is edited either
    reasons = review(report)
    for line in (3, 4):
        [why] = [r for r in reasons[("src/queue.ts", line)] if "constant" in r]
        assert why.startswith("table name comes from constant `TABLES.QUEUE` in src/tables.ts, which is also used by ")
        assert use in why
    assert {(e["file"], e["line"]) for e in report["left_out"]} >= {("src/queue.ts", 3), ("src/queue.ts", 4)}


def test_a_realtime_subscription_on_the_constant_is_a_call_that_moves_with_the_others(tmp_path):
    sub = (
        "import { TABLES } from './tables';\n"
        "export const sub = (s: any) => s.channel('q').on('postgres_changes', { event: 'INSERT', schema: 'public', table: TABLES.QUEUE }, () => {});\n"
    )
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/sub.ts": sub})
    diff, report = patch(root)
    assert "+  QUEUE: 'content_queue'," in diff
    assert report["summary"]["rewritten"] == 3


def test_type_only_uses_and_other_members_do_not_hold_a_constant_back(tmp_path):
    types = "import type { Table } from './tables';\nimport { TABLES } from './tables';\nexport const label: Table = TABLES.POSTED;\nlet t: typeof TABLES | null = null;\n"
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/types.ts": types})
    diff, report = patch(root)
    assert "QUEUE: 'content_queue'" in diff  # TABLES.POSTED and the types are other uses of other things


def test_a_same_named_constant_of_another_module_is_another_constant(tmp_path):
    other = "export const TABLES = { QUEUE: 'jobs' } as const;\n"
    jobs = "import { TABLES } from './jobs-tables';\nexport const label = TABLES.QUEUE;\n"
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/jobs-tables.ts": other, "src/jobs.ts": jobs})
    diff, _ = patch(root)
    assert "QUEUE: 'content_queue'" in diff


def test_a_call_that_needs_review_holds_the_shared_constant_for_all(tmp_path):
    dropped = "import { TABLES } from './tables';\nimport { supabase } from './db';\nexport const old = () => supabase.from(TABLES.QUEUE).select('actual_likes');\n"
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/old.ts": dropped})
    diff, report = patch(root)
    assert "QUEUE: 'content_queue'" not in diff and "src/queue.ts" not in diff
    reasons = review(report)
    assert any("shared with a call that needs review (src/old.ts:3)" in r for r in reasons[("src/queue.ts", 3)])
    assert any("changes only when all of its calls can move" in r for r in reasons[("src/old.ts", 3)])


def test_a_selection_that_splits_a_shared_constant_leaves_it_alone(tmp_path):
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE})
    diff, report = patch(root, "--only", "reads")
    assert "QUEUE: 'content_queue'" not in diff and diff == ""
    whys = {(e["file"], e["line"]): e["why"] for e in report["left_out"]}
    assert whys[("src/queue.ts", 3)] == "the constant naming its table also serves calls outside this selection"
    assert whys[("src/queue.ts", 4)] == "--only reads"


def test_the_constant_goes_into_the_patch_of_its_group(tmp_path):
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/posted.ts": POSTED})
    proc = run_cli("patch", "--rules", str(RULES), "--split-dir", "out", cwd=root)
    assert proc.returncode == 0, proc.stderr
    queue = (root / "out/content-queue.patch").read_text()
    posted = (root / "out/posted-content.patch").read_text()
    assert "+  QUEUE: 'content_queue'," in queue and "+  POSTED" not in queue
    assert "POSTED: 'posted_content'" in posted and "QUEUE: 'content_queue'" not in posted
    for name in ("content-queue", "posted-content", "engagement"):
        applies(root, (root / f"out/{name}.patch").read_text())


def test_a_module_outside_the_scan_is_never_edited(tmp_path):
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/app/queue.ts": QUEUE.replace("./tables", "../tables").replace("./db", "../db")})
    diff, report = patch(root, "src/app")
    assert diff == ""
    [why] = [r for r in review(report)[("src/app/queue.ts", 3)] if "constant" in r]
    assert "not among the scanned files" in why


def test_a_constant_used_by_calls_in_its_own_module_and_elsewhere(tmp_path):
    own = TABLES + "import { supabase } from './db';\nexport const here = () => supabase.from(TABLES.QUEUE).select('id');\n"
    root = project(tmp_path / "app", {"src/tables.ts": own, "src/queue.ts": QUEUE})
    diff, report = patch(root)
    applies(root, diff)
    assert "QUEUE: 'content_queue'" in diff and report["summary"]["rewritten"] == 3
    # and with a use in its own module that is no call, nothing moves
    root = project(tmp_path / "b", {"src/tables.ts": own + "export const n = TABLES.QUEUE.length;\n", "src/queue.ts": QUEUE})
    diff, report = patch(root)
    assert diff == ""
    assert any("`TABLES.QUEUE.length` at src/tables.ts:9" in r for r in review(report)[("src/queue.ts", 3)])


def test_a_component_using_the_constant_in_its_markup_holds_it(tmp_path):
    vue = "<script setup lang=\"ts\">\nimport { TABLES } from './tables';\n</script>\n<template><p>{{ TABLES.QUEUE }}</p></template>\n"
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/Label.vue": vue})
    diff, report = patch(root)
    assert diff == ""
    assert any("in the component's markup" in r for r in review(report)[("src/queue.ts", 3)])


def test_commonjs_and_python_constants_across_modules(tmp_path):
    files = {
        "scripts/tables.cjs": "module.exports = { POSTS: 'posts' };\n",
        "scripts/job.cjs": "const t = require('./tables.cjs');\nconst s = require('./db.cjs');\nmodule.exports = () => s.from(t.POSTS).select('id');\n",
        "app/__init__.py": "",
        "app/tables.py": "QUEUE_TABLE = 'content_metadata'\n",
        "app/jobs.py": "from app.tables import QUEUE_TABLE\n\n\ndef run(client):\n    return client.table(QUEUE_TABLE).select('id').execute()\n",
        "app/log.py": "import app.tables as t\n\n\ndef label():\n    return f'{t.QUEUE_TABLE}'\n",
    }
    root = project(tmp_path / "app", files)
    diff, report = patch(root)
    applies(root, diff)
    assert "+module.exports = { POSTS: 'posted_content' };" in diff
    assert "app/tables.py" not in diff  # app/log.py uses it too
    [why] = [r for r in review(report)[("app/jobs.py", 5)] if "constant" in r]
    assert "`t.QUEUE_TABLE` at app/log.py:5" in why


def test_a_constants_module_edited_between_scan_and_patch_takes_its_calls_with_it(tmp_path, monkeypatch):
    from tableshift import engine, patching
    from tableshift.discover import discover
    from tableshift.report.coverage import Selection
    from tableshift.rules import load_rules

    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE})
    monkeypatch.chdir(root)
    rules = load_rules(RULES)
    result = engine.run(discover([root]), rules)
    (root / "src/tables.ts").write_text(TABLES + "// edited\n")
    outcome = patching.run(result, rules, Selection(), keep=True)
    by_file = {r.path: r for r in outcome.rewrites}
    assert by_file["src/tables.ts"].refused == "file changed since it was scanned"
    assert "src/queue.ts" not in by_file or by_file["src/queue.ts"].new == by_file["src/queue.ts"].old
    assert outcome.report["summary"]["rewritten"] == 0
    assert patching.patch_bytes(outcome) == b""


def test_a_warm_cache_sees_an_edit_to_the_constants_module_alone(tmp_path):
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE})
    cache = ["--cache-dir", str(tmp_path / "cache")]
    first, _ = patch(root, *cache)
    assert "QUEUE: 'content_queue'" in first
    (root / "src/tables.ts").write_text(TABLES + "export const also = TABLES.QUEUE;\n")
    second, report = patch(root, *cache)
    assert second == ""
    assert any("`TABLES.QUEUE` at src/tables.ts:7" in r for r in review(report)[("src/queue.ts", 3)])


def test_apply_writes_a_constant_and_its_calls_together_or_not_at_all(tmp_path):
    import os
    import stat

    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE})
    queue = root / "src" / "queue.ts"
    os.chmod(queue, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # the call's file cannot be written
    try:  # (tableshift reads the mode bits, so this holds for root too)
        proc = run_cli("patch", "--rules", str(RULES), "--apply", cwd=root)
    finally:
        os.chmod(queue, stat.S_IRUSR | stat.S_IWUSR)
    assert proc.returncode == 1
    assert (root / "src" / "tables.ts").read_text() == TABLES  # the constant waits with its calls
    assert "skipped src/tables.ts: written only with src/queue.ts" in proc.stderr
    assert "rewrote 0 calls in 0 files" in proc.stderr


@pytest.mark.parametrize(
    "other",
    [
        "const { TABLES: { QUEUE } } = require('./tables');\nconsole.log(QUEUE);\n",
        "const QUEUE = require('./tables').TABLES.QUEUE;\nconsole.log(QUEUE);\n",
        "export const later = async () => (await import('./tables')).TABLES.QUEUE === 'x';\n",
        "import t = require('./tables');\nconsole.log(t.TABLES.QUEUE);\n",
        "import { TABLES } from './tables';\nexport = TABLES;\n",
        "import t = require('./tables');\nexport = t;\n",
    ],
)
def test_loads_tableshift_does_not_follow_hold_the_constant(tmp_path, other):
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/other.ts": other})
    diff, report = patch(root)
    assert "QUEUE: 'content_queue'" not in diff and "src/queue.ts" not in diff
    assert any("src/other.ts" in r for r in review(report)[("src/queue.ts", 3)])


@pytest.mark.parametrize(
    "other",
    [
        "def g():\n    from app.tables import QUEUE_TABLE\n    return QUEUE_TABLE == 'x'\n",
        "def g():\n    from app import tables\n    return tables.QUEUE_TABLE\n",
        "import app.tables\n\n\ndef g():\n    return app.tables.QUEUE_TABLE\n",
        "from app.tables import *\n\n\ndef g():\n    return QUEUE_TABLE\n",
        "from app import tables\n\n\ndef g():\n    return getattr(tables, 'QUEUE_TABLE')\n",
        "import app\n\n\ndef g():\n    return app.tables.QUEUE_TABLE\n",
        "import app\n\n\ndef g():\n    return app.Q\n",
        "import app as a\n\n\ndef g():\n    return a.Q == 'x'\n",
        "import importlib\n\n\ndef g():\n    return importlib.import_module('app.tables').QUEUE_TABLE\n",
        "def g():\n    return __import__('app.tables', fromlist=['QUEUE_TABLE']).QUEUE_TABLE\n",
        "from importlib import import_module\n\n\ndef g():\n    return import_module('app.tables').QUEUE_TABLE\n",
    ],
)
def test_python_imports_tableshift_does_not_follow_hold_the_constant(tmp_path, other):
    files = {
        "app/__init__.py": "from .tables import QUEUE_TABLE as Q\n",
        "app/tables.py": "QUEUE_TABLE = 'content_metadata'\n",
        "app/jobs.py": "from app.tables import QUEUE_TABLE\n\n\ndef run(client):\n    return client.table(QUEUE_TABLE).select('id').execute()\n",
        "app/other.py": other,
    }
    root = project(tmp_path / "app", files)
    diff, report = patch(root)
    assert "app/tables.py" not in diff
    assert any("app/other.py" in r for r in review(report)[("app/jobs.py", 5)])


@pytest.mark.parametrize("where", ["from a sub-package", "through a link"])
def test_constants_move_when_the_files_are_named_from_elsewhere(tmp_path, where):
    """The link pass names a module relative to the repository; discovery names it as it was asked
    for (`../db/src/tables.ts`, or under a linked folder). The constant moves all the same."""
    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/posted.ts": POSTED})
    expected, _ = patch(root)
    assert "QUEUE: 'content_queue'" in expected
    if where == "from a sub-package":
        (root / "tools").mkdir()
        cwd, args = root / "tools", ["../src"]
    else:
        (tmp_path / "link").symlink_to(root)
        cwd, args = tmp_path, ["link"]
    proc = run_cli("patch", "--rules", str(RULES), *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "QUEUE: 'content_queue'" in proc.stdout and "OUTCOMES = 'engagement_metrics'" in proc.stdout
    assert "rewrote 4 calls in 2 files" in proc.stderr  # the module, and the one file with edits of its own


TITLES = "export const POSTED_TABLE = 'tweets';\n"
BOTH = """import { TABLES } from './tables';
import { POSTED_TABLE } from './names';
import { supabase } from './db';
export const next = () => supabase.from(TABLES.QUEUE).select('decision_id, topic_cluster').limit(1);
export const posted = () => supabase.from(POSTED_TABLE).select('tweet_id');
"""


def test_apply_writes_groups_that_share_a_file_together_or_not_at_all(tmp_path):
    """A file relying on the constants of two modules joins their groups: when one module cannot
    be written, neither is the other (its constant would move without the file's other edits)."""
    import os
    import stat

    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/names.ts": TITLES, "src/both.ts": BOTH})
    diff, _ = patch(root)
    assert "POSTED_TABLE = 'posted_content'" in diff and "QUEUE: 'content_queue'" in diff
    names = root / "src" / "names.ts"
    os.chmod(names, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    try:
        proc = run_cli("patch", "--rules", str(RULES), "--apply", cwd=root)
    finally:
        os.chmod(names, stat.S_IRUSR | stat.S_IWUSR)
    assert proc.returncode == 1
    assert (root / "src" / "tables.ts").read_text() == TABLES
    assert (root / "src" / "both.ts").read_text() == BOTH
    # the module that cannot be written says why in its own words
    assert "skipped src/names.ts: file is read-only" in proc.stderr
    assert "skipped src/tables.ts: written only with src/names.ts" in proc.stderr


def test_a_module_changed_after_the_scan_leaves_no_group_patch_behind(tmp_path, monkeypatch):
    from tableshift import engine, patching
    from tableshift.discover import discover
    from tableshift.report.coverage import Selection
    from tableshift.rules import load_rules

    root = project(tmp_path / "app", {"src/tables.ts": TABLES, "src/queue.ts": QUEUE, "src/posted.ts": POSTED})
    monkeypatch.chdir(root)
    rules = load_rules(RULES)
    result = engine.run(discover([root]), rules)
    assert set(patching.run(result, rules, Selection(), split=True).groups) == {"content-queue", "posted-content", "engagement"}
    (root / "src/tables.ts").write_text(TABLES + "// edited\n")
    outcome = patching.run(result, rules, Selection(), split=True)
    # every call moves through the module's constants: with the module refused, no group has a patch
    assert outcome.groups == {}
