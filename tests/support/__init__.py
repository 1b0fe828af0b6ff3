"""Test support code shared across test kinds: fixtures (registered in tests/conftest.py) and helpers."""
