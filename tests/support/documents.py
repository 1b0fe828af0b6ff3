"""Structure-aware edits of JSON documents (decoded facts), for the decode fuzz tests."""

from __future__ import annotations

from typing import Any


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``value`` (dict keys and list indexes), the empty path (the whole value) first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found.extend(paths(inner, (*prefix, key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found.extend(paths(inner, (*prefix, index)))
    return found


def value_at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def mutate(document: Any, path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    """``document`` (changed in place) with the value at ``path`` replaced, or its key deleted or renamed
    (``action``: ``"replace"``, ``"delete"``, ``"rename"``). The empty path replaces the whole document."""
    if not path:
        return replacement
    parent = value_at(document, path[:-1])
    last = path[-1]
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        parent[f"{last}_renamed"] = parent.pop(last)
    else:
        parent[last] = replacement
    return document
