"""The sender service: drains the ``events`` topic to the analytics HTTP endpoint, at least once.

``python -m services.sender --help`` runs it; ``docs/sender.md`` explains how it works.

* :mod:`services.sender.client`: one HTTP request (:class:`EndpointClient`), the retry policy, the
  idempotency key.
* :mod:`services.sender.loop`: the :class:`Sender` (consume, batch, post, dead-letter, commit).
"""

from services.sender.client import EndpointClient, RetryPolicy, idempotency_key
from services.sender.loop import Sender, create_consumer, create_producer

__all__ = ["EndpointClient", "RetryPolicy", "Sender", "create_consumer", "create_producer", "idempotency_key"]
