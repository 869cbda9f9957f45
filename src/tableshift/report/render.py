"""Render a report as JSON, Markdown or rich tables; one entry point per format."""

from __future__ import annotations

import io
import re
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
    """Calls as indented JSON, kept on disk past a few MB: the audit's memory stays flat."""

    def __init__(self) -> None:
        import tempfile

        self.file = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        self.count = 0

    def append(self, entry: dict[str, Any]) -> None:
        text = _orjson(entry)
        if self.count:
            self.file.write(b",\n")
        self.file.write(b"    " + text.replace(b"\n", b"\n    "))
        self.count += 1


def write_json(header: dict[str, Any], spool: JsonSpool, out: Any) -> None:
    """The same bytes as `to_json` of the whole report, written without holding the calls."""
    head = _orjson(header)
    out.write(head[:-2] + b",\n  \"calls\": [")
    if spool.count:
        out.write(b"\n")
        spool.file.seek(0)
        while chunk := spool.file.read(1 << 20):
            out.write(chunk)
        out.write(b"\n  ]")
    else:
        out.write(b"]")
    out.write(b"\n}\n")


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


def print_tables(sections: list[Section], console: Console, *, title: str) -> None:
    from rich.table import Table
    from rich.text import Text

    console.print(Text(printable(title), style="bold"))
    for section in sections:
        if not section.rows:
            continue
        table = Table(title=section.title, title_justify="left", caption=section.note or None, caption_justify="left")
        for index, header in enumerate(section.headers):
            numeric = index > 0 and all(r[index].isdigit() for r in section.rows)
            table.add_column(
                header,
                justify="right" if numeric else "left",
                overflow="fold",
                no_wrap=header not in WRAPPING,
                min_width=len(header) if numeric else None,
            )
        for row in section.rows:
            # Text, never markup: `app/[id]/route.ts` keeps its brackets, an ESC byte stays visible
            table.add_row(*(Text(printable(cell)) for cell in row))
        console.print(table)


def tables_to_text(sections: list[Section], *, title: str, width: int = 160) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    print_tables(sections, Console(file=buffer, width=width, color_system=None, force_terminal=False), title=title)
    return buffer.getvalue()
