"""Unified diffs on bytes: git apply and patch -p1 accept them for every kind of file."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tableshift.model import Edit, Span
from tableshift.patch import OverlappingEdits, apply_edits, file_diff


def test_edits_apply_back_to_front():
    data = b"supabase.from('tweets').select('likes_count')"
    edits = [Edit(Span(15, 21), "posted_content"), Edit(Span(32, 43), "likes_count:likes")]
    assert apply_edits(data, edits) == b"supabase.from('posted_content').select('likes_count:likes')"


def test_overlapping_edits_are_refused():
    with pytest.raises(OverlappingEdits):
        apply_edits(b"abcdef", [Edit(Span(0, 3), "x"), Edit(Span(2, 4), "y")])


def test_identical_text_gives_empty_diff():
    assert file_diff("a.ts", b"x\n", b"x\n") == b""


def _git_apply_check(tmp_path, name: bytes, old: bytes, new: bytes) -> None:
    repo = tmp_path / "repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir()
    (repo / name.decode("utf-8", "surrogateescape")).write_bytes(old)
    patch = file_diff(name.decode("utf-8", "surrogateescape"), old, new)
    (tmp_path / "p.diff").write_bytes(patch)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    proc = subprocess.run(["git", "apply", "--check", "-v", str(tmp_path / "p.diff")], cwd=repo, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode() + patch.decode("utf-8", "replace")
    subprocess.run(["git", "apply", str(tmp_path / "p.diff")], cwd=repo, check=True)
    assert (repo / name.decode("utf-8", "surrogateescape")).read_bytes() == new
    if shutil.which("patch"):
        (repo / name.decode("utf-8", "surrogateescape")).write_bytes(old)
        proc = subprocess.run(["patch", "-p1", "--binary", "-s", "-i", str(tmp_path / "p.diff")], cwd=repo, capture_output=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (repo / name.decode("utf-8", "surrogateescape")).read_bytes() == new


CASES = {
    "lf": (b"a\nb\nc\n", b"a\nB\nc\n"),
    "crlf": (b"a\r\nb\r\nc\r\n", b"a\r\nB\r\nc\r\n"),
    "no final newline": (b"a\nb\nlast", b"a\nb\nLAST"),
    "adds final newline": (b"a\nb", b"a\nb\n"),
    "bom": (b"\xef\xbb\xbfa\nb\n", b"\xef\xbb\xbfa\nB\n"),
    "latin-1": (b"// caf\xe9\nx('tweets')\n", b"// caf\xe9\nx('posted_content')\n"),
    "far apart": (b"".join(b"line %d\n" % i for i in range(40)), b"".join(b"line %d\n" % (i if i not in (3, 30) else -i) for i in range(40))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_git_apply_accepts(tmp_path, case):
    old, new = CASES[case]
    _git_apply_check(tmp_path, b"src.ts", old, new)


def test_git_apply_accepts_unusual_path(tmp_path):
    _git_apply_check(tmp_path, "caf\u00e9 \"q\".ts".encode(), b"a\n", b"b\n")


lines = st.lists(st.sampled_from([b"a", b"b", b"c", b"", b"x\r"]), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=lines, new=lines, old_nl=st.booleans(), new_nl=st.booleans())
def test_any_change_round_trips_through_git_apply(tmp_path, old, new, old_nl, new_nl):
    a = b"\n".join(old) + (b"\n" if old_nl and old else b"")
    b = b"\n".join(new) + (b"\n" if new_nl and new else b"")
    if a != b:
        _git_apply_check(tmp_path, b"f.txt", a, b)
