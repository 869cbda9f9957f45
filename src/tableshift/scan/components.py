"""Vue, Svelte and Astro components: each script block scanned in place by the TypeScript scanner.

A block is scanned in a copy of the file where every byte outside it is a space, line endings and a
leading byte-order mark kept, so its offsets, lines and columns are those of the whole file (the
copy is cut to the block's lines, and what is found is moved back by what was cut): spans, patch
hunks, SARIF regions and baseline entries refer to the file. Templates and styles are never parsed
as code. Blocks are found by a small tokenizer that follows what the frameworks' own parsers do
with comments, raw-text elements, attribute values and template expressions.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tableshift.model import Call, Position, Span
from tableshift.scan.source import BOM, SourceText

COMPONENTS = frozenset({"vue", "svelte", "astro"})

# Elements whose content is text up to their end tag, never markup.
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr"}
)  # fmt: skip
_LANGS = {
    None: "javascript", "": "javascript", "js": "javascript", "javascript": "javascript", "jsx": "javascript",
    "mjs": "javascript", "cjs": "javascript", "ts": "typescript", "typescript": "typescript", "mts": "typescript",
    "cts": "typescript", "tsx": "tsx",
}  # fmt: skip
# `type` values that hold script code; anything else (JSON, templates, import maps) is data.
_SCRIPT_TYPES = {
    None: None, "": None, "module": None, "text/javascript": None, "application/javascript": None,
    "text/ecmascript": None, "application/ecmascript": None, "text/partytown": None, "text/jsx": "javascript",
    "text/typescript": "typescript", "application/typescript": "typescript", "text/ts": "typescript",
}  # fmt: skip
_TAG_NAME = re.compile(rb"[A-Za-z][^\s/>]*")
_ATTR_NAME = re.compile(rb"[^\s/>=]+")
_UNQUOTED = re.compile(rb"[^\s>]+")
_SPACE = re.compile(rb"[\s]*")
_FENCE = re.compile(rb"[ \t]*---[ \t]*(?:\r?\n|\r|\Z)")
_NEXT = {"vue": re.compile(rb"<|\{\{"), "svelte": re.compile(rb"[<{]"), "astro": re.compile(rb"<")}
_BLANK = bytes(b if b in b"\r\n" else 0x20 for b in range(256))


@dataclass(unsafe_hash=True, slots=True)
class Block:
    """The code of one script block: `data[start:end]`, parsed with `grammar`."""

    start: int
    end: int
    grammar: str  # typescript | tsx | javascript


@dataclass(unsafe_hash=True, slots=True)
class Unit:
    """Blocks that are one module, in file order, and the grammar that parses them together."""

    blocks: tuple[Block, ...]
    grammar: str


@dataclass(unsafe_hash=True, slots=True)
class _Script:
    attrs: dict[str, str | None]
    start: int
    end: int
    root: bool  # a child of the component itself, not of an element or a block


def units(data: bytes, component: str) -> list[Unit]:
    """The scripts of a component, grouped by the module they belong to.

    Vue's `<script>` and `<script setup>`, and Svelte's module and instance scripts, are one module:
    a constant in one is seen by the other, so they are parsed together (a rewrite of a constant
    must see every use of it). Where their languages differ, the TypeScript grammar reads both.
    Astro's frontmatter and each of its `<script>` tags are modules of their own.
    """
    if component == "astro":
        found: list[Block] = []
        body = 3 if data.startswith(BOM) else 0
        fence = _frontmatter(data, body)
        if fence is not None:
            start, end, body = fence
            found.append(Block(start, end, "typescript"))
        for script in _scripts(data, "astro", body):
            inline = "is:inline" in script.attrs or "define:vars" in script.attrs
            grammar = _grammar(script.attrs, "javascript" if inline else "typescript")
            if grammar is not None:
                found.append(Block(script.start, script.end, grammar))
        return [Unit((b,), b.grammar) for b in found]
    blocks = []
    for script in _scripts(data, component, 3 if data.startswith(BOM) else 0):
        grammar = _grammar(script.attrs, "javascript") if script.root else None
        if grammar is not None:
            blocks.append(Block(script.start, script.end, grammar))
    if not blocks:
        return []
    grammars = {b.grammar for b in blocks}
    grammar = grammars.pop() if len(grammars) == 1 else "tsx" if "tsx" in grammars else "typescript"
    return [Unit(tuple(blocks), grammar)]


def blocks(data: bytes, component: str) -> list[Block]:
    """Every script block of a component, in file order."""
    return sorted((b for unit in units(data, component) for b in unit.blocks), key=lambda b: b.start)


def masked(data: bytes, blocks: Sequence[Block], *, start: int = 0, end: int | None = None) -> bytes:
    """`data[start:end]` with every byte outside `blocks` blanked: offsets (from `start`), lines and
    columns unchanged."""
    end = len(data) if end is None else end
    out = bytearray(data[start:end].translate(_BLANK))
    if start == 0 and data.startswith(BOM):
        out[:3] = BOM
    for previous, block in zip([None, *blocks], blocks):
        out[block.start - start : block.end - start] = data[block.start : block.end]
        # blocks of one module on one line: a statement must not run on into the next block
        if previous is not None and block.start > previous.end and b"\n" not in data[previous.end : block.start]:
            out[previous.end - start] = ord(";")
    return bytes(out)


def scan(data: bytes, *, path: str, language: str) -> tuple[list[Call], bool]:
    """All query calls in a component's script blocks, and whether any block has syntax errors."""
    from tableshift.scan import typescript

    calls: list[Call] = []
    parse_error = False
    original = SourceText(data)
    found_units = units(data, language)
    for unit in found_units:
        window = _Window(data, unit.blocks, original)
        found, broken = typescript.scan(window.copy, path=path, language=unit.grammar)
        parse_error = parse_error or broken
        calls.extend(window.place(_in_component(dataclasses.replace(c, language=language))) for c in found)
    calls.extend(_markup_calls(data, [b for u in found_units for b in u.blocks], original, path=path, language=language))
    calls.sort(key=lambda c: (c.span.start, c.start.line, c.start.column))
    return calls, parse_error


