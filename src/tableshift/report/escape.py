"""Make user strings (file names, code, reasons) safe for human formats: terminals and Markdown.

A file name may hold a newline, an escape sequence or a backtick; code may hold bytes that are
not UTF-8. Shown raw, they forge lines, move a terminal's cursor or break a table. Machine
formats (JSON, SARIF) carry the text as it is; these helpers are for everything a person reads.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def clean_text(text: str) -> str:
    """Valid Unicode: bytes that were not UTF-8 (kept as surrogates while scanning) become U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte made
        return text.encode("utf-8", "replace").decode("utf-8")


def scrub(value: Any) -> Any:
    """`clean_text` applied to every string in a JSON-shaped value (keys too)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """Indented JSON that is always valid UTF-8: source bytes that were not become U+FFFD."""
    text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(scrub(value), indent=2, ensure_ascii=False) + "\n"
    return text


def printable(text: str) -> str:
    """One line of visible characters: controls shown as escapes (`\\n`, `\\x1b`), never executed."""
    text = clean_text(text)
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"), text)


def md_code(text: str) -> str:
    """Inline Markdown code for any text: a fence longer than any run of backticks inside it."""
    text = printable(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_text(text: str) -> str:
    """Markdown prose or a table cell that renders as the text itself."""
    return _MD_SPECIAL.sub(r"\\\1", printable(text))
