"""Benchmark: replay from EventStoreDB into the raw layer, beside reading the same range alone.

- ceiling: ``esdbclient.read_all`` over the same filtered range, events counted, nothing else.
- replay: ``replay_from_eventstore`` into a fresh DuckLake warehouse (read, parse, dedupe, land,
  checkpoint per page).

Run: ``.venv/bin/python bench/replay_throughput.py [--events 50000]``. The server runs in its own
process. Prints a table and, last, the headline ratio replay / ceiling (target >= 0.7).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from esdbclient import EventStoreDBClient, NewEvent, StreamState
from eventstore_throughput import server_process

from cdr_platform.devtools.shutdown import CleanStop
from cdr_platform.events import encode_event
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.replay import ALL_BUSINESS_TYPES, replay_from_eventstore
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.sources.eventstore_reader import type_filter
from tests.kinesis_helpers import usage_events


def load(client: EventStoreDBClient, count: int) -> None:
    events = usage_events(count, members=2_000, prefix="replay-bench")
    for start in range(0, count, 100):
        chunk = events[start : start + 100]
        client.append_to_stream(
            f"bench-{start // 100}",
            current_version=StreamState.NO_STREAM,
            events=[NewEvent(e.event_type, encode_event(e), id=e.event_id) for e in chunk],
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    with server_process(None) as uri, tempfile.TemporaryDirectory() as tmp:
        client = EventStoreDBClient(uri=uri)
        load(client, args.events)
        started = time.perf_counter()
        read = sum(1 for _ in client.read_all(filter_include=type_filter(ALL_BUSINESS_TYPES)))
        ceiling_s = time.perf_counter() - started
        con = connect_lake(f"sqlite:{Path(tmp) / 'lake.sqlite'}", f"{Path(tmp) / 'lake'}/")
        ensure_schema(con)
        report = replay_from_eventstore(con, client, "bench")
        con.close()
        client.close()
    rows = [
        ("ceiling: esdbclient read_all, same filter", read, read / ceiling_s),
        ("replay_from_eventstore into DuckLake", report.read, report.events_per_second),
    ]
    print(f"{'path':44} {'events':>9} {'events/s':>11}")
    for name, count, rate in rows:
        print(f"{name:44} {count:9,d} {rate:11,.0f}")
    print(f"replay / ceiling = {rows[1][2] / rows[0][2]:.2f} at {rows[1][2]:,.0f} events/s")


if __name__ == "__main__":
    with CleanStop("bench/replay_throughput.py"):  # Ctrl-C or SIGTERM ends every process it started
        main()
