"""The producer library app-servers embed: ``FactPublisher`` (``track_*`` calls -> Kafka ``facts``)."""

from services.producer.publisher import BROADCAST, FactPublisher, envelope_key
from services.producer.routing import Router, fallback_key

__all__ = ["BROADCAST", "FactPublisher", "Router", "envelope_key", "fallback_key"]
