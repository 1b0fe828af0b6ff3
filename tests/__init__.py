"""Test suite package (lets pytest import tests.support modules by their package path)."""
