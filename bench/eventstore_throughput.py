"""Throughput of the dev EventStoreDB server through esdbclient, beside plain SQLite on the same rows.

Runnable alone: ``.venv/bin/python bench/eventstore_throughput.py [--events N] [--memory]``.
It starts the server as a subprocess in SQLite mode (the devstack default; ``--memory`` for the
in-memory mode), so client and server each get their own interpreter and GIL, as in real use.
The baseline, in the same run, is plain ``sqlite3``: the same rows inserted in the same batches
(WAL, ``synchronous=FULL``, one transaction per batch) and selected back. Prints a table and,
last, the headline ratios. It only prints; nothing here asserts on time.

Reads cost one gRPC message per event (esdbclient turns each ReadResp into one event), and Python
gRPC spends tens of microseconds of CPU per streamed message on each side: a server that only
replays pre-serialised ReadResps peaked at ~12-17k messages/s into esdbclient on a 2-core machine,
with the client's core saturated. Read rates should be judged against that ceiling.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from esdbclient import EventStoreDBClient, NewEvent, StreamState

from cdr_platform.devtools.shutdown import CleanStop

BATCH = 100
STREAMS = 20
PAYLOAD = b'{"msisdn": "447700900123", "cell": "LON-0042", "seconds": 187, "kind": "voice"}'


@contextmanager
def server_process(db: Path | None) -> Iterator[str]:
    """Start ``python -m cdr_platform.devstack.eventstore`` on a free port; yield its URI."""
    storage = ["--memory"] if db is None else ["--db", str(db)]
    command = [sys.executable, "-m", "cdr_platform.devstack.eventstore", "--port", "0", *storage]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the server did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        process.terminate()
        process.wait(timeout=10)


def timed(action: Callable[[], int]) -> float:
    """Events per second of an action that returns how many events it handled."""
    started = time.perf_counter()
    count = action()
    return count / (time.perf_counter() - started)


def esdb_append(client: EventStoreDBClient, total: int) -> int:
    """Batched appends of BATCH events, round-robin over STREAMS streams."""
    versions: dict[str, int | StreamState] = {f"bench-{i}": StreamState.NO_STREAM for i in range(STREAMS)}
    names = list(versions)
    for batch in range(total // BATCH):
        name = names[batch % STREAMS]
        events = [NewEvent(type="CallRecorded", data=PAYLOAD) for _ in range(BATCH)]
        client.append_to_stream(name, current_version=versions[name], events=events)
        current = versions[name]
        versions[name] = BATCH - 1 if current is StreamState.NO_STREAM else int(current) + BATCH  # type: ignore[arg-type]
    return total // BATCH * BATCH


def esdb_read_all(client: EventStoreDBClient) -> int:
    """Read $all (default filter) to the end."""
    return sum(1 for _ in client.read_all())


def esdb_subscribe_all(client: EventStoreDBClient, total: int) -> int:
    """Catch-up subscription to $all until it has delivered ``total`` events."""
    received = 0
    with client.subscribe_to_all() as subscription:
        for _ in subscription:
            received += 1
            if received >= total:
                break
    return received


def sqlite_baseline(path: Path, total: int) -> tuple[float, float]:
    """(insert, select) rows per second for the same rows straight into SQLite."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE events (position INTEGER PRIMARY KEY, stream TEXT, revision INTEGER, event_id TEXT,"
        " event_type TEXT, content_type TEXT, data BLOB, metadata BLOB, created INTEGER)"
    )

    def insert() -> int:
        position = 0
        for batch in range(total // BATCH):
            rows = []
            for revision in range(BATCH):
                position += 200
                rows.append(
                    (position, f"bench-{batch % STREAMS}", revision, str(uuid.uuid4()), "CallRecorded",
                     "application/json", PAYLOAD, b"", time.time_ns() // 100)
                )  # fmt: skip
            db.execute("BEGIN")
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        return total // BATCH * BATCH

    def select() -> int:
        return sum(1 for _ in db.execute("SELECT * FROM events ORDER BY position"))

    rates = timed(insert), timed(select)
    db.close()
    return rates


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument(
        "--memory", action="store_true", help="benchmark the in-memory mode instead of SQLite"
    )
    args = parser.parse_args()
    total = args.events
    with tempfile.TemporaryDirectory() as tmp:
        db = None if args.memory else Path(tmp) / "server.sqlite"
        with server_process(db) as uri, EventStoreDBClient(uri) as client:
            append = timed(lambda: esdb_append(client, total))
            read = timed(lambda: esdb_read_all(client))
            subscribe = timed(lambda: esdb_subscribe_all(client, total))
        sql_insert, sql_select = sqlite_baseline(Path(tmp) / "baseline.sqlite", total)
    mode = "in-memory" if args.memory else "SQLite (WAL, synchronous=FULL)"
    print(f"dev EventStoreDB server, {mode}, {total} events, batches of {BATCH}, via esdbclient")
    print(f"{'operation':<34}{'esdbclient ev/s':>16}{'sqlite ev/s':>14}{'ratio':>8}")
    rows = [
        ("batched append (100/batch)", append, sql_insert),
        ("read_all", read, sql_select),
        ("subscribe_to_all (catch-up)", subscribe, sql_select),
    ]
    for name, rate, baseline in rows:
        print(f"{name:<34}{rate:>16,.0f}{baseline:>14,.0f}{rate / baseline:>8.3f}")
    print(
        f"headline: append {append / sql_insert:.3f}x sqlite insert, read_all {read / sql_select:.3f}x and "
        f"subscribe_to_all {subscribe / sql_select:.3f}x sqlite select "
        f"(targets: append >= 20000 ev/s -> {append:,.0f}; "
        f"reads >= 50000 ev/s -> {read:,.0f} / {subscribe:,.0f})"
    )


if __name__ == "__main__":
    with CleanStop("bench/eventstore_throughput.py"):  # Ctrl-C or SIGTERM ends every process it started
        main()
