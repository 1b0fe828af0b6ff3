"""The pure reducer: facts in, analytics rows out, no I/O.

``reduce(state, envelope) -> (state, rows)`` is the one entry point; ``initial_state()`` makes an empty
partition state; ``expire`` evicts idle families (by fact time); ``split_batches`` groups rows into
HTTP requests.

Importing :mod:`schemas` first applies the pure/compiled switch (``RA_COMPILED``, :mod:`schemas.compiled`)
before any reducer module is looked up.
"""

import schemas  # noqa: F401

# isort: split
from reducer.batching import split_batches
from reducer.core import family_key, initial_state, reduce
from reducer.expiry import enforce_caps, expire
from reducer.snapshot import changelog_records, restore, snapshot

__all__ = [
    "changelog_records",
    "enforce_caps",
    "expire",
    "family_key",
    "initial_state",
    "reduce",
    "restore",
    "snapshot",
    "split_batches",
]
