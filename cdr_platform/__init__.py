"""cdr-platform: event-sourced call-record data platform."""
