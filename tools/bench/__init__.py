"""``bench``: the performance suite of the pipeline (issue 7), every stage against its own ceiling.

``python -m tools.bench --help`` (or the ``bench`` console script) runs it. Each case is measured at
least three times in one run and reported as min and median, next to a *baseline* (the ceiling of the
same work) measured in the same run on the same broker, so the ratio holds on a noisy machine:

====  ==================================================  ============================================
case  measures                                            against
====  ==================================================  ============================================
B1    pure reducer: decode fact, reduce, encode rows      msgspec decode + encode of the same bytes
B1r   ``replay`` CLI end to end on a JSON-lines file      (facts/s, no target)
B2    processor, exactly-once, facts -> committed rows    raw aiokafka consume -> produce passthrough
B3    latency fact produced -> row readable (committed)   at half of B2's median rate
B4    sender, events -> HTTP endpoint, commit after ack   plain httpx POSTs of the same bodies
B5    reducer state bytes per open thread; RSS flatness   (absolute: 2 KiB, flat RSS)
B6    restore from the changelog, threads/s               (absolute: 50,000 threads/s)
B7    B2 with 1/2/4 partitions per instance, 1/2 inst.    per-core figure (facts per CPU-second)
====  ==================================================  ============================================

Modules: :mod:`.plan` (sizes per mode), :mod:`.common` (timing, stats, profiles, results),
:mod:`.offline` (B1, B5), :mod:`.kafka` (B2, B3, B6, B7), :mod:`.delivery` (B4), :mod:`.child`
(the processes the bench starts: processor, passthrough, memory, endpoint), :mod:`.report` (table,
JSON, plot). ``docs/performance.md`` describes the method and shows the last full run.
"""
