"""Integration tests: real Kafka broker, real loopback HTTP servers; no mocks."""
