"""The reducer service: a Kafka consumer group that runs the pure reducer per input partition.

``python -m services.processor --help`` runs it. Layout:

* :mod:`.topics` — every topic name and its configuration, in one place;
* :mod:`.partition` — one :class:`~.partition.PartitionWorker` per assigned partition (its state,
  its transactional producer, its changelog restore);
* :mod:`.transaction` — the commit protocol, as numbered steps;
* :mod:`.deadletter` — dead-letter records for facts that cannot be reduced;
* :mod:`.service` — the consumer loop and the rebalance listener;
* :mod:`.faults` — crash points for the reliability suite (inactive unless configured).
"""
