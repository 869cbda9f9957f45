"""Edits applied to bytes, and unified diffs of the result that `git apply` and `patch -p1` accept."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher
from itertools import compress, count
from operator import ne

from tableshift.model import Edit

CONTEXT = 3
_NO_NEWLINE = b"\\ No newline at end of file\n"


class OverlappingEdits(ValueError):
    """Two edits of one file touch the same bytes: the file is refused, never half-rewritten."""


def apply_edits(data: bytes, edits: Iterable[Edit]) -> bytes:
    """Apply byte-span edits, each given in offsets of the original bytes."""
    ordered = sorted(set(edits), key=lambda e: (e.span.start, e.span.end))
    for before, after in zip(ordered, ordered[1:]):
        if after.span.start < before.span.end or (
            after.span.start == before.span.start and before.span.start == before.span.end
        ):
            raise OverlappingEdits(f"edits at bytes {before.span.start} and {after.span.start} overlap")
    pieces: list[bytes] = []
    at = 0
    for edit in ordered:  # the bytes between edits and each edit's text, joined once
        pieces += (data[at : edit.span.start], edit.text.encode("utf-8"))
        at = edit.span.end
    pieces.append(data[at:])
    return b"".join(pieces)


def _range(start: int, length: int) -> str:
    first = start + 1 if length else start
    return str(first) if length == 1 else f"{first},{length}"


def _line(prefix: bytes, line: bytes) -> bytes:
    return prefix + line if line.endswith(b"\n") else prefix + line + b"\n" + _NO_NEWLINE


def quote_path(path: str) -> str:
    """Quote a path the way git does when it holds quotes, backslashes, control or non-ASCII characters."""
    if all(32 <= ord(c) < 127 and c not in '"\\' for c in path):
        return path
    out = []
    for byte in path.encode("utf-8", "surrogateescape"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append({9: "\\t", 10: "\\n", 13: "\\r"}.get(byte, f"\\{byte:03o}"))
    return '"' + "".join(out) + '"'


class _SameLength(SequenceMatcher):
    """Opcodes for two texts with the same number of lines, compared line by line.

    Renames never add or remove lines, so this is the usual case, and it is linear where a
    general diff is not; difflib's own grouping then makes the hunks.
    """

    def __init__(self, a: list[bytes], b: list[bytes]) -> None:
        ops: list[tuple[str, int, int, int, int]] = []
        start = 0
        changed = list(compress(count(), map(ne, a, b)))  # the lines that differ, compared in C
        i = 0
        while i < len(changed):
            first = changed[i]
            last = first
            while i + 1 < len(changed) and changed[i + 1] == last + 1:
                i += 1
                last = changed[i]
            if first > start:
                ops.append(("equal", start, first, start, first))
            ops.append(("replace", first, last + 1, first, last + 1))
            start = last + 1
            i += 1
        if start < len(a):
            ops.append(("equal", start, len(a), start, len(a)))
        self._ops = ops or [("equal", 0, 0, 0, 0)]

    def get_opcodes(self) -> list[tuple[str, int, int, int, int]]:  # type: ignore[override]
        return self._ops


def _matcher(a: list[bytes], b: list[bytes]) -> SequenceMatcher:
    if len(a) == len(b):
        return _SameLength(a, b)
    return SequenceMatcher(None, a, b, autojunk=False)


def file_diff(path: str, old: bytes, new: bytes, *, context: int = CONTEXT) -> bytes:
    """One file's unified diff in git's format (a/ and b/ prefixes); empty when nothing changed."""
    if old == new:
        return b""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    pa, pb = quote_path(f"a/{path}"), quote_path(f"b/{path}")
    out = [f"diff --git {pa} {pb}\n--- {pa}\n+++ {pb}\n".encode()]
    for group in _matcher(a, b).get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2 - i1)} +{_range(j1, j2 - j1)} @@\n".encode())
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                out.extend(_line(b" ", line) for line in a[x1:x2])
                continue
            out.extend(_line(b"-", line) for line in a[x1:x2])
            out.extend(_line(b"+", line) for line in b[y1:y2])
    return b"".join(out)


def patch_of(changes: Sequence[tuple[str, bytes, bytes]]) -> bytes:
    """A multi-file patch, files in path order."""
    return b"".join(file_diff(path, old, new) for path, old, new in sorted(changes, key=lambda c: c[0]))
