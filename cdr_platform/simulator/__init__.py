"""A seeded mobile-operator simulator, its EventStoreDB producers and the EventStoreDB -> Kinesis relay.

Modules: ``model`` (members, plans, cells), ``traffic`` (what members do), ``builders`` (records to
events and streams), ``simulation`` (backfill and live runs), ``producers`` (appends to EventStoreDB),
``relay`` ($all to Kinesis), ``faults`` and ``ground_truth``; ``commands`` holds the CLI. See README.md.
"""
