"""The run memo: an unchanged tree's answer is the last run's, and any change to anything the
answer depends on (a scanned file, a module the link pass read outside them, a module created where
an import found none, the baseline) is seen."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tableshift import engine, memo

from conftest import RULES
from helpers import run_in_process


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(memo, "RACY_NS", 0)  # the test's files are seconds old; a real tree's are older
    monkeypatch.setattr(engine._StatIndex, "RACY_NS", 0)
    (tmp_path / "src").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "tables.ts").write_text("export const QUEUE = 'content_queue';\n")
    (tmp_path / "src" / "a.ts").write_text(
        "import { QUEUE } from '../lib/tables';\n"
        "export const a = () => supabase.from(QUEUE).select('id').eq('status', 'queued');\n"
    )
    (tmp_path / "src" / "b.ts").write_text(
        "import { POSTED } from './names';\n"
        "export const b = () => supabase.from(POSTED).select('id').eq('status', 'queued');\n"
    )
    return tmp_path


def _tables(path: Path) -> list:  # type: ignore[type-arg]
    return [(c["file"], c["table"], c["candidates"]) for c in json.loads(path.read_text())["calls"]]


class _Scans:
    """Counts the scans run (a memo hit runs none)."""

    def __init__(self, monkeypatch) -> None:  # type: ignore[no-untyped-def]
        self.count = 0
        real = engine.stream

        def stream(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.count += 1
            yield from real(*args, **kwargs)

        monkeypatch.setattr(engine, "stream", stream)


def test_an_unchanged_tree_is_answered_from_the_memo_and_every_change_is_seen(tree, monkeypatch):
    scans = _Scans(monkeypatch)
    audit = ["audit", "src", "--rules", str(RULES), "--format", "json", "-o"]
    assert run_in_process(*audit, "first.json") == 0
    assert run_in_process(*audit, "second.json") == 0
    assert scans.count == 1 and (tree / "first.json").read_bytes() == (tree / "second.json").read_bytes()
    assert ("src/a.ts", "content_queue", []) in _tables(tree / "second.json")
    # a module outside the scanned folder, read by the link pass
    (tree / "lib" / "tables.ts").write_text("export const QUEUE = 'tweets';\n")
    assert run_in_process(*audit, "third.json") == 0
    assert scans.count == 2 and ("src/a.ts", "tweets", []) in _tables(tree / "third.json")
    # a module created where an import found none
    (tree / "src" / "names.ts").write_text("export const POSTED = 'posted_tweets';\n")
    assert run_in_process(*audit, "fourth.json") == 0
    assert scans.count == 3 and ("src/b.ts", "posted_tweets", []) in _tables(tree / "fourth.json")
    # another format is another entry; the same format again is answered
    assert run_in_process("audit", "src", "--rules", str(RULES), "--format", "markdown", "-o", "a.md") == 0
    assert run_in_process("audit", "src", "--rules", str(RULES), "--format", "markdown", "-o", "b.md") == 0
    assert scans.count == 4 and (tree / "a.md").read_bytes() == (tree / "b.md").read_bytes()
    # a scanned file edited
    path = tree / "src" / "a.ts"
    path.write_text(path.read_text().replace("QUEUE)", "'engagement_metrics')"))
    assert run_in_process(*audit, "fifth.json") == 0
    assert scans.count == 5 and ("src/a.ts", "engagement_metrics", []) in _tables(tree / "fifth.json")


def test_no_memo_without_a_cache_with_v_or_when_a_file_just_changed(tree, monkeypatch):
    scans = _Scans(monkeypatch)
    for _ in range(2):
        assert run_in_process("audit", "src", "--rules", str(RULES), "--no-cache", "--format", "json", "-o", "x.json") == 0
    assert scans.count == 2
    for _ in range(2):
        assert run_in_process("-v", "audit", "src", "--rules", str(RULES), "--format", "json", "-o", "x.json") == 0
    assert scans.count == 4
    monkeypatch.setattr(memo, "RACY_NS", 10**18)  # every file "just changed": the answer is not kept
    for _ in range(2):
        assert run_in_process("audit", "src", "--rules", str(RULES), "--format", "json", "-o", "x.json") == 0
    assert scans.count == 6


def test_check_sees_a_changed_baseline_and_patch_a_changed_file(tree, monkeypatch):
    scans = _Scans(monkeypatch)
    assert run_in_process("baseline", "src", "--rules", str(RULES), "-o", "base.json") == 0
    assert run_in_process("check", "src", "--rules", str(RULES), "--baseline", "base.json", "--format", "json", "-o", "c1.json") == 0
    assert run_in_process("check", "src", "--rules", str(RULES), "--baseline", "base.json", "--format", "json", "-o", "c2.json") == 0
    assert scans.count == 2 and (tree / "c1.json").read_bytes() == (tree / "c2.json").read_bytes()
    (tree / "base.json").write_text(json.dumps({**json.loads((tree / "base.json").read_text()), "files": {}}))
    run_in_process("check", "src", "--rules", str(RULES), "--baseline", "base.json", "--format", "json", "-o", "c3.json")
    assert scans.count == 3 and (tree / "c3.json").read_bytes() != (tree / "c1.json").read_bytes()
    (tree / "base.json").write_text("{ not json")  # a broken baseline is never answered from the memo
    assert run_in_process("check", "src", "--rules", str(RULES), "--baseline", "base.json", "--format", "json", "-o", "c4.json") == 2

    assert run_in_process("patch", "src", "--rules", str(RULES), "-o", "p1.diff", "--report", "r1.json") == 0
    assert run_in_process("patch", "src", "--rules", str(RULES), "-o", "p2.diff", "--report", "r2.json") == 0
    assert scans.count == 4 and (tree / "p1.diff").read_bytes() == (tree / "p2.diff").read_bytes()
    assert (tree / "r1.json").read_bytes() == (tree / "r2.json").read_bytes()
    assert run_in_process("patch", "src", "--rules", str(RULES), "--only", "reads", "-o", "p3.diff") == 0  # another selection
    assert scans.count == 5
    (tree / "lib" / "tables.ts").write_text("export const QUEUE = 'tweets';\n")
    assert run_in_process("patch", "src", "--rules", str(RULES), "-o", "p4.diff", "--report", "r4.json") == 0
    assert scans.count == 6 and (tree / "r4.json").read_bytes() != (tree / "r1.json").read_bytes()


def test_a_tampered_memo_entry_is_not_trusted(tree, monkeypatch):
    import sqlite3

    scans = _Scans(monkeypatch)
    assert run_in_process("audit", "src", "--rules", str(RULES), "--format", "json", "-o", "x.json") == 0
    db = sqlite3.connect(tree / ".tableshift-cache" / "cache.sqlite")
    db.execute("UPDATE runs_v2 SET value = substr(value, 1, 40) || x'00' || substr(value, 42)")
    db.commit()
    db.close()
    assert run_in_process("audit", "src", "--rules", str(RULES), "--format", "json", "-o", "y.json") == 0
    assert scans.count == 2 and (tree / "x.json").read_bytes() == (tree / "y.json").read_bytes()


def test_material_is_the_same_in_every_process():
    # sets are ordered by string hashes, which each process seeds afresh
    assert memo._canonical(frozenset({"b", "a", "c"})) == ("a", "b", "c")
    assert repr(memo._canonical({"x": {2, 1}})) == repr((("x", (1, 2)),))
    assert os.fspath(Path("a")) == "a"