def _in_component(call: Call) -> Call:
    """A component's constant may be named by its markup too, which the scan does not read: never
    rewritten in place (the call is review, naming why)."""
    table = call.table
    own = table is not None and bool(table.link) and not table.link[0]  # a module-level constant of the component
    if table is None or (table.binding is None and not own):
        return call
    return dataclasses.replace(
        call,
        table=dataclasses.replace(
            table, binding=None, binding_refs=0, link=() if own else table.link,
            reasons=("a constant of the component, which its markup may use too",),
        ),  # fmt: skip
    )


_QUIET = re.compile(rb"<!--.*?-->|<(style|pre|code|textarea)\b.*?</\1\s*>", re.S | re.I)
# the receiver right before `.from(`: a name, or a call's end (`useSupabase()`), not `.storage`
_RECEIVER = re.compile(rb"([A-Za-z_$][\w$]*)(?:\(\))?\s*$")
_MARKUP_QUERY = re.compile(rb"\.\s*from\s*\(\s*(?:(['\"`])([A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?)\1)?")


def _markup_calls(data: bytes, blocks: Sequence[Block], src: SourceText, *, path: str, language: str) -> list[Call]:
    """Queries written in a component's markup (`{#await supabase.from('t')...}`, `@click=...`): not
    parsed, but never unseen. Each is a call flagged as in an unread region, so `patch` leaves it to a
    person and `check` counts it: certain when its table is a plain string, else dynamic."""
    from tableshift.model import Confidence, Kind, TableArg, TableSource
    from tableshift.scan.shared import CLIENTISH, TS_CANDIDATE, fold

    markup = bytearray(data)
    for block in blocks:
        markup[block.start : block.end] = data[block.start : block.end].translate(_BLANK)
    if b"from" not in markup and b"rpc" not in markup and b"postgres_changes" not in markup:
        return []  # no hit can be left (blanking the quiet regions below only takes bytes away)
    for quiet in _QUIET.finditer(markup):  # comments, styles and code samples are text, not code
        markup[quiet.start() : quiet.end()] = bytes(markup[quiet.start() : quiet.end()]).translate(_BLANK)
    out: list[Call] = []
    for hit in TS_CANDIDATE.finditer(markup):
        query = _MARKUP_QUERY.match(markup, hit.start())
        receiver = _RECEIVER.search(bytes(markup[max(0, hit.start() - 80) : hit.start()]))
        if query is None or receiver is None or not CLIENTISH.search(receiver.group(1).decode("ascii", "replace")):
            continue  # `.rpc(`, `Array.from(...)`, storage: not a table query of a client
        name = query.group(2).decode() if query.group(2) else None
        table = (
            TableArg(name, TableSource.LITERAL, span=Span(query.start(2), query.end(2)))
            if name is not None
            else TableArg(None, TableSource.DYNAMIC, reasons=("a query in the component's markup, whose table is not a plain string",))
        )
        start, end = src.position(hit.start()), src.position(query.end())
        out.append(
            Call(
                file=path,
                language=language,
                kind=Kind.TABLE,
                span=Span(hit.start(), query.end()),
                start=start,
                end=end,
                client="(markup)",
                code=src.line_text(start.line).strip(),
                chain=fold(src.line_text(start.line)),
                table=table,
                confidence=Confidence.MEDIUM,
                in_error_region=True,
                notes=("a query in the component's markup (template): only script blocks are read",),
            )
        )
    return out


