"""The engine around the scanner: limits, parallel runs, and a cache that is never trusted blindly."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import pytest

from tableshift import cores, engine
from tableshift.cache import Cache
from tableshift.discover import discover
from tableshift.report import audit
from tableshift.report.render import to_json
from tableshift.rules import load_rules

from conftest import FIXTURES, RULES


@pytest.fixture
def tree(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    for i in range(40):
        (tmp_path / "src" / f"m{i}.ts").write_text(
            f"export const f{i} = () => supabase.from('{'tweets' if i % 2 else 'profiles'}').select('id').eq('n', {i});\n"
        )
    (tmp_path / "src" / "big.ts").write_text("// x\n" * 50_000 + "supabase.from('tweets').select();\n")
    (tmp_path / "src" / "bundle.min.js").write_text("var a=1;" * 5_000 + "x.from('tweets').select();")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    return tmp_path


def _json(result, rules) -> str:
    return to_json(audit.build(result, rules))


def test_large_and_minified_files_are_skipped_and_listed(tree):
    rules = load_rules(RULES)
    report = audit.build(engine.run(discover(["."]), rules, options=engine.Options(max_file_size=100_000)), rules)
    skipped = {s["path"]: s["reason"] for s in report["files"]["skipped"]}
    assert skipped["src/big.ts"].startswith("larger than 100,000 bytes")
    assert skipped["src/bundle.min.js"].startswith("minified or generated")
    assert report["summary"]["skipped_files"] == 2


def test_parallel_and_serial_runs_agree(tree):
    rules = load_rules(RULES)
    serial = _json(engine.run(discover(["."]), rules, options=engine.Options(jobs=1)), rules)
    parallel = _json(engine.run(discover(["."]), rules, options=engine.Options(jobs=2)), rules)
    assert serial == parallel


def test_cache_hits_give_the_same_report_and_a_changed_file_is_rescanned(tree):
    rules = load_rules(RULES)
    options = engine.Options(jobs=1, cache_dir=tree / ".tableshift-cache")
    cold = _json(engine.run(discover(["."]), rules, options=options), rules)
    assert (tree / ".tableshift-cache" / ".gitignore").is_file()
    warm = _json(engine.run(discover(["."]), rules, options=options), rules)
    assert cold == warm
    (tree / "src" / "m1.ts").write_text("export const g = () => supabase.from('posts').delete();\n")
    changed = audit.build(engine.run(discover(["."]), rules, options=options), rules)
    assert [c["table"] for c in changed["calls"] if c["file"] == "src/m1.ts"] == ["posts"]


def _entries(cache_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(cache_dir / "cache.sqlite")


def test_tampered_or_foreign_entries_are_ignored_and_rewritten(tree):
    rules = load_rules(RULES)
    cache_dir = tree / ".tableshift-cache"
    options = engine.Options(jobs=1, cache_dir=cache_dir)
    expected = _json(engine.run(discover(["."]), rules, options=options), rules)
    with _entries(cache_dir) as db:
        db.execute("UPDATE entries_v2 SET value = X'00'")  # corrupt every entry
    assert _json(engine.run(discover(["."]), rules, options=options), rules) == expected
    # an entry signed with another key (a cache planted in a checkout) is never unpickled
    planted = Cache(cache_dir, rules_key=rules.digest, key=b"k" * 32)
    key = planted.key("src/m1.ts", "x")
    planted.put(key, b"\x80\x04K\x01.")
    planted.flush()
    mine = Cache(cache_dir, rules_key=rules.digest)
    assert mine.get(key) is None
    assert _json(engine.run(discover(["."]), rules, options=options), rules) == expected


def test_corrupt_cache_file_is_replaced(tree):
    rules = load_rules(RULES)
    cache_dir = tree / ".tableshift-cache"
    cache_dir.mkdir()
    (cache_dir / "cache.sqlite").write_bytes(b"this is not a database" * 100)
    options = engine.Options(jobs=1, cache_dir=cache_dir)
    first = _json(engine.run(discover(["."]), rules, options=options), rules)
    assert first == _json(engine.run(discover(["."]), rules, options=options), rules)


def test_a_cache_file_found_damaged_during_a_run_is_started_over(tree):
    """The cache is written without fsync: a crash of the system may leave a torn page that opening
    the file does not notice. Met during a run, it means no cache for that run (the same report)
    and no file left behind, so that the next run starts over instead of failing on it again."""
    rules = load_rules(RULES)
    cache_dir = tree / ".tableshift-cache"
    options = engine.Options(jobs=1, cache_dir=cache_dir)
    expected = _json(engine.run(discover(["."]), rules, options=options), rules)
    path = cache_dir / "cache.sqlite"
    with _entries(cache_dir) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'stats_v1'").fetchone()[0]
    data = bytearray(path.read_bytes())
    data[(root - 1) * size : root * size] = b"\xa5" * size
    path.write_bytes(bytes(data))
    with _entries(cache_dir) as db:
        assert db.execute("SELECT count(*) FROM entries_v2").fetchone()[0] > 0  # opening it finds nothing wrong
    assert _json(engine.run(discover(["."]), rules, options=options), rules) == expected
    assert not path.exists()
    assert _json(engine.run(discover(["."]), rules, options=options), rules) == expected
    with _entries(cache_dir) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM stats_v1").fetchone()[0] > 0


def test_a_cache_another_run_keeps_locked_is_left_alone(tree, monkeypatch):
    """A cache locked by another run for longer than SQLite waits is not a corrupt one: this run goes
    on without it, and the file stays."""
    import tableshift.cache as cache_module

    rules = load_rules(RULES)
    cache_dir = tree / ".tableshift-cache"
    engine.run(discover(["."]), rules, options=engine.Options(jobs=1, cache_dir=cache_dir))
    before = (cache_dir / "cache.sqlite").read_bytes()

    class Locked:
        def __init__(self, db):
            self.db = db

        def execute(self, sql, *args):
            if sql.startswith("SELECT count(*)"):
                raise sqlite3.OperationalError("database is locked")
            return self.db.execute(sql, *args)

    connected = cache_module._connected
    monkeypatch.setattr(cache_module, "_connected", lambda path: Locked(connected(path)))
    assert not Cache(cache_dir, rules_key=rules.digest).enabled
    assert (cache_dir / "cache.sqlite").read_bytes() == before


def test_other_rules_do_not_share_entries(tree):
    rules = load_rules(RULES)
    other = load_rules(FIXTURES.parent / "rules" / "content-consolidation.toml")
    assert Cache(tree / "c", rules_key=rules.digest).key("a", "b") == Cache(tree / "c", rules_key=other.digest).key("a", "b")
    assert Cache(tree / "c", rules_key="x").key("a", "b") != Cache(tree / "c", rules_key="y").key("a", "b")


def test_entries_unused_for_a_month_are_pruned(tree):
    rules = load_rules(RULES)
    cache = Cache(tree / "c", rules_key=rules.digest)
    for i in range(5):
        cache.put(f"old{i}", b"x")
    cache.flush()
    with _entries(tree / "c") as db:
        db.execute("UPDATE entries_v2 SET used = 0")
    fresh = Cache(tree / "c", rules_key=rules.digest)
    fresh.put("new", b"y")
    fresh.prune()
    with _entries(tree / "c") as db:
        assert [k for (k,) in db.execute("SELECT key FROM entries_v2")] == ["new"]


def test_entries_are_marked_once_a_day_and_swept_once_a_day(tree):
    rules = load_rules(RULES)
    cache = Cache(tree / "c", rules_key=rules.digest)
    cache.put("kept", b"x")
    cache.put("stale", b"x")
    cache.prune()
    with _entries(tree / "c") as db:
        marked = dict(db.execute("SELECT key, used FROM entries_v2"))
        db.execute("UPDATE entries_v2 SET used = 0 WHERE key = 'stale'")
    again = Cache(tree / "c", rules_key=rules.digest)
    again.get("kept")
    again.prune()  # swept already today: the stale entry waits for tomorrow's sweep
    with _entries(tree / "c") as db:
        assert dict(db.execute("SELECT key, used FROM entries_v2")) == {"kept": marked["kept"], "stale": 0}
        db.execute("UPDATE meta_v1 SET value = value - 2 * 86400 WHERE name = 'pruned'")  # the last sweep, two days ago
        db.execute("UPDATE entries_v2 SET used = used - 2 * 86400 WHERE key = 'kept'")
    later = Cache(tree / "c", rules_key=rules.digest)
    later.get("kept")
    later.prune()
    with _entries(tree / "c") as db:
        rows = dict(db.execute("SELECT key, used FROM entries_v2"))
    assert list(rows) == ["kept"] and rows["kept"] >= marked["kept"]  # marked again, the stale one gone


def _reads(monkeypatch) -> list[str]:
    """The files the first pass reads, by name (it reads through `tableshift.reading`, the scan
    through `fsutil.read_bytes`)."""
    from tableshift import reading as first_pass

    seen: list[str] = []
    real, read = Path.read_bytes, engine.read_bytes

    def counting(self: Path) -> bytes:
        seen.append(self.name)
        return real(self)

    def reading(path, size=-1) -> bytes:  # type: ignore[no-untyped-def]
        seen.append(Path(path).name)
        return read(path, size)

    monkeypatch.setattr(Path, "read_bytes", counting)
    monkeypatch.setattr(engine, "read_bytes", reading)
    monkeypatch.setattr(first_pass, "read_bytes", reading)
    return seen


def test_a_warm_run_reads_no_unchanged_file_and_sees_every_edit(tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(engine._StatIndex, "RACY_NS", 0)  # the test's edits come within a tick
    (tmp_path / "a.ts").write_text("export const a = () => supabase.from('posts').select('id');\n")
    (tmp_path / "b.ts").write_text("export const b = 1;\n")
    options = engine.Options(cache_dir=tmp_path / "cache")
    tables = lambda: [c.table.name for f in engine.run(discover(["."]), None, options=options).files for c in f.calls]  # noqa: E731
    assert tables() == ["posts"]
    seen = _reads(monkeypatch)
    assert tables() == ["posts"] and [name for name in seen if name.endswith(".ts")] == []  # the stat index and the cache answer
    # same size, and the mtime put back: the ctime still tells
    path = tmp_path / "a.ts"
    before = path.stat()
    path.write_text(path.read_text().replace("posts", "tweet"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert tables() == ["tweet"]
    (tmp_path / "b.ts").write_text("export const b = () => supabase.from('outcomes').select('id');\n")
    assert tables() == ["tweet", "outcomes"]


def test_a_recent_entry_is_not_trusted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.ts").write_text("export const a = () => supabase.from('posts').select('id');\n")
    options = engine.Options(cache_dir=tmp_path / "cache")
    engine.run(discover(["."]), None, options=options)
    seen = _reads(monkeypatch)
    engine.run(discover(["."]), None, options=options)
    assert "a.ts" in seen  # written within the racy window: read again


def test_workers_follow_the_cores_a_container_really_has(monkeypatch):
    # a 2-CPU quota on a host of 64: as many workers as ast-grep's threads, not 64
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda _: set(range(64)), raising=False)
    monkeypatch.setattr(engine, "_cgroup_quota", lambda: 1.5)
    assert engine.usable_cores() == 2
    assert engine._Work(None, 0, hint=1000).workers == 2
    monkeypatch.setattr(engine, "_cgroup_quota", lambda: None)
    monkeypatch.setattr(engine.os, "sched_getaffinity", lambda _: {0, 3, 5}, raising=False)
    assert engine.usable_cores() == 3  # pinned to three cores (taskset)
    assert cores.v2_quota("200000 100000\n") == 2.0 and cores.v2_quota("max 100000\n") is None
    assert cores.v2_quota("garbage") is None


def test_a_signal_reaching_a_worker_before_its_initializer_neither_kills_it_nor_breaks_the_pool(tmp_path, monkeypatch):
    """Ctrl-C reaches the whole process group, new workers included: one that gets it before its
    initializer has set SIGINT aside must not die of it (the pool would break, and the run end in
    an internal error instead of "interrupted"). The main process holds both signals back while
    it forks, so the worker starts with them blocked until its initializer is done."""
    import os
    import signal

    from tableshift.discover import SourceFile

    initialise = engine._init_worker

    def signalled_first(*args):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C came during the fork
        initialise(*args)

    monkeypatch.setattr(engine, "_init_worker", signalled_first)
    path = tmp_path / "a.ts"
    path.write_text("await supabase.from('t').select('id');\n")
    source = SourceFile(path, "a.ts", "typescript")
    [(index, (blob, _, _))] = list(engine._pooled([([0], [source])], None, 1))
    outcome = engine._from_cache(pickle.loads(blob), False)
    assert index == 0 and outcome is not None
    assert outcome.result.error is None and [c.table.name for c in outcome.result.calls] == ["t"]  # not "the parser crashed"


def test_a_file_is_read_whole_whatever_size_it_was_said_to_have(tmp_path):
    from tableshift.fsutil import read_bytes

    data = bytes(range(256)) * 1000
    path = tmp_path / "a.ts"
    path.write_bytes(data)
    assert read_bytes(path) == data
    for size in (0, 1, 255, len(data) - 1, len(data), len(data) + 1, 10 * len(data)):  # grown, as said, shrunk
        assert read_bytes(path, size) == data, size
    (tmp_path / "empty.ts").write_bytes(b"")
    assert read_bytes(tmp_path / "empty.ts") == b"" and read_bytes(tmp_path / "empty.ts", 5) == b""
    for missing in (tmp_path / "gone.ts", tmp_path):
        with pytest.raises(OSError) as raised:
            read_bytes(missing)
        with pytest.raises(OSError) as expected:
            missing.read_bytes()
        assert raised.value.strerror == expected.value.strerror


def test_a_bounded_read_stops_one_byte_past_its_cap_and_says_why_it_read_nothing(tmp_path):
    import os

    from tableshift.fsutil import read_fd
    from tableshift.link.linker import read_bounded

    data = bytes(range(256)) * 1000
    path = tmp_path / "a.ts"
    path.write_bytes(data)
    for size in (0, 100, len(data)):  # what a stat said, before the file grew or as it is
        for cap in (1, 100, 101, len(data), len(data) + 1):
            fd = os.open(path, os.O_RDONLY)
            try:
                assert read_fd(fd, size, cap) == data[:cap], (size, cap)
            finally:
                os.close(fd)
    assert read_bounded(path, len(data)) == data
    assert read_bounded(path, len(data) - 1) == f"larger than {len(data) - 1:,} bytes (--max-file-size)"
    assert read_bounded(tmp_path, 10) == "Is a directory"  # as `open()` refused it
    assert read_bounded(tmp_path / "gone.ts", 10) == "No such file or directory"


def test_batches_shrink_to_one_file_as_the_sources_run_out(monkeypatch):
    """The workers take batches in order: the pool starts with one for each worker (the first pass
    may read hundreds of files before it has another), and the last ones, of one file each, end
    together (batches of eight to the end left one of two workers alone with the last one, up to
    45 ms on capgo)."""
    from tableshift.discover import SourceFile

    sent: list[list[str]] = []
    monkeypatch.setattr(engine, "_pool", lambda *args: object())
    monkeypatch.setattr(engine, "_submit_held", lambda pool, files: sent.append([f.display for f in files]))
    work = engine._Work(None, 2, hint=1200)
    added = [f"f{i}.ts" for i in range(0, 1200, 3)]  # a third of the files may hold calls
    for name in added:
        work.add(int(name[1:-3]), SourceFile(Path(name), name, "typescript"))
    sizes = [len(batch) for batch in sent]
    assert [name for batch in sent for name in batch] == added and not work.todo  # all sent, in order
    first = engine.PARALLEL_MIN_FILES // 2
    assert sizes[:3] == [first, first, engine.BATCH_MAX] and sizes[-8:] == [1] * 8
    assert sizes[2:] == sorted(sizes[2:], reverse=True)


def test_the_pool_prepared_in_a_thread_is_joined_before_a_fork_and_before_exit():
    """`prepare_pool` imports the pool's modules in a thread while git lists the files: a fork must
    not copy a half-done import, and the fast exit must find nothing left running."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys, threading
        from tableshift import cli, engine
        engine.usable_cores = lambda: 2
        engine.prepare_pool(0)
        started = [t.name for t in engine._PREPARING]
        pool = engine._pool(None, 2)  # joins it first
        assert not engine._PREPARING and "concurrent.futures.process" in sys.modules
        assert pool.submit(sum, [1, 2]).result() == 3
        pool.shutdown()
        engine.prepare_pool(0)  # the modules are there now: nothing to do
        assert not engine._PREPARING and threading.active_count() == 1 and cli._nothing_left()
        print(started)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['tableshift-prepare']"


