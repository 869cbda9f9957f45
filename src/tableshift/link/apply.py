"""What the link pass changes in a call: a table argument bound to an import becomes what it names."""

from __future__ import annotations

from pathlib import Path

from tableshift.link.linker import Linker, Resolved
from tableshift.model import Call, TableArg, TableSource


def linked_table(call: Call, linker: Linker, path: Path) -> TableArg:
    """The call's table argument with its imported names followed; a broken link says which."""
    table = call.table
    assert table is not None
    if table.link:
        found = linker.resolve(path, table.link)
        if isinstance(found, Resolved):
            return TableArg(found.text, TableSource.CONSTANT, reasons=(f"constant {found.via}",))
        return TableArg(None, TableSource.DYNAMIC, candidates=table.candidates, reasons=(*table.reasons[:1], f"not resolved: {found}", *table.reasons[1:]))
    candidates = list(table.candidates)
    broken: list[str] = []
    for link in table.candidate_links:
        found = linker.resolve(path, link)
        if isinstance(found, Resolved):
            candidates.append(found.text)
        else:
            broken.append(f"a call site's argument is not resolved: {found}")
    return TableArg(
        None,
        TableSource.DYNAMIC,
        candidates=tuple(dict.fromkeys(candidates)),
        reasons=(*table.reasons, *dict.fromkeys(broken)),
    )
