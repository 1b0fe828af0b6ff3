"""Demo tooling: a seeded fact-stream generator and a bundled sample (``sample_facts.jsonl``)."""
