"""Walking what pglast gives: every node of a parsed SQL tree, every object of a PL/pgSQL parse
tree (JSON), so that each reader of the catalog's definitions says only what it looks for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def nodes(value: object) -> Iterator[Any]:
    """Every pglast AST node in `value` (a node, or a list or tuple of them), parents first."""
    from pglast import ast

    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, ast.Node):
            yield item
            stack.extend(reversed([getattr(item, name) for name in item if name != "location"]))


def objects(value: object) -> Iterator[dict[str, Any]]:
    """Every JSON object in a PL/pgSQL parse tree (`pglast.parse_plpgsql`), parents first."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
