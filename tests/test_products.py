"""Products (`engine.Product`): a command's part of each file's outcome, made where the file is
scanned and kept in the cache beside it. Whichever way each file comes (its outcome, a product a
worker made, a product read back from the cache, an outcome read back because a helper defined
elsewhere turned out to be called in it), the reports are the ones the outcomes give."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from tableshift import engine, memo
from tableshift.discover import discover
from tableshift.engine import Slim, run, unslim
from tableshift.report.audit import AuditBuilder, AuditPart
from tableshift.report.render import JsonSpool
from tableshift.rules import load_rules

from conftest import RULES
from helpers import run_in_process

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# a helper defined in one module and called from others (a caller with a query call of its own
# comes as its product, and is read back once the link pass finds the helper's call in it)
HELPERS = {
    "src/constants.js": "export const TABLES = { POSTS: 'content_queue', ISSUES: 'issues' };\n",
    "src/helpers/db.js": "export async function getRowsByTable(table, limit) {\n"
    "  return supabase.from(table).select('*').limit(limit);\n}\n",
    "src/pages/posts.js": "import { TABLES } from '../constants';\nimport { getRowsByTable } from '../helpers/db';\n"
    "export const load = () => getRowsByTable(TABLES.POSTS, 10);\n"
    "export const me = () => supabase.from('profiles').select('id');\n",
    "src/pages/other.js": "import * as helpers from '../helpers/db';\n"
    "export const load = () => helpers.getRowsByTable('posted_tweets', 5);\n",
    # a module defining a constant that moves, with a call of its own: it comes as its product, and
    # the patch opens it to edit the constant with the calls relying on it
    "src/lib/names.ts": "export const QUEUE = 'content_metadata';\nexport const posted = () => supabase.from('posted_decisions').select('id');\n",
    "src/lib/use.ts": "import { QUEUE } from './names';\nexport const q = () => supabase.from(QUEUE).select('id');\n",
}
# enough files with calls of their own for the process pool to start (engine.PARALLEL_MIN_FILES)
FILLER = {
    f"src/feature{n}/api.ts": f"export const f{n} = async () => {{\n"
    f"  const {{ data }} = await supabase.from('{table}').select('id, status').eq('id', {n});\n"
    f"  await supabase.from('{table}').update({{ status: 'done' }}).eq('id', {n});\n  return data;\n}};\n"
    for n, table in enumerate(["content_metadata", "posted_decisions", "tweet_metrics", "profiles"] * 6)
}


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()))
@pytest.mark.parametrize("with_rules", [True, False])
def test_parts_fold_to_what_adding_the_outcomes_builds(fixture, with_rules):
    rules = load_rules(RULES) if with_rules else None
    outcomes = run(discover([FIXTURES / fixture], cwd=FIXTURES / fixture), rules).outcomes
    added, merged = AuditBuilder(rules, JsonSpool()), AuditBuilder(rules, JsonSpool())
    part = AuditPart(rules)
    for outcome in outcomes:
        added.add(outcome)
        merged.merge(part(outcome))
    assert merged.header() == added.header()
    assert merged.extras() == added.extras()
    assert merged.sink.bytes() == added.sink.bytes() and len(merged.sink) == len(added.sink)


@pytest.mark.parametrize(
    "entries",
    [
        [{"file": "a.ts", "columns": [], "notes": ["two\nlines", "é ✓ 𝄞"], "embedded": {}, "line": 3}],
        [{"file": "a.ts", "nested": [{"x": [1, None, True]}, {}], "n": 1.5}, {"file": "b.ts", "z": []}],
        # text that is not valid Unicode (a lone surrogate from a file's bytes): scrubbed call by call
        [{"file": "a.ts", "code": "ok \u202e"}, {"file": "b.ts", "code": "bad \udcff"}],
    ],
)
def test_a_files_calls_are_written_at_once_as_one_by_one(entries):
    from tableshift.report.audit import _Chunk
    from tableshift.report.render import entry_text

    chunk = _Chunk()
    for entry in entries:
        chunk.append(entry)
    assert chunk.text() == b",\n".join(entry_text(entry) for entry in entries)
    assert _Chunk().text() == b""


def test_a_slim_product_is_the_slim_outcome():
    rules = load_rules(RULES)
    outcomes = run(discover([FIXTURES / "demo-app"], cwd=FIXTURES / "demo-app"), rules).outcomes
    assert any(Slim.of(o).plans for o in outcomes)
    for outcome in outcomes:
        assert unslim(Slim()(outcome)) == Slim.of(outcome)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(memo, "RACY_NS", 0)
    monkeypatch.setattr(engine._StatIndex, "RACY_NS", 0)
    for files in (HELPERS, FILLER):  # the baseline knows the helpers' uses, not the features'
        for rel, body in files.items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(body)
        if files is HELPERS:
            assert run_in_process("baseline", ".", "--rules", str(RULES), "--no-cache", "-o", "baseline.json") == 0
    return tmp_path


def _outputs(tree: Path, *flags: str) -> dict[str, bytes]:
    """The audit (JSON and table), the patch and its report, and check's JSON, run with `flags`."""
    out = {}
    assert run_in_process("audit", ".", "--rules", str(RULES), *flags, "-f", "json", "-o", "audit.json") == 0
    assert run_in_process("audit", ".", "--rules", str(RULES), *flags, "-o", "audit.txt") == 0
    assert run_in_process("patch", ".", "--rules", str(RULES), *flags, "-o", "out.patch", "--report", "report.json") == 0
    assert run_in_process("check", ".", "--rules", str(RULES), *flags, "--baseline", "baseline.json", "-f", "json", "-o", "check.json") == 1
    for name in ("audit.json", "audit.txt", "out.patch", "report.json", "check.json"):
        out[name] = (tree / name).read_bytes()
    return out


