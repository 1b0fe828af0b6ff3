"""Demo tooling, reused by the benchmark and the reliability tests.

* ``generator``: a seeded, realistic fact stream (``Workload``) and the bundled ``sample_facts.jsonl``.
* ``endpoint``: a recording loopback stand-in for the analytics endpoint.
* ``__main__``: ``python -m tools.demo``, the whole pipeline end to end on this machine.
"""
