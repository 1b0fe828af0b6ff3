"""The documented differences: the machine-readable table in docs/differences.md.

The table is the fenced block that follows the line ``<!-- differential:accepted -->``::

    reason | event_type | field
    wall-clock | codex_turn_steer_event | event_params.created_at

Only three reasons are acceptable (:data:`REASONS`); a row with any other reason is an error, so the
runner can accept exactly the documented differences and nothing else. ``event_type`` ``*`` matches
every event type. ``field`` is a dotted path as :mod:`.compare` prints it; a trailing ``.*`` matches
the path and everything under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tools.differential.compare import Difference

REASONS: Final = ("partitioning", "wall-clock", "producer-side derivation")
MARKER: Final = "<!-- differential:accepted -->"
DEFAULT_PATH: Final = Path(__file__).resolve().parents[2] / "docs" / "differences.md"


class DocumentedDifferencesError(ValueError):
    """The table is missing or has a row the runner cannot accept."""


@dataclass(frozen=True, slots=True)
class Accepted:
    reason: str
    event_type: str
    field: str

    def matches(self, difference: Difference) -> bool:
        if self.event_type not in ("*", difference.event_type):
            return False
        if self.field.endswith(".*"):
            prefix = self.field[:-2]
            return difference.field == prefix or difference.field.startswith(prefix + ".")
        return difference.field == self.field


def parse(text: str) -> list[Accepted]:
    lines = text.splitlines()
    try:
        start = lines.index(MARKER)
    except ValueError as exc:
        raise DocumentedDifferencesError(f"no {MARKER} line") from exc
    fence = start + 1
    if fence >= len(lines) or not lines[fence].startswith("```"):
        raise DocumentedDifferencesError(f"{MARKER} is not followed by a fenced block")
    table: list[Accepted] = []
    for number, line in enumerate(lines[fence + 1 :], start=fence + 2):
        if line.startswith("```"):
            return table
        if not line.strip() or line.startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) != 3:
            raise DocumentedDifferencesError(f"line {number}: expected 'reason | event_type | field'")
        if cells == ["reason", "event_type", "field"]:
            continue
        reason, kind, field = cells
        if reason not in REASONS:
            raise DocumentedDifferencesError(f"line {number}: reason {reason!r} is not one of {', '.join(REASONS)}")
        table.append(Accepted(reason, kind, field))
    raise DocumentedDifferencesError("the fenced block is not closed")


def load(path: Path = DEFAULT_PATH) -> list[Accepted]:
    return parse(path.read_text(encoding="utf-8"))


def reason_for(table: list[Accepted], difference: Difference) -> str | None:
    """The documented reason of ``difference``, or ``None`` when it is not documented."""
    for accepted in table:
        if accepted.matches(difference):
            return accepted.reason
    return None
