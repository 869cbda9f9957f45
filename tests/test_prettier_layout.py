"""Patches laid out like the file: code Prettier formatted is still Prettier-formatted after the
patch, judged by Prettier itself (npm, pinned in tests/oracle), on TypeScript, TSX and Vue."""

from __future__ import annotations

import shutil
import subprocess

from conftest import FIXTURES
from helpers import run_cli

CASE = FIXTURES / "prettier"


def _prettier_check(oracle, root) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(
        ["node", str(oracle / "node_modules" / "prettier" / "bin" / "prettier.cjs"), "--check", "src"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_prettier_formatted_tree_stays_prettier_formatted_after_the_patch(node_oracle, tmp_path):
    root = tmp_path / "app"
    shutil.copytree(CASE, root)
    before = _prettier_check(node_oracle, root)
    assert before.returncode == 0, f"the fixture is not as Prettier lays it out: {before.stdout}{before.stderr}"
    proc = run_cli("patch", "src", "--rules", "rules.toml", "--no-cache", "--apply", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "rewrote 9 calls in 3 files" in proc.stderr
    after = _prettier_check(node_oracle, root)
    assert after.returncode == 0, f"Prettier would lay the patched code out otherwise: {after.stdout}{after.stderr}"
    tweets = (root / "src" / "tweets.ts").read_text()
    assert '    .select("tweet_id, content")\n    .eq("kind", "tweet")\n' in tweets  # an added link: a line of its own
    assert 'insert({\n    kind: "tweet",\n' in tweets  # an added key: a line of its own
