"""Render a report as JSON, Markdown or rich tables; one entry point per format."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from rich.console import Console

from tableshift.report.escape import printable, scrub
from tableshift.report.sections import Section

# Prose columns give way when the terminal is narrow; names and numbers never fold.
WRAPPING = frozenset({"reasons", "candidates", "error", "code"})


def _orjson(value: Any) -> bytes:
    """orjson refuses text that is not valid Unicode: such (rare) values are scrubbed first."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2)
    except orjson.JSONEncodeError:
        return orjson.dumps(scrub(value), option=orjson.OPT_INDENT_2)


def to_json(report: dict[str, Any]) -> str:
    return _orjson(report).decode("utf-8") + "\n"


class JsonSpool:
    """Calls as indented JSON, kept on disk past a few MB: the audit's memory stays flat. Below
    that, the chunks themselves are held (each file's, as its part brought it, not copied) and
    written out once at the end."""

    MEMORY = 8 << 20  # bytes held before the chunks go to a temporary file

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.held = 0
        self.file: Any = None  # a temporary file, once past MEMORY
        self.count = 0

    def __len__(self) -> int:
        return self.count

    @classmethod
    def of(cls, data: bytes, count: int) -> JsonSpool:
        """A spool holding calls already written (`bytes()` of another)."""
        spool = cls()
        spool._put(data)
        spool.count = count
        return spool

    def size(self) -> int:
        if self.file is None:
            return self.held
        self.file.seek(0, 2)
        return int(self.file.tell())

    def bytes(self) -> bytes:
        if self.file is None:
            return b"".join(self.chunks)
        self.file.seek(0)
        return bytes(self.file.read())

    def write_to(self, out: Any) -> None:
        if self.file is None:
            for chunk in self.chunks:
                out.write(chunk)
            return
        self.file.seek(0)
        while chunk := self.file.read(1 << 20):
            out.write(chunk)

    def append(self, entry: dict[str, Any]) -> None:
        self.extend(entry_text(entry), 1)

    def extend(self, chunk: bytes, count: int) -> None:
        """Calls already written (`entry_text` of each, joined by `,\\n`): a file's part of the audit."""
        if not count:
            return
        if self.count:
            self._put(b",\n")
        self._put(chunk)
        self.count += count

    def _put(self, data: bytes) -> None:
        if self.file is None:
            if self.held + len(data) <= self.MEMORY:
                self.chunks.append(data)
                self.held += len(data)
                return
            import tempfile

            self.file = tempfile.TemporaryFile()
            self.file.writelines(self.chunks)
            self.chunks, self.held = [], 0
        self.file.seek(0, 2)
        self.file.write(data)


def entry_text(entry: dict[str, Any]) -> bytes:
    """One call as the audit's JSON lists it, indented in its place."""
    return b"    " + _orjson(entry).replace(b"\n", b"\n    ")


class Ordered:
    """Chunks of bytes in file order, kept on disk past a few MB. Most are added as files stream
    by; the few files decided only at the end (`late`) are put back in their place on reading."""

    def __init__(self) -> None:
        import tempfile
        from array import array

        self.file = tempfile.SpooledTemporaryFile(max_size=4 << 20)
        self.at = array("q")  # the file of each chunk written, in order
        self.ends = array("q")  # where it ends in the file
        self.late: list[tuple[int, int, bytes]] = []  # (file, order, chunk)

    def add(self, chunk: bytes, at: int = 0, *, late: bool = False) -> None:
        if late:
            self.late.append((at, len(self.late), chunk))
            return
        self.file.seek(0, 2)
        self.file.write(chunk)
        self.at.append(at)
        self.ends.append(self.file.tell())

    def __len__(self) -> int:
        return len(self.at) + len(self.late)

    def __reduce__(self) -> tuple:  # type: ignore[type-arg]
        # its chunks in order (the run memo keeps a patch): the copy holds them in memory or on disk as this one did
        return (_ordered, (list(self.chunks()),))

    def chunks(self) -> Iterator[bytes]:
        late = sorted(self.late)
        j = 0
        self.file.seek(0)
        start = 0
        for at, end in zip(self.at, self.ends):
            while j < len(late) and late[j][0] < at:
                yield late[j][2]
                j += 1
            self.file.seek(start)
            yield self.file.read(end - start)
            start = end
        for _, _, chunk in late[j:]:
            yield chunk

    def close(self) -> None:
        self.file.close()


def _ordered(chunks: list[bytes]) -> Ordered:
    ordered = Ordered()
    for index, chunk in enumerate(chunks):
        ordered.add(chunk, index)
    return ordered


class Entries:
    """A list of JSON objects built one at a time (in file order, some put back late) and read back
    in order, kept on disk past a few MB: a report's long lists (the patch's review calls) without
    holding them. Iterable again."""

    def __init__(self) -> None:
        self.chunks = Ordered()

    def append(self, entry: dict[str, Any], at: int = 0, *, late: bool = False) -> None:
        self.chunks.add(entry_line(entry), at, late=late)

    def extend(self, lines: list[bytes], at: int) -> None:
        """Entries made elsewhere (`entry_line`, one file's: see `EntryLines`), in their place."""
        for line in lines:
            self.chunks.add(line, at)

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (orjson.loads(chunk) for chunk in self.chunks.chunks())

    def close(self) -> None:
        self.chunks.close()


