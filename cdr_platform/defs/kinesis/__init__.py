"""Kinesis landing: the usage events."""
