"""The DuckLake warehouse: connections, the raw-layer schema, and transactional landing."""