class EntryLines:
    """`Entries` of one file, made apart (in a worker): each entry's line, for `Entries.extend`
    to put in the file's place."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def append(self, entry: dict[str, Any], at: int = 0, *, late: bool = False) -> None:
        self.lines.append(entry_line(entry))

    def close(self) -> None:
        pass


def entry_line(entry: dict[str, Any]) -> bytes:
    """One entry of `Entries`, as it is kept: compact JSON."""
    try:
        return orjson.dumps(entry)
    except orjson.JSONEncodeError:
        return orjson.dumps(scrub(entry))


def write_json(report: dict[str, Any], out: Any) -> None:
    """`to_json` of a report whose long lists are streamed (`JsonSpool`: already indented JSON;
    `Entries`: one object at a time): the same bytes, written without holding the lists. Each
    top-level value is written in its place, indented as `to_json` indents it."""
    out.write(b"{")
    for position, (key, value) in enumerate(report.items()):
        out.write((b",\n  " if position else b"\n  ") + _orjson(key) + b": ")
        if not isinstance(value, JsonSpool | Entries):
            out.write(_orjson(value).replace(b"\n", b"\n  "))
        elif not len(value):
            out.write(b"[]")
        else:
            out.write(b"[\n")
            if isinstance(value, JsonSpool):
                value.write_to(out)
            else:
                for index, entry in enumerate(value):
                    out.write((b",\n    " if index else b"    ") + _orjson(entry).replace(b"\n", b"\n    "))
            out.write(b"\n  ]")
    out.write(b"\n}\n" if report else b"}\n")


def _md_cell(value: str) -> str:
    """A table cell that renders as its text: no markup, no HTML, no emphasis from a file name."""
    return _MD_CELL.sub(r"\\\1", printable(value)) or " "


# `_` inside a word (content_metadata) never emphasises in GitHub Markdown; at a word's edge it may
_MD_CELL = re.compile(r"([\\`*<>\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def to_markdown(sections: list[Section], *, title: str) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if not section.rows:
            lines += ["_none_", ""]
            continue
        lines.append("| " + " | ".join(section.headers) + " |")
        lines.append("|" + "|".join("---" for _ in section.headers) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows]
        if section.note:
            lines += ["", f"_{section.note}_"]
        lines.append("")
    return "\n".join(lines)


# Columns a narrow terminal drops first (left to right in this order), so the ones that matter
# (name, calls, reads, writes, auto, review) keep their width; the rest are in --format json / markdown.
DROPPABLE = ("legacy → target", "realtime", "embeds", "op?", "upsert", "delete", "group", "files", "update", "insert", "dynamic", "status")
TERMINAL_ROWS = 25  # longer lists are cut on a terminal, with how many more there are


def print_tables(sections: list[Section], console: Console, *, title: str, cap: bool | None = None) -> None:
    """Tables for people: on a terminal, designed for its width (columns dropped in a fixed order,
    long lists cut with "... and N more"); elsewhere, plain columns without box drawing."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    terminal = console.is_terminal
    cap = terminal if cap is None else cap
    console.print(Text(printable(title), style="bold"))
    for section in sections:
        if not section.rows:
            continue
        headers = list(section.headers)
        rows = [list(r) for r in section.rows]
        hidden = []
        while _width(headers, rows) > console.width:
            drop = next((h for h in DROPPABLE if h in headers), None)
            if drop is None:
                break
            index = headers.index(drop)
            hidden.append(drop)
            del headers[index]
            for r in rows:
                del r[index]
        more = 0
        if cap and len(rows) > TERMINAL_ROWS:
            more = len(rows) - TERMINAL_ROWS
            rows = rows[:TERMINAL_ROWS]
        notes = [section.note] if section.note else []
        if hidden:
            notes.append(f"not shown at this width: {', '.join(hidden)} (use --format json or markdown)")
        if more:
            notes.append(f"... and {more:,} more (use --format json)")
        table = Table(
            title=section.title,
            title_justify="left",
            caption="\n".join(notes) or None,
            caption_justify="left",
            box=box.SQUARE if terminal else None,
            show_edge=terminal,
        )
        squeezed = _width(headers, rows) > console.width  # names fold rather than push numbers off
        for index, header in enumerate(headers):
            numeric = index > 0 and all(r[index].isdigit() for r in rows)
            table.add_column(
                header,
                justify="right" if numeric else "left",
                overflow="fold",
                no_wrap=numeric or (header not in WRAPPING and not squeezed),
                min_width=len(header) if numeric else None,
            )
        for row in rows:
            # Text, never markup: `app/[id]/route.ts` keeps its brackets, an ESC byte stays visible
            table.add_row(*(Text(printable(cell)) for cell in row))
        console.print(table)


def _width(headers: list[str], rows: list[list[str]]) -> int:
    """The width a table needs to show every cell whole (capped: reasons may wrap)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    return sum(min(w, 60) for w in widths) + 3 * len(headers) + 1


def tables_to_text(sections: list[Section], *, title: str, width: int = 160) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    print_tables(sections, Console(file=buffer, width=width, color_system=None, force_terminal=False), title=title)
    return buffer.getvalue()
