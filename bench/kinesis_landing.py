"""Benchmark: Kinesis landing throughput, beside the ceiling and a naive loader, in one run.

- ceiling: read the same records from kinesis-local, de-aggregate and parse them; land nothing.
- landing: ``land_kinesis_stream`` into a fresh DuckLake warehouse (rows + checkpoints per round).
- naive: one INSERT (its own transaction) per event, on a sample.

Run: ``.venv/bin/python bench/kinesis_landing.py [--events 100000]``. Prints a table and, last,
the headline ratio landing / ceiling (target >= 0.8, and >= 50k events/s landed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdr_platform.devstack.kinesis_local import kill_process, start_kinesis_local, wait_until_serving
from cdr_platform.devstack.ports import free_port
from cdr_platform.devtools.shutdown import CleanStop
from cdr_platform.events import Rejection, parse_event
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.kinesis_landing import land_kinesis_stream, page_to_records
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.sources.kinesis_client import kinesis_client
from cdr_platform.sources.kinesis_reader import list_shards, read_shard_page
from tests.kinesis_helpers import new_stream, put_events, usage_events


def ceiling(client, stream: str) -> tuple[int, float]:
    started = time.perf_counter()
    parsed = 0
    for shard in list_shards(client, stream):
        after = None
        while True:
            page = read_shard_page(client, stream, shard.shard_id, after, max_records=5_000)
            for record in page_to_records(page):
                parsed += not isinstance(parse_event(record.data), Rejection)
            if not page.records:
                break
            after = page.last_sequence
    return parsed, time.perf_counter() - started


def naive(events, workdir: Path, sample: int) -> tuple[int, float]:
    con = connect_lake(f"sqlite:{workdir / 'naive.sqlite'}", f"{workdir / 'naive'}/")
    ensure_schema(con)
    started = time.perf_counter()
    for event in events[:sample]:
        row = event.to_row()
        con.execute(
            "INSERT INTO raw.usage_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'kinesis', '?', now())",
            list(row),
        )
    con.close()
    return sample, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=1_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        process = start_kinesis_local(port, workdir / "kinesis.log")
        endpoint = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(endpoint, process, 60)
            client = kinesis_client("us-east-1", endpoint)
            stream = new_stream(client, shards=2)
            events = usage_events(args.events, members=2_000, prefix="bench")
            put_events(client, stream, events, per_record=200)

            read_n, read_s = ceiling(client, stream)
            con = connect_lake(f"sqlite:{workdir / 'lake.sqlite'}", f"{workdir / 'lake'}/")
            ensure_schema(con)
            report = land_kinesis_stream(con, client, stream, records_per_page=5_000, max_rounds=10_000)
            con.close()
            naive_n, naive_s = naive(events, workdir, args.naive_sample)
        finally:
            kill_process(process.pid)

    rows = [
        ("ceiling: read + parse, no landing", read_n, read_n / read_s),
        ("land_kinesis_stream (this platform)", report.landed, report.landed / report.seconds),
        ("naive: one INSERT per event", naive_n, naive_n / naive_s),
    ]
    print(f"{'path':40} {'events':>9} {'events/s':>11}")
    for name, count, rate in rows:
        print(f"{name:40} {count:9,d} {rate:11,.0f}")
    landing, top, slow = rows[1][2], rows[0][2], rows[2][2]
    print(f"landing vs naive: {landing / slow:.1f}x")
    print(f"landing / ceiling = {landing / top:.2f} at {landing:,.0f} events/s landed")


if __name__ == "__main__":
    with CleanStop("bench/kinesis_landing.py"):  # Ctrl-C or SIGTERM ends every process it started
        main()
