"""Shared fixtures for the whole test tree.

Fixtures live in ``tests/support/<topic>.py`` modules and are registered here as pytest plugins, so this file
stays a table of contents. Add a module to ``pytest_plugins`` to share its fixtures with every test.

- ``tests.support.kafka``: ``kafka_broker`` / ``kafka_bootstrap`` (a real local KRaft broker per session).
- ``tests.support.mypyc``: the ``--mypyc`` flag (opt-in tests of the compiled reducer build).
- ``tests.support.secured_kafka``: ``secured_kafka`` (a broker with SASL_SSL and mutual-TLS listeners, on first use).
"""

pytest_plugins = [
    "tests.support.kafka",
    "tests.support.endpoint",
    "tests.support.secured_kafka",
    "tests.support.promtool",
    "tests.support.mypyc",
]
