"""EventStoreDB landing: the member lifecycle events, read straight from the source of truth."""
