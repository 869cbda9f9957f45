"""Golden audits: each fixture directory's report must match its expected JSON byte for byte.

Run `pytest --update-golden` after a deliberate change, then review the diff of fixtures/*/expected/.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from conftest import FIXTURES, RULES
from tableshift import engine
from tableshift.discover import discover
from tableshift.report import audit
from tableshift.report.render import to_json
from tableshift.rules import load_rules

CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expect.toml").is_file())


def _audit(case: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    root = FIXTURES / case
    monkeypatch.chdir(root)
    rules_path = root / "rules.toml" if (root / "rules.toml").is_file() else RULES
    rules = load_rules(rules_path)
    report = audit.build(engine.run(discover(["."]), rules), rules)
    report["rules"]["path"] = rules_path.name  # machine-independent
    return report


@pytest.mark.parametrize("case", CASES)
def test_audit_matches_golden_json(case, monkeypatch, update_golden):
    expected_path = FIXTURES / case / "expected" / "audit.json"
    actual = to_json(_audit(case, monkeypatch))
    if update_golden:
        expected_path.parent.mkdir(exist_ok=True)
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.is_file(), f"no golden file: run pytest --update-golden and review {expected_path}"
    assert actual == expected_path.read_text(encoding="utf-8")


def _key(entry: dict) -> tuple:
    return (entry["file"], entry["line"], entry["kind"])


@pytest.mark.parametrize("case", CASES)
def test_audit_finds_exactly_the_calls_the_fixture_author_listed(case, monkeypatch):
    """expect.toml is written by hand, independently of the scanner: an oracle, not a snapshot."""
    expected = tomllib.loads((FIXTURES / case / "expect.toml").read_text(encoding="utf-8")).get("call", [])
    report = _audit(case, monkeypatch)
    found = {_key(c): c for c in report["calls"]}
    wanted = {_key(e): e for e in expected}
    assert sorted(set(found) - set(wanted)) == [], "calls found that the fixture says are not calls"
    assert sorted(set(wanted) - set(found)) == [], "calls the fixture lists that were not found"
    for key, want in wanted.items():
        got = found[key]
        assert got["dynamic"] == want.get("dynamic", False), key
        if not want.get("dynamic", False) and got["kind"] in ("table", "realtime"):
            assert got["table"] == want.get("table"), key
        if want.get("dynamic", False):
            assert sorted(got["candidates"]) == sorted(want.get("candidates", [])), key
        assert got["operation"] == want.get("operation"), key
        if got["kind"] in ("storage", "rpc"):
            assert got["name"] == want.get("name"), key
        assert got["schema"] == want.get("schema"), key
