"""The early process: it lists and reads what the run would, and nothing it found is used otherwise."""

from __future__ import annotations

import os
import subprocess

import pytest

from tableshift import early
from tableshift.discover import discover
from tableshift.engine import _StatIndex
from tableshift.options import Options
from tableshift.reading import stamped_verdict

FILES = {
    "src/queue.ts": "export const q = () => supabase.from('content_queue').select('id');\n",
    "src/plain.ts": "export const two = 1 + 1;\n",
    "src/types.ts": "export type Database = { public: { Tables: { a: { Row: { id: number } } } } };\n",
    "lib/app.js": "const { data } = await client.from('posted_tweets').delete().eq('id', 1);\n",
}


@pytest.fixture
def repo(tmp_path, monkeypatch):
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    early.stop()


def _started() -> None:
    early.start(["tableshift", "audit", "."])
    if early._STATE is None:
        pytest.skip("no early process here (not Linux, or one core)")


def test_it_lists_and_reads_what_the_run_would(repo):
    _started()
    listed = early.sources(["."], (), ())
    assert listed == discover(["."])
    read = early.reader(Options())
    for source in listed:
        assert read(source.display) == stamped_verdict(source, Options())
    pid = early._STATE.pid
    early.stop()
    assert early._STATE is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)  # reaped


@pytest.mark.parametrize(
    "paths, include, exclude", [(["src"], (), ()), (["."], ("src/**",), ()), (["."], (), ("lib/",)), ([".", "src"], (), ())]
)
def test_a_run_that_lists_otherwise_stops_it(repo, paths, include, exclude):
    _started()
    assert early.sources(paths, include, exclude) is None
    assert early._STATE is None
    assert early.reader(Options()) is None


@pytest.mark.parametrize("options", [Options(max_file_size=10), Options(skip_minified=False)])
def test_limits_other_than_the_defaults_read_the_files_again(repo, options):
    _started()
    assert early.sources(["."], (), ()) is not None
    assert early.reader(options) is None
    assert early._STATE is None  # stopped: nothing it read can be used


def test_a_list_not_taken_leaves_nothing_to_read(repo):
    _started()
    assert early.reader(Options()) is None
    assert early._STATE is None


def test_a_file_changed_since_it_was_read_early_is_read_again(repo, tmp_path):
    from tableshift.cache import Cache

    _started()
    listed = early.sources(["."], (), ())
    plain = next(s for s in listed if s.display == "src/plain.ts")
    assert early.reader(Options())("src/queue.ts")[1].startswith("digest:")  # the reading has got that far
    plain.path.write_text("export const q = () => supabase.from('content_queue').select('id, status');\n")
    known = _StatIndex(Cache(tmp_path / ".cache", rules_key="rules"), Options())
    assert known.verdict(plain).startswith("digest:")  # not the "none" it was read as


def test_a_dead_early_process_leaves_the_reading_to_the_run(repo):
    _started()
    os.kill(early._STATE.pid, 9)  # wherever it got to: what it sent whole is right, the rest is None
    listed = early.sources(["."], (), ())
    assert listed is None or listed == discover(["."])
    read = early.reader(Options())
    for source in discover(["."]):
        assert (read(source.display) if read is not None else None) in (None, stamped_verdict(source, Options()))


@pytest.mark.parametrize(
    "argv, command",
    [
        (["tableshift", "audit"], "audit"),
        (["tableshift", "-q", "--color", "never", "check", "--rules", "r.toml"], "check"),
        (["tableshift", "--color=never", "patch"], "patch"),
        (["tableshift", "audit", "-"], None),
        (["tableshift", "--stdin-filename", "a.ts", "check"], None),
        (["tableshift", "sql"], "sql"),
        (["tableshift", "audit", "--help"], None),
        (["tableshift", "audit", ".", "--jobs", "1"], None),
        (["tableshift", "check", "-j", "1"], None),
        (["tableshift", "audit", "--jobs=1"], None),
        (["tableshift", "audit", "--jobs", "2"], "audit"),
        (["tableshift"], None),
    ],
)
def test_the_command_is_read_past_the_global_flags(argv, command):
    assert early._command(argv) == command


def test_a_cache_that_knows_the_files_stops_it(repo, tmp_path):
    from tableshift import engine
    from tableshift.cache import Cache

    engine.run(discover(["."]), None, options=Options(cache_dir=tmp_path / ".cache"))  # the cache learns the files
    _started()
    assert early.sources(["."], (), ()) == discover(["."])
    cache = Cache(tmp_path / ".cache", rules_key="")
    known = _StatIndex(cache, Options(cache_dir=tmp_path / ".cache"))
    assert known.entries and early._STATE is None  # its files are known: none waits for the early reading


def test_without_a_cache_it_hashes_nothing_and_a_cache_run_hashes_for_itself(repo, tmp_path):
    from tableshift.cache import Cache

    early.start(["tableshift", "audit", ".", "--no-cache"])
    if early._STATE is None:
        pytest.skip("no early process here (not Linux, or one core)")
    listed = early.sources(["."], (), ())
    queue = next(s for s in listed if s.display == "src/queue.ts")
    known = _StatIndex(Cache(tmp_path / ".cache", rules_key="rules"), Options())
    assert known.verdict(queue) == stamped_verdict(queue, Options())[1]  # its own digest
    assert early.reader(Options())("lib/app.js")[1] == "digest:"  # a candidate, not hashed