def error_count(data: bytes, *, language: str) -> int:
    """Syntax errors of every script block, each module parsed with its own grammar."""
    from tableshift.scan import typescript

    original = SourceText(data)
    return sum(
        typescript.error_count(_Window(data, unit.blocks, original).copy, language=unit.grammar)
        for unit in units(data, language)
    )


def _grammar(attrs: dict[str, str | None], default: str) -> str | None:
    """The grammar of a script from its `lang` / `type`; None for data or a language not scanned."""
    if "src" in attrs:
        return None  # the code is in another file; a body, if any, is ignored
    kind = (attrs.get("type") or "").strip().lower()
    if kind not in _SCRIPT_TYPES:
        return None
    if "lang" in attrs:
        return _LANGS.get((attrs["lang"] or "").strip().lower())
    return _SCRIPT_TYPES[kind] or default


# -- markup ------------------------------------------------------------------


def _scripts(data: bytes, component: str, start: int) -> Iterator[_Script]:
    """`<script>` elements of the markup from `start` on, with their attributes and body."""
    size = len(data)
    nxt = _NEXT[component]
    stack = _Open()
    i = start
    while True:
        hit = nxt.search(data, i)
        if hit is None:
            return
        j = hit.start()
        if data[j] == 0x7B:  # `{`
            if component == "vue":  # an interpolation ends at the first `}}`, as in Vue's tokenizer
                end = data.find(b"}}", j + 2)
                i = size if end < 0 else end + 2
                continue
            i = _skip_braces(data, j)
            sigil = data[j + 1 : j + 2]
            if sigil == b"#":
                stack.push(_BLOCK)
            elif sigil == b"/":
                stack.close(_BLOCK)
            continue
        if data.startswith(b"<!--", j):
            end = data.find(b"-->", j + 4)
            i = size if end < 0 else end + 3
            continue
        second = data[j + 1 : j + 2]
        if second in (b"!", b"?"):  # doctype, CDATA, processing instruction: to the next `>`
            end = data.find(b">", j + 2)
            i = size if end < 0 else end + 1
            continue
        if second == b"/":
            name = _TAG_NAME.match(data, j + 2)
            end = data.find(b">", j + 2)
            i = size if end < 0 else end + 1
            if name is not None:
                stack.close(name.group().decode("latin-1").lower())
            continue
        name = _TAG_NAME.match(data, j + 1)
        if name is None:  # `a < b` in text
            i = j + 1
            continue
        tag = name.group().decode("latin-1").lower()
        root = stack.empty
        if component == "vue" and not root:  # only a root block's attributes are ever read
            attrs, (i, self_closing) = {}, _vue_tag_end(data, name.end())
        else:
            attrs, i, self_closing = _attributes(data, name.end(), component)
        if self_closing or tag in _VOID:
            continue
        template_markup = tag == "template" and (attrs.get("lang") or "html").strip().lower() == "html"
        if tag in _RAW_TEXT or (component == "vue" and root and not template_markup):
            # Vue's root blocks other than a markup <template> (custom blocks: <docs>, <i18n>) are raw text
            body = i
            end, i = _end_tag(data, body, tag)
            if tag == "script":
                yield _Script(attrs, body, end, root)
            continue
        stack.push(tag)