def test_a_run_with_a_cache_or_on_named_files_prepares_no_pool(tmp_path, monkeypatch):
    """With a cache, a run that finds nothing changed needs no pool; named files (pre-commit) are
    not listed by git: no thread is started for either."""
    from tableshift import cli

    monkeypatch.setattr(engine, "usable_cores", lambda: 2)
    started: list[int] = []
    monkeypatch.setattr(engine, "prepare_pool", lambda jobs=0: started.append(jobs))
    monkeypatch.chdir(FIXTURES / "demo-app")
    flags = cli.RunFlags(0, False, tmp_path / "cache", 2_000_000, True)
    cli._sources(cli._inputs(None, [Path(".")], None, None, None, need_rules=False, flags=flags))
    named = next(Path("src").rglob("*.ts"))
    cli._sources(cli._inputs(None, [named], None, None, None, need_rules=False, flags=cli.RunFlags(0, True)))
    assert started == []
    cli._sources(cli._inputs(None, [Path(".")], None, None, None, need_rules=False, flags=cli.RunFlags(0, True)))
    assert started == [0]


def test_an_interrupt_while_the_pool_is_shut_down_at_the_end_is_raised_not_lost(tmp_path, monkeypatch):
    """The pool is shut down once every file is in. A Ctrl-C (or SIGTERM) then used to come while a
    generator was being finalized, where Python prints "Exception ignored" and drops it: the run
    went on to write its report and waited for ever on an output nobody read."""
    from tableshift.discover import discover

    for i in range(2 * engine.PARALLEL_MIN_FILES):
        (tmp_path / f"f{i}.ts").write_text(f"export const f{i} = () => supabase.from('t{i}').select('id');\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(engine, "usable_cores", lambda: 2)
    kill = engine._kill
    stopped = []

    def interrupted(pool):  # type: ignore[no-untyped-def]
        kill(pool)
        stopped.append(pool)
        raise KeyboardInterrupt  # as the signal's handler raises it there

    monkeypatch.setattr(engine, "_kill", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.run(discover(["."]), None, options=engine.Options(jobs=2))
    assert stopped  # the pool was there, and was stopped
