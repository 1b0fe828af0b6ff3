"""Everything with a socket: the Kafka processor and sender services and their local tooling."""