_BLOCK = "{#"  # a Svelte block: `{#if}`, `{#each}`...


class _Open:
    """Open elements and Svelte blocks. An end tag closes the innermost open element of its name
    and everything opened inside it, never across a block; one that matches nothing is ignored.
    Each name's places are indexed, so hostile markup (thousands of stray end tags) stays linear."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.where: dict[str, list[int]] = {}

    @property
    def empty(self) -> bool:
        return not self.names

    def push(self, name: str) -> None:
        self.where.setdefault(name, []).append(len(self.names))
        self.names.append(name)

    def close(self, name: str) -> None:
        places = self.where.get(name)
        if not places:
            return
        blocks = self.where.get(_BLOCK)
        if name != _BLOCK and blocks and blocks[-1] > places[-1]:
            return
        cut = places[-1]
        for removed in self.names[cut:]:
            self.where[removed].pop()
        del self.names[cut:]


def _end_tag(data: bytes, start: int, tag: str) -> tuple[int, int]:
    """(where raw text ends, just past its end tag): the first `</tag` ends it, as in HTML."""
    pattern = re.compile(rb"</" + re.escape(tag.encode()) + rb"(?=[\s/>]|\Z)", re.I)
    match = pattern.search(data, start)
    if match is None:
        return len(data), len(data)
    end = data.find(b">", match.end())
    return match.start(), len(data) if end < 0 else end + 1


def _attributes(data: bytes, i: int, component: str) -> tuple[dict[str, str | None], int, bool]:
    """The attributes of a start tag from `i`; where the tag ends; whether it closes itself (`/>`)."""
    size = len(data)
    attrs: dict[str, str | None] = {}
    while True:
        i = _SPACE.match(data, i).end()  # type: ignore[union-attr]
        if i >= size:
            return attrs, size, False
        char = data[i]
        if char == 0x3E:  # `>`
            return attrs, i + 1, False
        if data.startswith(b"/>", i):
            return attrs, i + 2, True
        if char == 0x2F:  # a stray `/`
            i += 1
            continue
        if char == 0x7B and component != "vue":  # `{...props}`, `{name}`
            i = _skip_braces(data, i)
            continue
        name = _ATTR_NAME.match(data, i)
        if name is None:  # `=` where a name should start
            i += 1
            continue
        key = name.group().decode("utf-8", "replace").lower()
        i = _SPACE.match(data, name.end()).end()  # type: ignore[union-attr]
        value: str | None = None
        if i < size and data[i] == 0x3D:  # `=`
            i = _SPACE.match(data, i + 1).end()  # type: ignore[union-attr]
            start = i
            quote = data[i : i + 1]
            if quote in (b'"', b"'"):
                i = _quoted_end(data, i, component)
                value = data[start + 1 : i - 1].decode("utf-8", "replace")
            elif quote == b"{" and component != "vue":
                i = _skip_braces(data, i)
                value = data[start:i].decode("utf-8", "replace")
            elif quote == b"`" and component == "astro":
                i = _skip_template(data, i)
                value = data[start + 1 : i - 1].decode("utf-8", "replace")
            else:
                unquoted = _UNQUOTED.match(data, i)
                i = unquoted.end() if unquoted is not None else i
                value = data[start:i].decode("utf-8", "replace")
        attrs.setdefault(key, value)


# a Vue start tag's attributes, as `_attributes` reads them: spaces, a stray `/` or `=`, a name and
# its value (quoted: to the next same quote, or the end; else up to a space or `>`)
_VUE_ATTRIBUTES = re.compile(rb"""(?:\s+|/(?!>)|=|[^\s/>=]+(?:\s*=\s*(?:"[^"]*"?|'[^']*'?|[^\s>]*))?)*""")


def _vue_tag_end(data: bytes, i: int) -> tuple[int, bool]:
    """Where a Vue start tag from `i` ends and whether it closes itself, as `_attributes` finds
    them, without reading its attributes (a regular expression in C, not a loop per attribute)."""
    j = _VUE_ATTRIBUTES.match(data, i).end()  # type: ignore[union-attr]
    if j >= len(data):
        return len(data), False
    if data[j] == 0x3E:  # `>`
        return j + 1, False
    return j + 2, True  # `/>`: nothing else stops the attributes


def _quoted_end(data: bytes, i: int, component: str) -> int:
    """Just past a quoted attribute value; Svelte's may hold `{expressions}` with quotes of their own."""
    quote = data[i]
    if component != "svelte":  # no expressions inside: the next quote ends it
        end = data.find(data[i : i + 1], i + 1)
        return len(data) if end < 0 else end + 1
    i += 1
    while i < len(data):
        char = data[i]
        if char == quote:
            return i + 1
        if char == 0x7B and component == "svelte":
            i = _skip_braces(data, i)
            continue
        i += 1
    return len(data)


# -- JavaScript inside markup --------------------------------------------------


def _skip_braces(data: bytes, i: int) -> int:
    """Just past the `}` matching the `{` at `i`, skipping strings, template literals and comments."""
    return _skip_code(data, i + 1, [0x7B])


def _skip_template(data: bytes, i: int) -> int:
    """Just past the template literal opening at `i`."""
    return _skip_code(data, i + 1, [0x60])


def _skip_code(data: bytes, i: int, stack: list[int]) -> int:
    size = len(data)
    while i < size and stack:
        char = data[i]
        if stack[-1] == 0x60:  # inside a template literal's text
            if char == 0x5C:  # `\`
                i += 2
            elif char == 0x60:
                stack.pop()
                i += 1
            elif data.startswith(b"${", i):
                stack.append(0x7B)
                i += 2
            else:
                i += 1
            continue
        if char in (0x22, 0x27):  # a string ends at its quote, or at the end of the line it is on
            i = _string_end(data, i)
        elif char == 0x60:
            stack.append(0x60)
            i += 1
        elif data.startswith(b"//", i):
            end = data.find(b"\n", i)
            i = size if end < 0 else end
        elif data.startswith(b"/*", i):
            end = data.find(b"*/", i + 2)
            i = size if end < 0 else end + 2
        else:
            if char == 0x7B:
                stack.append(0x7B)
            elif char == 0x7D:
                stack.pop()
            i += 1
    return i


def _string_end(data: bytes, i: int) -> int:
    quote = data[i]
    i += 1
    while i < len(data):
        char = data[i]
        if char == 0x5C:
            i += 2
            continue
        if char == quote:
            return i + 1
        if char == 0x0A:  # strings do not span lines: an apostrophe in text must not swallow the file
            return i
        i += 1
    return len(data)


def _frontmatter(data: bytes, start: int) -> tuple[int, int, int] | None:
    """Astro's `---` fences: (code start, code end, where the template starts), or None."""
    i = _SPACE.match(data, start).end()  # type: ignore[union-attr]
    if not data.startswith(b"---", i):
        return None
    code = i + 3
    line = data.find(b"\n", code)
    i = len(data) if line < 0 else line + 1
    stack: list[int] = []  # open template literals, and the braces of their `${}`
    size = len(data)
    while i < size:
        if not stack and data[i - 1] in b"\r\n":
            fence = _FENCE.match(data, i)
            if fence is not None:
                return code, i, fence.end()
        char = data[i]
        if (stack and stack[-1] == 0x60) or char in (0x22, 0x27, 0x60) or data.startswith((b"//", b"/*"), i):
            i = _skip_token(data, i, stack)
        else:
            # braces matter only inside `${}`: a `---` line outside template literals is the fence
            if stack and char == 0x7B:
                stack.append(0x7B)
            elif stack and char == 0x7D:
                stack.pop()
            i += 1
    return code, size, size


def _skip_token(data: bytes, i: int, stack: list[int]) -> int:
    """One step of the frontmatter lexer: a string, a comment, or template-literal text."""
    size = len(data)
    char = data[i]
    if stack and stack[-1] == 0x60:
        if char == 0x5C:
            return i + 2
        if char == 0x60:
            stack.pop()
        elif data.startswith(b"${", i):
            stack.append(0x7B)
            return i + 2
        return i + 1
    if char in (0x22, 0x27):
        return _string_end(data, i)
    if char == 0x60:
        stack.append(0x60)
        return i + 1
    if data.startswith(b"//", i):
        end = data.find(b"\n", i)
        return size if end < 0 else end
    end = data.find(b"*/", i + 2)
    return size if end < 0 else end + 2


# -- positions -----------------------------------------------------------------


class _Window:
    """The blocks of one module in a copy of the file cut to them: from the start of the line the
    first one starts on to the end of the last, the rest blanked. Parsing costs the module, not the
    file (an Astro page with a thousand scripts is not parsed a thousand times whole); each place
    found in it is moved back: spans by the bytes cut before, lines by the lines cut before.

    Columns count characters: a blanked multi-byte character before a block on its first line is
    one space per byte in the copy, one character in the file, so that line is counted again."""

    def __init__(self, data: bytes, blocks: Sequence[Block], original: SourceText) -> None:
        self.original = original
        first = original.line(blocks[0].start)
        self.base = original.line_starts[first - 1]
        self.lines_before = first - 1
        self.copy = masked(data, blocks, start=self.base, end=blocks[-1].end)
        self.text = SourceText(self.copy)
        self.recount: set[int] = set()  # lines of the copy whose columns differ from the file's
        for block in blocks:
            line = original.line(block.start)
            start = original.line_starts[line - 1]
            before = data[start : block.start]
            if start == 0:
                before = before.removeprefix(BOM)
            if any(b >= 0x80 for b in before):
                self.recount.add(line - self.lines_before)
        if self.base > 0 and self.copy.startswith(BOM):  # not a file's BOM: a character of the code
            self.recount.add(1)

    def place(self, call: Call) -> Call:
        if not self.base and not self.lines_before and not self.recount:
            return call  # the copy starts where the file does: every place is already the file's
        return _remap(call, self._span, self._position)

    def _span(self, span: Span) -> Span:
        return Span(span.start + self.base, span.end + self.base) if self.base else span

    def _position(self, pos: Position) -> Position:
        if pos.line not in self.recount:
            return Position(pos.line + self.lines_before, pos.column) if self.lines_before else pos
        starts = self.text.line_starts
        lo = starts[pos.line - 1]
        hi = starts[pos.line] - 1 if pos.line < len(starts) else len(self.copy)
        while lo < hi:  # the first offset at that column
            mid = (lo + hi) // 2
            if self.text.position(mid).column < pos.column:
                lo = mid + 1
            else:
                hi = mid
        return self.original.position(lo + self.base)


def _remap(value: Any, span: Any, position: Any) -> Any:
    """`value` with every Span and Position in it moved (records are frozen: rebuilt)."""
    if isinstance(value, Position):
        return position(value)
    if isinstance(value, Span):
        return span(value)
    if isinstance(value, tuple):
        items = tuple(_remap(v, span, position) for v in value)
        return value if all(a is b for a, b in zip(items, value)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            old = getattr(value, f.name)
            new = _remap(old, span, position)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value
