"""Turns: the per-turn state that tool items count into, and the turn rows.

This first cut keeps what tool items need (turn state created by ``turn/started``); the turn,
steer and accepted-line rows are added on top of the same state.
"""

from __future__ import annotations

from schemas.protocol import TurnNotificationParams
from schemas.state import FamilyState, TurnState


def ensure_turn(family: FamilyState, turn_id: str) -> TurnState:
    turn = family.turns.get(turn_id)
    if turn is None:
        turn = family.turns[turn_id] = TurnState()
    return turn


def on_turn_started(family: FamilyState, params: TurnNotificationParams) -> None:
    turn = ensure_turn(family, params.turn.id)
    turn.thread_id = params.thread_id
    started_at = params.turn.started_at
    turn.started_at = started_at if started_at is not None and started_at >= 0 else None
