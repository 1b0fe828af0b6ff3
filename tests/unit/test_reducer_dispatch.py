"""The reducer's dispatch table covers every fact kind the wire schema can decode."""

from __future__ import annotations

import typing

from reducer.core import _HANDLERS
from schemas.facts import FactKind


def test_every_fact_kind_has_exactly_one_handler() -> None:
    assert set(_HANDLERS) == set(typing.get_args(FactKind))
