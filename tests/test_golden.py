"""Golden cases: each fixture directory's audit, patch and coverage report must match its expected files.

A case is a directory under fixtures/ with an `expect.toml` (written by hand) and an `expected/` folder
(written by `pytest --update-golden` after a deliberate change, then reviewed like code).
A case whose code should not change has an empty expected/patch.diff.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import FIXTURES, RULES
from tableshift import engine, patching
from tableshift.discover import discover
from tableshift.patch import patch_of
from tableshift.report import audit, render
from tableshift.report.coverage import to_markdown
from tableshift.report.escape import json_text
from tableshift.report.render import to_json
from tableshift.rules import load_rules
from tableshift.scan import error_count

CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expect.toml").is_file())


def _rules_path(case: str) -> Path:
    own = FIXTURES / case / "rules.toml"
    return own if own.is_file() else RULES


def _scan(case: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(FIXTURES / case)
    rules = load_rules(_rules_path(case))
    return rules, engine.run(discover(["."]), rules)


def _check_golden(path: Path, actual: bytes, update: bool) -> None:
    if update:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(actual)
    assert path.is_file(), f"no golden file: run pytest --update-golden and review {path}"
    assert actual == path.read_bytes(), f"{path} differs: if the change is deliberate, run pytest --update-golden"


def _audit_json(case: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    rules, result = _scan(case, monkeypatch)
    report = audit.build(result, rules)
    report["rules"]["path"] = _rules_path(case).name  # machine-independent
    return report


@pytest.mark.parametrize("case", CASES)
def test_audit_matches_golden_json(case, monkeypatch, update_golden):
    actual = to_json(_audit_json(case, monkeypatch)).encode()
    _check_golden(FIXTURES / case / "expected" / "audit.json", actual, update_golden)


@pytest.mark.parametrize("case", CASES)
def test_patch_and_coverage_match_golden(case, monkeypatch, update_golden, tmp_path):
    rules, result = _scan(case, monkeypatch)
    outcome = patching.run(result, rules, patching.selection(rules, only=None, tables=(), groups=()), keep=True)
    changes = [(r.path, r.old, r.new) for r in outcome.rewrites if r.refused is None and r.new != r.old]
    diff = patch_of(changes)
    assert patching.patch_bytes(outcome) == diff  # spilled as files stream by: the same bytes
    _check_golden(FIXTURES / case / "expected" / "patch.diff", diff, update_golden)
    report = dict(outcome.data, rules={"name": rules.name, "path": _rules_path(case).name})
    # the report as --report writes it, its lists streamed: the same bytes as the whole report's JSON
    streamed = io.BytesIO()
    render.write_json(dict(outcome.report, rules=report["rules"]), streamed)
    assert streamed.getvalue().decode() == json_text(report)
    assert to_markdown(report) == to_markdown(dict(outcome.report, rules=report["rules"]))
    _check_golden(
        FIXTURES / case / "expected" / "coverage.json",
        (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode(),
        update_golden,
    )
    # every rewritten file parses at least as well as before
    languages = {s.display: s.language for s in result.sources}
    for path, old, new in changes:
        assert error_count(new, languages[path]) <= error_count(old, languages[path]), path
    # the patch applies with git to a pristine copy of the fixture
    if diff:
        copy = tmp_path / "copy"
        shutil.copytree(FIXTURES / case, copy, ignore=shutil.ignore_patterns("expected"))
        (tmp_path / "p.diff").write_bytes(diff)
        subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
        proc = subprocess.run(["git", "apply", "--check", str(tmp_path / "p.diff")], cwd=copy, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("case", CASES)
def test_patch_is_the_same_when_every_file_is_held_to_the_end(case, monkeypatch):
    """Files whose fate depends on others (shared constants) are held to the end and put back in
    their place: with every file held, the patch, the split patches and the report are the same."""
    rules, result = _scan(case, monkeypatch)
    chosen = patching.selection(rules, only=None, tables=(), groups=())
    everything = engine.Settled(frozenset((s.display, str(s.path.resolve())) for s in result.sources))

    def held(**kw):  # type: ignore[no-untyped-def]
        return patching.run((result.sources, iter(result.outcomes), everything), rules, chosen, **kw)

    streamed, streamed_split = patching.run(result, rules, chosen), patching.run(result, rules, chosen, split=True)
    late, late_split = held(), held(split=True)
    assert patching.patch_bytes(late) == patching.patch_bytes(streamed)
    assert late.data == streamed.data == late_split.data
    assert {g: patching._read(s) for g, s in late_split.groups.items()} == {g: patching._read(s) for g, s in streamed_split.groups.items()}
    assert late.changed == streamed.changed


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("only", [None, "reads"])
def test_patch_is_the_same_when_files_come_as_their_parts(case, split, only, monkeypatch):
    """A file whose rewrite owes nothing to other files comes as its `PatchPart`, made where it was
    scanned (as `engine.stream` sends it: every file that does not follow another module's names);
    a part whose file turns out to define a moved constant is opened and held like an outcome.
    The patch, its groups, the report and the files changed are what the outcomes give."""
    rules, result = _scan(case, monkeypatch)
    chosen = patching.selection(rules, only=only, tables=(), groups=())
    part = patching.PatchPart(rules, chosen, split=split)
    items = [part(o, s) if engine._independent(o) else o for o, s in zip(result.outcomes, result.sources)]
    settled = engine.Settled(frozenset((p.constant.file, p.constant.path) for p in result.plans if p.constant is not None))
    reference = patching.run(result, rules, chosen, split=split)
    parted = patching.run((result.sources, iter(items), settled), rules, chosen, split=split)
    assert any(isinstance(item, bytes) for item in items)
    assert patching.patch_bytes(parted) == patching.patch_bytes(reference)
    assert parted.data == reference.data
    assert {g: patching._read(s) for g, s in parted.groups.items()} == {g: patching._read(s) for g, s in reference.groups.items()}
    assert parted.changed == reference.changed
    # a part is never told apart by its name alone: another selection or --split-dir is another product
    assert part.name != patching.PatchPart(rules, patching.selection(rules, only="writes", tables=(), groups=()), split=split).name
    assert part.name != patching.PatchPart(rules, chosen, split=not split).name


def _key(entry: dict) -> tuple:
    return (entry["file"], entry["line"], entry["kind"])


@pytest.mark.parametrize("case", CASES)
def test_audit_finds_exactly_the_calls_the_fixture_author_listed(case, monkeypatch):
    """expect.toml is written by hand, independently of the scanner: an oracle, not a snapshot."""
    expected = tomllib.loads((FIXTURES / case / "expect.toml").read_text(encoding="utf-8")).get("call", [])
    report = _audit_json(case, monkeypatch)
    found = {_key(c): c for c in report["calls"]}
    wanted = {_key(e): e for e in expected}
    assert sorted(set(found) - set(wanted)) == [], "calls found that the fixture says are not calls"
    assert sorted(set(wanted) - set(found)) == [], "calls the fixture lists that were not found"
    for key, want in wanted.items():
        got = found[key]
        assert got["dynamic"] == want.get("dynamic", False), key
        if not want.get("dynamic", False) and got["kind"] in ("table", "realtime", "type", "rest", "sql"):
            assert got["table"] == want.get("table"), key
        assert got["form"] == want.get("form"), key
        if want.get("dynamic", False):
            assert sorted(got["candidates"]) == sorted(want.get("candidates", [])), key
        assert got["operation"] == want.get("operation"), key
        if got["kind"] in ("storage", "rpc"):
            assert got["name"] == want.get("name"), key
        assert got["schema"] == want.get("schema"), key


@pytest.mark.parametrize("case", CASES)
def test_baseline_matches_golden(case, monkeypatch, update_golden):
    """One baseline across every language of a case (fixtures/mixed holds TypeScript and Python)."""
    from tableshift import baseline

    rules, result = _scan(case, monkeypatch)
    root = FIXTURES / case
    items = baseline.uses(result.plans, cwd=root, base=root)
    _check_golden(root / "expected" / "baseline.json", baseline.dump(baseline.build(items, rules)), update_golden)


def test_mixed_repository_covers_both_languages(monkeypatch):
    rules, result = _scan("mixed", monkeypatch)
    languages = {c.language for v in result.verdicts for c in [v.call]}
    assert languages == {"typescript", "python"}
    data = json.loads((FIXTURES / "mixed" / "expected" / "baseline.json").read_text())
    assert any(k.endswith(".py") for k in data["files"]) and any(k.endswith(".ts") for k in data["files"])
    diff = (FIXTURES / "mixed" / "expected" / "patch.diff").read_text()
    assert ".py b/" in diff and ".ts b/" in diff


def test_streamed_json_is_the_whole_reports_json_whatever_its_strings_hold():
    """The lists are written in their place, never found by a marker the data could hold too."""
    left_out = render.Entries()
    left_out.append({"file": "a.ts", "why": "\0entries:left_out"})
    review = render.Entries()
    report = {"columns": [{"column": "\0entries:left_out", "nested": {"x": [1, 2]}}], "review": review, "left_out": left_out, "n": 1.5}
    streamed = io.BytesIO()
    render.write_json(report, streamed)
    assert streamed.getvalue().decode() == json_text({k: list(v) if isinstance(v, render.Entries) else v for k, v in report.items()})


@pytest.mark.parametrize("memory, spilled", [(render.JsonSpool.MEMORY, False), (64, True), (0, True)])
def test_the_calls_spool_writes_the_same_bytes_held_or_spilled(monkeypatch, memory, spilled):
    """Chunks held in memory, or past the limit in a temporary file (from the first byte, or
    part way): the same JSON, the same size, the same bytes for the memo."""
    monkeypatch.setattr(render.JsonSpool, "MEMORY", memory)
    entries = [{"file": f"src/{i}.ts", "line": i, "columns": {"select": [{"name": "id"}]}} for i in range(5)]
    spool = render.JsonSpool()
    spool.extend(b"", 0)  # a file without calls adds nothing, not even a comma
    spool.append(entries[0])
    spool.extend(b",\n".join(render.entry_text(e) for e in entries[1:3]), 2)
    spool.extend(b",\n".join(render.entry_text(e) for e in entries[3:]), 2)
    assert (spool.file is not None) == spilled
    streamed = io.BytesIO()
    render.write_json({"n": len(spool), "calls": spool}, streamed)
    assert streamed.getvalue().decode() == json_text({"n": 5, "calls": entries})
    whole = spool.bytes()
    assert len(whole) == spool.size()
    again = io.BytesIO()
    render.write_json({"n": 5, "calls": render.JsonSpool.of(whole, 5)}, again)
    assert again.getvalue() == streamed.getvalue()
