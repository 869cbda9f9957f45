"""File discovery: git's ignore rules inside a work tree, .gitignore files outside, node_modules never."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tableshift.discover import discover
from tableshift.errors import UsageError


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)


FILES = {
    ".gitignore": "dist/\n*.gen.ts\n",
    "src/a.ts": "",
    "src/b.tsx": "",
    "src/c.gen.ts": "",
    "src/sub/.gitignore": "local.js\n!keep.gen.ts\n",
    "src/sub/local.js": "",
    "src/sub/keep.gen.ts": "",
    "src/sub/d.mjs": "",
    "dist/bundle.js": "",
    "node_modules/pkg/index.js": "",
    "src/node_modules/x.ts": "",
    "README.md": "",
    "scripts/e.cjs": "",
}
EXPECTED = ["scripts/e.cjs", "src/a.ts", "src/b.tsx", "src/sub/d.mjs", "src/sub/keep.gen.ts"]


def test_outside_git_honours_nested_gitignore_files(tmp_path, monkeypatch):
    _tree(tmp_path, FILES)
    monkeypatch.chdir(tmp_path)
    assert [f.display for f in discover(["."])] == EXPECTED


def test_outside_git_a_gitignore_rules_its_own_folder_only(tmp_path, monkeypatch):
    # `app/` is a prefix of `app2/` as a string, not as a folder
    _tree(tmp_path, {"app/.gitignore": "*.ts\n/top.js\n", "app/a.ts": "", "app/top.js": "", "app/sub/top.js": "", "app2/b.ts": "", "app2/top.js": ""})
    monkeypatch.chdir(tmp_path)
    assert [f.display for f in discover(["."])] == ["app/sub/top.js", "app2/b.ts", "app2/top.js"]
    assert [f.display for f in discover(["app"])] == ["app/sub/top.js"]


@pytest.mark.skipif(subprocess.run(["git", "--version"], capture_output=True).returncode != 0, reason="no git")
def test_inside_git_uses_git_ls_files(tmp_path, monkeypatch):
    _tree(tmp_path, FILES)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    assert [f.display for f in discover(["."])] == EXPECTED


def test_paths_are_relative_to_cwd_with_slashes(tmp_path, monkeypatch):
    _tree(tmp_path, {"app/src/a.ts": ""})
    monkeypatch.chdir(tmp_path)
    assert [f.display for f in discover(["app"])] == ["app/src/a.ts"]
    monkeypatch.chdir(tmp_path / "app" / "src")
    assert [f.display for f in discover([str(tmp_path / "app")])] == ["a.ts"]


def test_include_and_exclude_globs(tmp_path, monkeypatch):
    _tree(tmp_path, {"src/a.ts": "", "src/b.js": "", "scripts/c.ts": ""})
    monkeypatch.chdir(tmp_path)
    assert [f.display for f in discover(["."], include=["*.ts"])] == ["scripts/c.ts", "src/a.ts"]
    assert [f.display for f in discover(["."], exclude=["scripts/"])] == ["src/a.ts", "src/b.js"]


def test_languages_by_extension(tmp_path, monkeypatch):
    _tree(tmp_path, {n: "" for n in ("a.ts", "b.mts", "c.cts", "d.tsx", "e.js", "f.jsx", "g.mjs", "h.cjs")})
    monkeypatch.chdir(tmp_path)
    langs = {f.display: f.language for f in discover(["."])}
    assert langs == {
        "a.ts": "typescript",
        "b.mts": "typescript",
        "c.cts": "typescript",
        "d.tsx": "tsx",
        "e.js": "javascript",
        "f.jsx": "javascript",
        "g.mjs": "javascript",
        "h.cjs": "javascript",
    }


def test_missing_path_and_unsupported_file_are_usage_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="no such file or directory"):
        discover(["nope"])
    (tmp_path / "notes.md").write_text("")
    with pytest.raises(UsageError, match="not a TypeScript, JavaScript or Python file"):
        discover(["notes.md"])


def test_a_file_named_twice_is_scanned_once(tmp_path, monkeypatch):
    _tree(tmp_path, {"src/a.ts": ""})
    monkeypatch.chdir(tmp_path)
    assert [f.display for f in discover(["src", "src/a.ts", "."])] == ["src/a.ts"]


def test_git_lists_a_work_tree_and_nothing_else(tmp_path):
    import subprocess

    from tableshift.discover import _git_listed

    subprocess.run(["git", "init", "-q", str(tmp_path / "work")], check=True)
    (tmp_path / "work" / "a.ts").write_text("x\n")
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "bare.git")], check=True)
    (tmp_path / "plain").mkdir()
    assert _git_listed(tmp_path / "work") == ["a.ts"]
    assert _git_listed(tmp_path / "work" / ".git") is None  # then os.walk, as outside any repository
    assert _git_listed(tmp_path / "bare.git") is None
    assert _git_listed(tmp_path / "plain") is None