def _patches(tree: Path, *flags: str) -> dict[str, bytes]:
    """The patch split by group and for reads only, with its report, and --check's list."""
    out = {}
    assert run_in_process("patch", ".", "--rules", str(RULES), *flags, "--split-dir", "split", "--report", "split.md") == 0
    assert run_in_process("patch", ".", "--rules", str(RULES), *flags, "--only", "reads", "-o", "reads.patch", "--report", "reads.json") == 0
    for name in ("split.md", "reads.patch", "reads.json", *(f"split/{p.name}" for p in sorted((tree / "split").iterdir()))):
        out[name] = (tree / name).read_bytes()
    return out


def _reference(tree: Path) -> dict[str, bytes]:
    """What the outcomes themselves give: -v streams outcomes, never products (nor the run memo)."""
    return _outputs(tree, "-v", "--no-cache")


def _products_made(tree: Path, monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    made: list[str] = []
    real = engine._Products.get

    def get(self, key, entry):  # type: ignore[no-untyped-def]
        found = real(self, key, entry)
        if found is not None:
            made.append("worker" if entry.product is not None else "cache")
        return found

    monkeypatch.setattr(engine._Products, "get", get)
    return made


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_every_report_is_the_outcomes_whichever_way_each_file_comes(tree, monkeypatch, jobs):
    expected = _reference(tree)
    assert b"called from src/pages/posts.js:3" in expected["audit.json"]  # the helper's call sites are found
    made = _products_made(tree, monkeypatch)
    assert _outputs(tree, "--no-cache", "--jobs", jobs) == expected  # made by the workers, outcomes never sent
    assert "worker" in made
    assert _outputs(tree, "--jobs", jobs) == expected  # made, and kept
    # one file edited: the run memo cannot answer; every other file comes from the cache as its
    # product, and the helper's callers are read back (their products are not theirs any more)
    (tree / "src/feature0/api.ts").write_text((tree / "src/feature0/api.ts").read_text() + "// edited\n")
    expected = _reference(tree)
    made.clear()
    assert _outputs(tree, "--jobs", jobs) == expected
    assert "cache" in made


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_patch_parts_give_every_patch_the_outcomes_give(tree, monkeypatch, jobs):
    """`patch` takes a file on its own as its part (`PatchPart`: rewritten where it was scanned):
    split by group, for one selection, made by the workers and read back from the cache."""
    expected = _patches(tree, "-v", "--no-cache")
    assert b"src/lib/names.ts" in expected["reads.patch"]  # the constant, edited in its module
    assert len([name for name in expected if name.startswith("split/")]) == 3
    made = _products_made(tree, monkeypatch)
    assert _patches(tree, "--no-cache", "--jobs", jobs) == expected
    assert "worker" in made
    assert _patches(tree, "--jobs", jobs) == expected
    (tree / "src/feature0/api.ts").write_text((tree / "src/feature0/api.ts").read_text() + "// edited\n")
    expected = _patches(tree, "-v", "--no-cache")
    made.clear()
    assert _patches(tree, "--jobs", jobs) == expected
    assert "cache" in made


def test_a_file_edited_between_its_scan_and_its_rewrite_leaves_no_part_behind(tree, monkeypatch):
    """A part rewrites its file where it was scanned, reading it again: saved by an editor in
    between, it is refused ("changed since it was scanned"), which is that moment's, not the
    scanned bytes': no part is kept, and a run on those bytes again patches the file."""
    api = tree / "src/feature0/api.ts"
    original = api.read_text()
    expected = _patches(tree, "-v", "--no-cache")
    assert b"src/feature0/api.ts" in expected["reads.patch"]
    real = engine.scan_file

    def saved_meanwhile(source, *args, **kwargs):  # type: ignore[no-untyped-def]
        outcome = real(source, *args, **kwargs)
        if source.display == "src/feature0/api.ts":
            api.write_text(original + "// saved by an editor\n")
        return outcome

    monkeypatch.setattr(engine, "scan_file", saved_meanwhile)
    assert run_in_process("patch", ".", "--rules", str(RULES), "--jobs", "1", "--only", "reads", "-o", "racy.patch", "--report", "racy.json") == 0
    assert "changed since it was scanned" in (tree / "racy.json").read_text()
    monkeypatch.setattr(engine, "scan_file", real)
    api.write_text(original)  # the bytes scanned, again
    assert _patches(tree, "--jobs", "1") == expected


def test_a_call_site_edited_into_a_file_that_came_as_its_product(tree):
    assert _outputs(tree) == _reference(tree)
    api = tree / "src/feature1/api.ts"
    api.write_text("import { getRowsByTable } from '../helpers/db';\n" + api.read_text() + "export const more = () => getRowsByTable('tweet_metrics', 1);\n")
    expected = _reference(tree)
    assert b"tweet_metrics" in expected["audit.json"]
    assert _outputs(tree) == expected


def test_products_that_fail_their_signature_are_made_again(tree):
    _outputs(tree)
    database = next((tree / ".tableshift-cache").glob("*.sqlite"), None) or next(tree.rglob("cache.sqlite"))
    with sqlite3.connect(database) as db:  # every entry tampered with: products and outcomes alike
        db.execute("UPDATE entries_v2 SET value = X'00' || substr(value, 2)")
    (tree / "src/feature0/api.ts").write_text((tree / "src/feature0/api.ts").read_text() + "// edited\n")
    expected = _reference(tree)
    assert _outputs(tree) == expected
    assert json.loads(expected["audit.json"])["summary"]["files_scanned"] == len(HELPERS) + len(FILLER)


def test_a_cache_signed_with_another_key_is_emptied_not_scanned_file_by_file(tree, monkeypatch, capsys):
    """`.tableshift-cache/` restored in CI without the user's key: none of its entries verify. Its
    stat index must not call the files known (each would be scanned again in the main process,
    one by one, when its entry failed): the cache is emptied and the run is a cold one."""
    expected = _outputs(tree)

    def counts() -> tuple[int, int, int]:
        """-v's summary: how many files may hold calls, came from the cache, were parsed."""
        capsys.readouterr()
        assert run_in_process("-v", "audit", ".", "--rules", str(RULES), "-f", "json", "-o", "audit.json") == 0
        found = re.search(r"(\d+) may hold calls, (\d+) from the cache, (\d+) parsed", capsys.readouterr().err)
        assert found is not None
        return int(found[1]), int(found[2]), int(found[3])

    candidates = counts()[0]
    assert candidates > engine.PARALLEL_MIN_FILES
    assert counts() == (candidates, candidates, 0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tree / "another-home"))  # a new key
    rescans: list[str] = []
    real = engine._Products.outcome
    monkeypatch.setattr(engine._Products, "outcome", lambda self, source, *a: rescans.append(source.display) or real(self, source, *a))
    assert counts() == (candidates, 0, candidates)
    assert _outputs(tree) == expected
    assert not [path for path in rescans if path.startswith("src/feature")]  # no product failed its signature
    assert counts() == (candidates, candidates, 0)  # and the new key's entries are kept


def test_products_spilled_to_disk_come_back_in_their_place(tree, monkeypatch):
    expected = _reference(tree)
    monkeypatch.setattr(engine._Spool, "MEMORY_BYTES", 1)  # every product and outcome past the first spills
    monkeypatch.setattr(engine._Spool, "MEMORY_CALLS", 1)
    assert _outputs(tree, "--no-cache") == expected
    assert _outputs(tree) == expected
    (tree / "src/feature0/api.ts").write_text((tree / "src/feature0/api.ts").read_text() + "// edited\n")
    assert _outputs(tree) == _reference(tree)
