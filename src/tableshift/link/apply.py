"""What the link pass changes in a call: a table argument bound to an import becomes what it names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tableshift.link.callsites import CallSite
from tableshift.link.linker import Linker, Resolved
from tableshift.model import Call, Kind, Origin, Span, TableArg, TableSource
from tableshift.scan.shared import fold
from tableshift.scan.source import SourceText


def linked_table(call: Call, linker: Linker, path: Path) -> TableArg:
    """The call's table argument with its imported names followed; a broken link says which."""
    table = call.table
    assert table is not None
    if table.link and not table.link[0]:
        return _own_constant(table, linker, path)
    if table.link:
        found = linker.resolve(path, table.link)
        if isinstance(found, Resolved):
            origin = Origin(linker.show(found.file), str(found.file), found.span, found.name) if found.span is not None else None
            return TableArg(found.text, TableSource.CONSTANT, reasons=(f"constant {found.via}",), origin=origin)
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


def _own_constant(table: TableArg, linker: Linker, path: Path) -> TableArg:
    """A module-level constant of the call's own module: other modules may import it too."""
    module = path.resolve()
    found = linker.local_target(module, table.link[1], tuple(table.link[2:]))
    plain = dataclasses.replace(table, link=())
    if found is None or found[0] != module or found[1].text != table.name or found[1].span is None:
        return plain
    name = ".".join(table.link[1:])
    where = linker.show(module)
    origin = Origin(where, str(module), found[1].span, name)
    return dataclasses.replace(plain, reasons=(f"constant `{name}` in {where}",), origin=origin)


_SHOWN_SITES = 5


def with_callers(table: TableArg, sites: list[CallSite]) -> TableArg:
    """A helper's parameter with the tables its callers in other files pass, each caller a reason."""
    if not sites:
        return table
    names = [name for site in sites for name in site.names]
    shown = [f"called from {s.file}:{s.line} with `{s.argument}`" + (f" ({s.broken})" if s.broken else "") for s in sites[:_SHOWN_SITES]]
    if len(sites) > _SHOWN_SITES:
        shown.append(f"and {len(sites) - _SHOWN_SITES} more call sites")
    return dataclasses.replace(
        table, candidates=tuple(dict.fromkeys((*table.candidates, *names))), reasons=(*table.reasons, *shown)
    )


def site_call(site: CallSite, data: bytes, language: str) -> Call:
    """A helper's call site as a call of its own: for the gate, it uses the table it passes."""
    src = SourceText(data)
    start, end = src.position(site.start), src.position(site.end)
    where = f"{site.helper.name}` ({site.helper_file}"
    reason = f"passes `{site.argument}` to helper `{where}), which queries the table it is given"
    return Call(
        file=site.file,
        language=language,
        kind=Kind.HELPER,
        span=Span(site.start, site.end),
        start=start,
        end=end,
        client=site.helper.name,
        code=src.line_text(start.line).strip(),
        chain=fold(src.text(Span(site.start, site.end))),
        table=TableArg(
            None,
            TableSource.DYNAMIC,
            candidates=site.names,
            reasons=(reason, *((f"not resolved: {site.broken}",) if site.broken else ())),
        ),
    )
