"""What the first pass finds in a file from its bytes: skipped (too large, minified), nothing a
query call could be, generated types only, or a candidate (with its digest). The engine's first
pass and the early process (`tableshift.early`) read files with it; it imports no parser."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from tableshift import memo
from tableshift.fsutil import read_bytes
from tableshift.scan import candidate_pattern, has_candidates
from tableshift.scan.shared import generated_types

if TYPE_CHECKING:
    from tableshift.discover import SourceFile
    from tableshift.options import Options

MINIFIED_MIN_SIZE = 20_000
MINIFIED_LINE_LENGTH = 1_000


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verdict(source: SourceFile, info: os.stat_result, options: Options, *, digested: bool) -> str:
    """The verdict on a file's bytes: `error:`, `skip:`, `none`, `generated` or `digest:` (its
    digest only when `digested`: it keys a cache entry and tells a file that changed before its
    scan; without a cache neither is read, and the scan hashes what it reads for `patch`)."""
    try:
        data = read_bytes(source.path, info.st_size)
    except OSError as exc:
        return f"error:cannot read: {exc.strerror}"
    skipped = _skip_reason(data, source.language, options)
    if skipped is not None:
        return f"skip:{int(has_candidates(data, source.language))}:{skipped}"
    if not has_candidates(data, source.language):
        return "generated" if source.language != "python" and generated_types(data) else "none"
    return f"digest:{digest(data)}" if digested else "digest:"


def stamped_verdict(source: SourceFile, options: Options, *, digested: bool = True) -> tuple[str | None, str]:
    """The file's stat stamp and its verdict (with its digest, unless not `digested`); no stamp
    when it cannot be read."""
    try:
        info = os.stat(source.path)
    except OSError as exc:
        return None, f"error:cannot read: {exc.strerror}"
    return memo.stamp_of(info), read_verdict(source, info, options, digested=digested)


def _skip_reason(data: bytes, language: str, options: Options) -> str | None:
    if len(data) > options.max_file_size:
        return f"larger than {options.max_file_size:,} bytes (--max-file-size)"
    if options.skip_minified and len(data) > MINIFIED_MIN_SIZE:
        lines = data.count(b"\n") + 1
        if len(data) / lines > MINIFIED_LINE_LENGTH and not _ordinary_candidate_line(data, language):
            return "minified or generated (average line longer than 1,000 characters; --no-skip-minified scans it)"
    return None


def _ordinary_candidate_line(data: bytes, language: str) -> bool:
    """Whether a query call may sit on a line of ordinary length: then the file is code, whatever
    its long lines (a 25,000-character comment must not hide a call below it)."""
    for match in candidate_pattern(language).finditer(data):
        start = data.rfind(b"\n", 0, match.start()) + 1
        end = data.find(b"\n", match.end())
        if (len(data) if end == -1 else end) - start <= MINIFIED_LINE_LENGTH:
            return True
    return False


