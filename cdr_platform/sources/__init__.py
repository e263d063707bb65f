"""Readers and clients for the platform's sources: Kinesis and EventStoreDB. Plain Python, no Dagster."""
