"""Recovery from the source of truth: dead-letter re-processing, reconciliation, replay."""
