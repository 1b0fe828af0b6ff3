"""The producer library app-servers embed: ``FactPublisher`` (``track_*`` calls -> Kafka ``facts``)."""

from services.producer.publisher import BROADCAST, FactPublisher
from services.producer.routing import Router, fallback_key

__all__ = ["BROADCAST", "FactPublisher", "Router", "fallback_key"]
