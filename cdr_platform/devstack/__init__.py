"""The embedded local stack (kinesis-local, an EventStoreDB-compatible server): local work and tests only."""
