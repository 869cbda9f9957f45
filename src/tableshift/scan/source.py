"""A file's bytes with line tables: byte offsets to line/column, string literals to spans."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate

from tableshift.model import Position, Span

BOM = b"\xef\xbb\xbf"
_SUPPRESSION = re.compile(r"(?://|#|/\*)\s*tableshift-ignore(?![-\w])(?:\s*:)?(?P<reason>.*?)\s*(?:\*/.*)?$")
_COMMENT_ONLY = re.compile(r"^\s*(?://|#|/\*|\*)")


class SourceText:
    """Original bytes of one file; positions are derived, never stored twice."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._lines: dict[int, str] = {}
        self._comments: dict[int, str | None] = {}
        self._last = (-1, 0, 0)  # row, offset, column of the last position: many calls share a line
        # where the last line was found without the line table: (offset, its row, its line's start)
        self._anchor = (0, 0, 0)
        self._row_starts: dict[int, int] = {}  # rows found that way -> where they start

    @cached_property
    def line_starts(self) -> list[int]:
        # each line's length plus its newline, summed: all in C, however many lines
        starts = list(accumulate(map((1).__add__, map(len, self.data.split(b"\n"))), initial=0))
        starts.pop()  # the end of the last line, plus one
        return starts

    def point(self, offset: int) -> tuple[int, int]:
        """tree-sitter's point of a byte offset: 0-based row and byte column."""
        row = bisect_right(self.line_starts, offset) - 1
        return row, offset - self.line_starts[row]

    def position(self, offset: int) -> Position:
        """1-based line and character column of a byte offset."""
        row, start = self._line_of(offset)
        last_row, last_offset, last_column = self._last
        if row == last_row and offset >= last_offset and (row or last_offset >= len(BOM)):
            # from the previous position on the same line: a minified line of 4,000 calls stays linear
            # (not from inside a byte order mark, which is no character)
            column = last_column + _chars(self.data[last_offset:offset])
        else:
            prefix = self.data[start:offset]
            if row == 0 and prefix.startswith(BOM):
                prefix = prefix[len(BOM) :]
            column = _chars(prefix)
        self._last = (row, offset, column)
        return Position(row + 1, column + 1)

    def line(self, offset: int) -> int:
        """The 1-based line of a byte offset (`position(offset).line`, without the column)."""
        return self._line_of(offset)[0] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its line ending."""
        if line not in self._lines:
            self._lines[line] = self._line_text(line)
        return self._lines[line]

    def _line_of(self, offset: int) -> tuple[int, int]:
        """The 0-based row of a byte offset, and where its line starts.

        Without the line table (a file's calls need a few positions, and splitting every line of
        it cost more than counting): the newlines between the offset and the last one found, then
        the line's start, unless it is the last one's line (a minified line of 4,000 calls stays
        linear)."""
        if "line_starts" in self.__dict__:  # made already (`point`, the suppression comments)
            starts = self.line_starts
            row = bisect_right(starts, offset) - 1
            return row, starts[row]
        at, last, start = self._anchor
        if offset >= at:
            row = last + self.data.count(b"\n", at, offset)
        else:
            row = last - self.data.count(b"\n", offset, at)
        if row != last:
            start = self.data.rfind(b"\n", 0, offset) + 1
        self._anchor = (offset, row, start)
        self._row_starts[row] = start
        return row, start

    def _line_text(self, line: int) -> str:
        start = self._row_starts.get(line - 1)
        if start is not None:
            end = self.data.find(b"\n", start)
            end = len(self.data) if end == -1 else end + 1
        else:
            starts = self.line_starts
            start = starts[line - 1]
            end = starts[line] if line < len(starts) else len(self.data)
        raw = self.data[start:end].rstrip(b"\r\n")
        if line == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        return raw.decode("utf-8", "replace")

    def suppression(self, own: tuple[int, ...], above: tuple[int, ...]) -> str | None:
        """The reason of a `tableshift-ignore: reason` comment ("" when it gives none), or None.

        A comment counts at the end of one of the call's `own` lines, or alone on one of the
        lines `above` it, never inside a string and never from a neighbouring statement's line.
        """
        if not self._marked:
            return None  # most files: no line to read
        for line, alone in [*((n, False) for n in own), *((n, True) for n in above)]:
            if not 1 <= line <= len(self.line_starts):
                continue
            text = self.line_text(line)
            if alone and not _COMMENT_ONLY.match(text):
                continue
            reason = self._comment(line)
            if reason is not None:
                return reason
        return None

    @cached_property
    def _marked(self) -> bool:
        """Whether any line may hold a suppression comment (one search of the bytes)."""
        return b"tableshift-ignore" in self.data

    def _comment(self, line: int) -> str | None:
        """The suppression comment of a line, read once however many calls share the line."""
        if line not in self._comments:
            text = self.line_text(line)
            match = _SUPPRESSION.search(text) if "tableshift-ignore" in text else None
            found = match is not None and _outside_strings(text, match.start())
            self._comments[line] = match.group("reason").strip() if found and match is not None else None
        return self._comments[line]

    def text(self, span: Span) -> str:
        return self.data[span.start : span.end].decode("utf-8", "surrogateescape")


def _chars(data: bytes) -> int:
    """How many characters these bytes show as (UTF-8; an undecodable byte is one character)."""
    return len(data) if data.isascii() else len(data.decode("utf-8", "replace"))


def _outside_strings(text: str, index: int) -> bool:
    """Whether position `index` of a line is outside string literals (quotes before it balance)."""
    quote = None
    escaped = False
    for char in text[:index]:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote is None and char in "'\"`":
            quote = char
        elif char == quote:
            quote = None
    return quote is None


@dataclass(unsafe_hash=True, slots=True)
class StringLiteral:
    """A string literal's value and, when it can be mapped, where each character sits."""

    value: str
    content_start: int  # byte offset just past the opening quote
    mappable: bool  # False when escapes make character offsets differ from byte offsets
    quote: str

    def span_of(self, start: int, end: int) -> Span | None:
        """Byte span of value[start:end], or None when the literal has escapes."""
        if not self.mappable:
            return None
        encode = lambda s: len(s.encode("utf-8", "surrogateescape"))  # noqa: E731
        begin = self.content_start + encode(self.value[:start])
        return Span(begin, begin + encode(self.value[start:end]))

    @property
    def content_span(self) -> Span | None:
        return self.span_of(0, len(self.value))
