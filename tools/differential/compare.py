"""Row comparison, fact by fact: JSON equality **and** key order, and the documented differences.

A difference is one ``(event_type, field)`` pair: ``field`` is the dotted path of a value that differs
(``event_params.runtime.runtime_os``), of a key only one side has, ``<path>.(key order)`` when both
sides have the same keys in another order, or ``(row)`` when one side has a row the other has not. The
documented differences (:mod:`.documented`) say which pairs are accepted and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

ROW: Final = "(row)"
KEY_ORDER: Final = "(key order)"


@dataclass(frozen=True, slots=True)
class Difference:
    event_type: str
    field: str


def event_type(row: Any) -> str:
    return str(row.get("event_type")) if isinstance(row, dict) else "?"


def _diff_values(ours: Any, theirs: Any, path: str) -> Iterator[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        our_keys, their_keys = list(ours), list(theirs)
        for key in our_keys:
            sub = f"{path}.{key}" if path else key
            if key not in theirs:
                yield sub
            else:
                yield from _diff_values(ours[key], theirs[key], sub)
        for key in their_keys:
            if key not in ours:
                yield f"{path}.{key}" if path else key
        if set(our_keys) == set(their_keys) and our_keys != their_keys:
            yield f"{path}.{KEY_ORDER}" if path else KEY_ORDER
    elif isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            yield from _diff_values(a, b, f"{path}[{index}]")
    elif type(ours) is not type(theirs) or ours != theirs:
        # bool is not int and 1 is not 1.0 in JSON terms: compare types too
        yield path or "(value)"


def row_differences(ours: Any, theirs: Any) -> list[Difference]:
    """Differences between two rows of one fact; empty iff the rows are identical, key order included."""
    kind = event_type(theirs)
    if event_type(ours) != kind:
        return [Difference(event_type(ours), ROW), Difference(kind, ROW)]
    return [Difference(kind, field) for field in _diff_values(ours, theirs, "")]


def fact_differences(ours: list[Any], theirs: list[Any]) -> tuple[int, int, list[list[Difference]]]:
    """Compare the rows two reducers emitted for one fact, paired in emission order.

    Returns (rows compared, rows identical, the differences of each non-identical row pair or lone row).
    """
    compared = max(len(ours), len(theirs))
    identical = 0
    found: list[list[Difference]] = []
    for index in range(compared):
        if index >= len(ours):
            found.append([Difference(event_type(theirs[index]), ROW)])
        elif index >= len(theirs):
            found.append([Difference(event_type(ours[index]), ROW)])
        else:
            differences = row_differences(ours[index], theirs[index])
            if differences:
                found.append(differences)
            else:
                identical += 1
    return compared, identical, found
